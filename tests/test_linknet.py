"""Linknet against SMP's Linknet: parity (transposed convs), interop, init, training, input check, errors."""

import pytest
import segmentation_models_pytorch as smp
import torch

import keras_seg
from tests.parity import assert_fit_step, assert_parity, assert_same_init, assert_state_dicts_identical, image, smp_model, tmpdir, to_format, to_keras, trained

# SMALL is reused by every non-parity test so that compiled shapes are shared (JAX compiles per shape).
SMALL = dict(encoder_name="resnet18", encoder_depth=3)
CONFIGS = {
    "depth3": SMALL,
    "depth5_resnet34_in2_no_norm_aux": dict(
        encoder_name="resnet34", in_channels=2, classes=3, decoder_use_norm=False, aux_params=dict(classes=2, activation="softmax")
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    assert_parity(smp_model("Linknet", **cfg), image((2, cfg.get("in_channels", 3), 64, 96)), data_format)


def test_interop_round_trip_bit_identical():
    reference = trained(smp_model("Linknet", **SMALL, aux_params={"classes": 2}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "Linknet"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())
    assert model.name == "link-resnet18"


def test_initialisation_is_smps():
    # SMP's initialize_decoder skips ConvTranspose2d (torch's default); kaiming/xavier elsewhere
    kwargs = dict(**SMALL, classes=8, aux_params={"classes": 8})
    model = keras_seg.Linknet(**kwargs, encoder_weights=None)

    def reference(seed):
        torch.manual_seed(seed)
        return smp.Linknet(**kwargs, encoder_weights=None)

    assert assert_same_init(model, reference) > 10


def test_training_step():
    assert_fit_step(keras_seg.Linknet(**SMALL, encoder_weights=None), image((2, 3, 32, 32)))


def test_non_divisible_input_raises():
    model = keras_seg.Linknet(**SMALL, encoder_weights=None)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 8.*\(40, 32\)"):
        model(to_format(image((1, 3, 36, 32)), "channels_last"))


def test_deprecated_batchnorm_argument_and_config():
    with pytest.warns(DeprecationWarning, match="decoder_use_batchnorm"):
        model = keras_seg.create_model("linknet", **SMALL, encoder_weights=None, decoder_use_batchnorm=False)
    assert isinstance(model, keras_seg.Linknet) and model.config["decoder_use_norm"] is False
    clone = keras_seg.Linknet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=6), "depth should be in range"),
        (dict(encoder_depth=2, decoder_use_norm="groupnorm"), "decoder_use_norm type"),
        (dict(encoder_depth=2, activation="relu6"), "Activation should be"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        keras_seg.Linknet(**kwargs)
