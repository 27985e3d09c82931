"""UPerNet against SMP's UPerNet: parity, interop, input check, training and errors."""

import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import NATIVE_FORMAT, assert_parity, assert_state_dicts_identical, assert_trains, image, smp_model, tmpdir, to_keras

CONFIGS = {
    # deepest map 2x3: PSP pools 3 and 6 repeat pixels; 1/16 -> 1/8 -> 1/4 laterals
    "default_channels32": dict(encoder_name="resnet18", decoder_channels=32),
    "depth3_no_norm_in2_aux": dict(
        encoder_name="resnet18", encoder_depth=3, decoder_channels=16, decoder_use_norm=False, in_channels=2, classes=2,
        aux_params=dict(classes=3, activation="softmax"),
    ),
    "depth4_up8": dict(encoder_name="resnet18", encoder_depth=4, decoder_channels=16, classes=3, upsampling=8),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    model = smp_model("UPerNet", **cfg)
    # upsampling=8 gives an output of twice the input's size, in both libraries
    assert_parity(model, image((1, cfg.get("in_channels", 3), 64, 96)), data_format)


def test_layer_norms_port_and_apply(data_format):
    # random LayerNorm2d affine parameters (SMP initialises them to 1 and 0)
    import torch

    reference = smp_model("UPerNet", encoder_name="resnet18", encoder_depth=3, decoder_channels=16)
    with torch.no_grad():
        for norm in reference.decoder.feature_norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.3, 0.3)
    assert_parity(reference, image((1, 3, 32, 32)), data_format)


def test_interop_round_trip_bit_identical():
    reference = smp_model("UPerNet", encoder_name="resnet18", encoder_depth=3, decoder_channels=16, classes=2, aux_params={"classes": 3})
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "UPerNet"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())


def test_training_step_finite_gradients():
    model = keras_seg.UPerNet("resnet18", encoder_depth=3, encoder_weights=None, decoder_channels=16, data_format=NATIVE_FORMAT)
    assert_trains(model, image((2, 3, 32, 32)), NATIVE_FORMAT)


def test_non_divisible_input_raises(data_format):
    model = keras_seg.UPerNet("resnet18", encoder_weights=None, decoder_channels=8, data_format=data_format)
    x = image((1, 3, 64, 70))
    x = x if data_format == "channels_first" else x.transpose(0, 2, 3, 1)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 32.*\(64, 96\)"):
        model(x)


def test_config_and_create_model():
    model = keras_seg.create_model("upernet", encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=8)
    assert isinstance(model, keras_seg.UPerNet) and model.name == "upernet-resnet18"
    assert keras_seg.UPerNet.from_config(model.get_config()).get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=2), r"cannot be less than 3, got 2.*encoder_depth must be at least 3"),
        (dict(encoder_depth=6), "depth should be in range"),
        (dict(decoder_use_norm="groupnorm"), "decoder_use_norm type"),
        (dict(activation="relu6"), "Activation should be"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_seg.UPerNet(**{"encoder_name": "resnet18", "encoder_weights": None, "decoder_channels": 8, **kwargs})
