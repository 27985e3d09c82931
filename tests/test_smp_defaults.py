"""keras-seg's constructors against SMP's own: signatures and defaults (every architecture and
create_model), and parity of models that both sides build from minimal arguments, so that every
default (not only those a config.json lists) must agree with SMP's."""

import inspect

import keras
import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import BACKEND, image, relative_error, run_keras, run_smp, smp_model

CLASSES = ["Unet", "UnetPlusPlus", "MAnet", "Linknet", "FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "PAN",
           "UPerNet", "Segformer", "DPT"]
# What keras-seg adds to SMP's constructors: keyword-only, defaulting to None.
EXTRAS = ("data_format", "name")
SIGNATURE_ONLY = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: runs with the torch backend")


def _described(parameters):
    return [(p.name, p.kind, p.default) for p in parameters]


def _assert_same_parameters(ours, theirs, where):
    """Same names, order, kinds and defaults (equal and of the same type: a tuple is not a list)."""
    assert [p.name for p in ours] == [p.name for p in theirs], where
    for a, b in zip(ours, theirs):
        assert a.kind == b.kind, f"{where}: {a.name} is {a.kind.description}, SMP's is {b.kind.description}"
        assert type(a.default) is type(b.default) and a.default == b.default, (
            f"{where}: {a.name} defaults to {a.default!r}, SMP's to {b.default!r}")


@SIGNATURE_ONLY
def test_architectures_are_smps_list():
    assert sorted(cls.__name__ for cls in keras_seg.ARCHITECTURES.values()) == sorted(CLASSES)
    assert sorted(keras_seg.ARCHITECTURES) == sorted(name.lower() for name in CLASSES)


@SIGNATURE_ONLY
@pytest.mark.parametrize("name", CLASSES)
def test_constructor_signature_and_defaults_are_smps(name):
    ours = list(inspect.signature(getattr(keras_seg, name).__init__).parameters.values())
    theirs = list(inspect.signature(getattr(smp, name).__init__).parameters.values())
    extras = [p for p in ours if p.name in EXTRAS]
    assert [p.name for p in extras] == list(EXTRAS), name
    for p in extras:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None, f"{name}: {p.name} ({p.kind.description})"
    _assert_same_parameters([p for p in ours if p.name not in EXTRAS], theirs, name)


@SIGNATURE_ONLY
def test_create_model_signature_and_defaults_are_smps():
    ours = list(inspect.signature(keras_seg.create_model).parameters.values())
    theirs = list(inspect.signature(smp.create_model).parameters.values())
    _assert_same_parameters(ours, theirs, "create_model")


# -- models built from minimal arguments on both sides -------------------------------------------
# (architecture, minimal arguments, input height and width); the Keras model takes its layout from
# keras.config.image_data_format(), as a user's does.
MINIMAL = {
    "unet": ("Unet", dict(encoder_name="resnet18", classes=3), (64, 48)),
    "fpn": ("FPN", dict(encoder_name="resnet18"), (64, 64)),
    "deeplabv3plus": ("DeepLabV3Plus", dict(encoder_name="resnet18", classes=2), (64, 64)),
    "linknet_create_model": ("Linknet", dict(), (32, 64)),  # create_model's own encoder default (resnet34)
}


@pytest.mark.parametrize("case", sorted(MINIMAL))
def test_minimal_arguments_match_smp(case):
    cls_name, kwargs, (h, w) = MINIMAL[case]
    reference = smp_model(cls_name, **kwargs)  # encoder_weights=None and seeded weights, all else SMP's defaults
    if case.endswith("_create_model"):
        model = keras_seg.create_model(cls_name.lower(), encoder_weights=None, **kwargs)
        assert type(smp.create_model(cls_name.lower(), encoder_weights=None)).__name__ == cls_name
    else:
        model = getattr(keras_seg, cls_name)(encoder_weights=None, **kwargs)
    assert type(model).__name__ == cls_name and model.data_format == keras.config.image_data_format()
    model.load_torch_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    x = image((1, reference.encoder.out_channels[0], h, w))
    expected = run_smp(reference, x)
    actual = run_keras(model, x, model.data_format)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, (a.shape, e.shape)
        err = relative_error(a, e)
        assert err < 1e-4, f"relative error {err:.2e} on {BACKEND}/{model.data_format}"
