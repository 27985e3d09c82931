"""DeepLabV3 and DeepLabV3Plus against SMP: parity (dilated encoders at output stride 8
and 16), interop, input check, init, training and errors."""

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

import keras_seg
from tests.parity import NATIVE_FORMAT, assert_parity, assert_same_init, assert_state_dicts_identical, assert_trains, image, smp_model, tmpdir, to_keras

CONFIGS = {
    "v3_default": ("DeepLabV3", dict(encoder_name="resnet18")),
    "v3_os8_depth4_aux": (
        "DeepLabV3",
        dict(encoder_name="resnet18", encoder_depth=4, encoder_output_stride=8, decoder_channels=32, decoder_atrous_rates=(2, 4, 6),
             classes=2, aux_params=dict(classes=3, pooling="max")),
    ),
    "v3_os16_separable_up16_in1": (
        "DeepLabV3",
        dict(encoder_name="resnet18", encoder_output_stride=16, decoder_channels=32, decoder_aspp_separable=True, upsampling=16, in_channels=1),
    ),
    "v3plus_default": ("DeepLabV3Plus", dict(encoder_name="resnet18")),
    "v3plus_depth3_os8_plain_classes3": (
        "DeepLabV3Plus",
        dict(encoder_name="resnet18", encoder_depth=3, encoder_output_stride=8, decoder_channels=32, decoder_aspp_separable=False, classes=3),
    ),
    "v3plus_os8_bottleneck_aux": (
        "DeepLabV3Plus",
        dict(encoder_name="resnet50", encoder_output_stride=8, decoder_channels=16, decoder_atrous_rates=(1, 3, 5), aux_params=dict(classes=2)),
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cls, cfg = CONFIGS[config]
    model = smp_model(cls, **cfg)
    assert_parity(model, image((1, cfg.get("in_channels", 3), 64, 64)), data_format)


@pytest.mark.parametrize("cls", ["DeepLabV3", "DeepLabV3Plus"])
def test_interop_round_trip_bit_identical(cls):
    reference = smp_model(cls, encoder_name="resnet18", encoder_depth=3, decoder_channels=16, classes=2, aux_params={"classes": 3})
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == cls
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())


@pytest.mark.parametrize("cls", ["DeepLabV3", "DeepLabV3Plus"])
def test_training_step_finite_gradients(cls):
    # batch 2: the ASPP pooling branch's BatchNorm sees 1x1 maps
    model = getattr(keras_seg, cls)("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=16, data_format=NATIVE_FORMAT)
    assert_trains(model, image((2, 3, 32, 32)), NATIVE_FORMAT)


def test_default_upsampling_rule():
    # upsampling=None: 2**depth when depth <= 3, else the output stride
    for depth, stride, size in [(2, 8, 8), (3, 16, 16), (4, 16, 32), (5, 8, 32)]:
        model = keras_seg.DeepLabV3("resnet18", encoder_depth=depth, encoder_weights=None, encoder_output_stride=stride, decoder_channels=8)
        assert tuple(model(image((1, size, size, 3))).shape) == (1, size, size, 1)


def test_non_divisible_input_raises(data_format):
    model = keras_seg.DeepLabV3Plus("resnet18", encoder_weights=None, decoder_channels=8, data_format=data_format)
    x = image((1, 3, 64, 40))
    x = x if data_format == "channels_first" else x.transpose(0, 2, 3, 1)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 16.*\(64, 48\)"):
        model(x)


@pytest.mark.parametrize("cls", ["DeepLabV3", "DeepLabV3Plus"])
def test_initialisation_is_smps(cls):
    # SMP never calls initialize() for DeepLab: torch's module defaults, drawn here by SMP's own modules
    kwargs = dict(encoder_name="resnet18", encoder_depth=3, decoder_channels=16, classes=8,
                  aux_params={"classes": 8})
    model = getattr(keras_seg, cls)(encoder_weights=None, **kwargs)

    def reference(seed):
        torch.manual_seed(seed)
        return getattr(smp, cls)(encoder_weights=None, **kwargs)

    assert assert_same_init(model, reference) > 10


def test_legacy_sequential_decoder_keys_load():
    reference = smp_model("DeepLabV3", encoder_name="resnet18", encoder_depth=3, decoder_channels=16)
    legacy = {}
    for k, v in reference.state_dict().items():
        for new, old in (("decoder.aspp.", "decoder.0."), ("decoder.conv.", "decoder.1."), ("decoder.bn.", "decoder.2.")):
            if k.startswith(new):
                k = old + k[len(new):]
        legacy[k] = v.numpy()
    model = keras_seg.DeepLabV3("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=16)
    model.load_torch_state_dict(legacy)
    np.testing.assert_array_equal(model.torch_state_dict()["decoder.conv.weight"], reference.state_dict()["decoder.conv.weight"].numpy())
    # from_pretrained goes through the same renaming (an old SMP checkpoint folder)
    folder = tmpdir()
    reference.save_pretrained(folder)
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in legacy.items()}, f"{folder}/model.safetensors")
    loaded = keras_seg.from_pretrained(folder).torch_state_dict()
    assert set(loaded) == set(reference.state_dict())
    for key, value in reference.state_dict().items():
        np.testing.assert_array_equal(loaded[key], value.numpy(), err_msg=key)


def test_config_and_create_model():
    for key, cls in (("deeplabv3", keras_seg.DeepLabV3), ("deeplabv3plus", keras_seg.DeepLabV3Plus)):
        model = keras_seg.create_model(key, encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=8)
        assert isinstance(model, cls) and model.name == f"{key}-resnet18"
        assert cls.from_config(model.get_config()).get_config() == model.get_config()


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        ("DeepLabV3", dict(encoder_output_stride=32), r"encoder_output_stride.*\(8, 16\).*32"),
        ("DeepLabV3Plus", dict(encoder_output_stride=4), r"encoder_output_stride.*\(8, 16\).*4"),
        ("DeepLabV3Plus", dict(encoder_depth=2), r"encoder_depth.*\(3, 4, 5\)"),
        ("DeepLabV3Plus", dict(encoder_depth=6), "depth should be in range"),
        ("DeepLabV3", dict(decoder_atrous_rates=(6, 12)), "decoder_atrous_rates"),
        ("DeepLabV3Plus", dict(decoder_atrous_rates=12), "decoder_atrous_rates"),
        ("DeepLabV3", dict(aux_params={"classes": 2, "pool": "avg"}), "Unknown aux_params keys"),
    ],
)
def test_bad_arguments_raise_clear_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(keras_seg, cls)(**{"encoder_name": "resnet18", "encoder_weights": None, "decoder_channels": 8, **kwargs})
