"""PAN against SMP's PAN: parity (dilated encoder, FPA/GAU resizes), interop, training,
input checks and errors."""

import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import assert_fit_step, assert_parity, assert_state_dicts_identical, image, smp_model, tmpdir, to_format, to_keras, trained

# SMALL is reused by every non-parity test so that compiled shapes are shared (JAX compiles per shape).
SMALL = dict(encoder_name="resnet18", encoder_depth=3, encoder_output_stride=32, decoder_channels=16)
CONFIGS = {
    # default: output stride 16 (dilated layer4), bilinear GAU with align_corners=True
    "depth5_os16_bilinear": (dict(encoder_name="resnet18"), (1, 3, 128, 160)),
    # GAU in legacy nearest (align_corners None), encoder without dilation
    "depth3_os32_nearest_in1_aux": (
        dict(**SMALL, decoder_interpolation="nearest", in_channels=1, classes=3, aux_params=dict(classes=2)),
        (2, 1, 64, 96),
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg, shape = CONFIGS[config]
    assert_parity(smp_model("PAN", **cfg), image(shape), data_format)


def test_interop_round_trip_bit_identical():
    reference = trained(smp_model("PAN", **SMALL, aux_params={"classes": 2}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "PAN"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())
    assert model.name == "pan-resnet18"


def test_training_step():
    assert_fit_step(keras_seg.PAN(**SMALL, encoder_weights=None), image((2, 3, 64, 64)))


def test_input_shape_checks():
    model = keras_seg.PAN("resnet18", encoder_weights=None)
    assert model.encoder.output_stride == 16
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 16.*\(144, 128\)"):
        model(to_format(image((1, 3, 130, 128)), "channels_last"))
    # divisible, but the FPA's three max-pools need the 1/16 map to be >= 8 px (SMP fails inside torch)
    with pytest.raises(keras_seg.InputShapeError, match=r"at least 128.*\(128, 128\)"):
        model(to_format(image((1, 3, 64, 128)), "channels_last"))


def test_deprecated_upscale_mode_and_config():
    with pytest.warns(DeprecationWarning, match="upscale_mode"):
        model = keras_seg.create_model("pan", **SMALL, encoder_weights=None, upscale_mode="nearest")
    assert isinstance(model, keras_seg.PAN) and model.config["decoder_interpolation"] == "nearest"
    clone = keras_seg.PAN.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_output_stride=8), "output stride 16 or 32"),
        (dict(encoder_depth=2), "cannot be less than 3"),
        (dict(encoder_depth=6), "depth should be in range"),
        (dict(decoder_channels=(32, 16)), "decoder_channels"),
        (dict(encoder_depth=3, decoder_interpolation="linear"), "decoder_interpolation"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        keras_seg.PAN(**kwargs)
