"""FPN against SMP's FPN: parity (GroupNorm, align_corners upsampling, merge policies), interop,
training, input check and errors."""

import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import assert_fit_step, assert_parity, assert_state_dicts_identical, image, smp_model, tmpdir, to_format, to_keras, trained

# SMALL is reused by every non-parity test so that compiled shapes are shared (JAX compiles per shape).
SMALL = dict(encoder_name="resnet18", decoder_pyramid_channels=32, decoder_segmentation_channels=32)
CONFIGS = {
    "depth5_add_nearest": SMALL,
    "depth4_cat_bilinear_in1_up2_aux": dict(
        encoder_name="resnet18", encoder_depth=4, decoder_pyramid_channels=16, decoder_segmentation_channels=64,
        decoder_merge_policy="cat", decoder_interpolation="bilinear", in_channels=1, classes=3, upsampling=2,
        aux_params=dict(classes=2),
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    assert_parity(smp_model("FPN", **cfg), image((2, cfg.get("in_channels", 3), 64, 96)), data_format)


def test_depth3_output_is_4x_larger_as_in_smp():
    # SMP's FPN takes features[-4:], which at depth 3 includes the input itself (stride 1).
    reference = smp_model("FPN", encoder_name="resnet18", encoder_depth=3, decoder_pyramid_channels=16, decoder_segmentation_channels=32)
    model = assert_parity(reference, image((1, 3, 16, 24)), "channels_last")
    assert tuple(model.output.shape[1:3]) == (None, None)


def test_interop_round_trip_bit_identical():
    reference = trained(smp_model("FPN", **SMALL, aux_params={"classes": 2}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "FPN"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())
    assert model.name == "fpn-resnet18"


def test_training_step():
    assert_fit_step(keras_seg.FPN(**SMALL, encoder_weights=None, decoder_dropout=0.5), image((2, 3, 64, 64)))


def test_non_divisible_input_raises():
    model = keras_seg.FPN(**SMALL, encoder_weights=None)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 32.*\(64, 64\)"):
        model(to_format(image((1, 3, 48, 64)), "channels_last"))


def test_create_model_and_config():
    model = keras_seg.create_model("fpn", **SMALL, encoder_weights=None)
    assert isinstance(model, keras_seg.FPN)
    clone = keras_seg.FPN.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=2), "cannot be less than 3"),
        (dict(decoder_merge_policy="sum"), "merge_policy"),
        (dict(decoder_segmentation_channels=48), "multiple of 32"),
        (dict(decoder_dropout=1.5), "decoder_dropout"),
        (dict(decoder_interpolation="linear"), "decoder_interpolation"),
        (dict(encoder_depth=6), "depth should be in range"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        keras_seg.FPN(**kwargs)
