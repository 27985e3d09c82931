"""UnetPlusPlus against SMP's UnetPlusPlus: parity, interop, training, input check and errors."""

import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import assert_fit_step, assert_parity, assert_state_dicts_identical, image, smp_model, tmpdir, to_format, to_keras, trained

# SMALL is reused by every non-parity test so that compiled shapes are shared (JAX compiles per shape).
SMALL = dict(encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 16))
CONFIGS = {
    "depth3_scse_bilinear_aux": dict(
        **SMALL, decoder_attention_type="scse", decoder_interpolation="bilinear", classes=3, aux_params=dict(classes=2, dropout=0.3)
    ),
    "depth4_in1_no_norm_nearest": dict(
        encoder_name="resnet18", encoder_depth=4, decoder_channels=(32, 16, 16, 16), in_channels=1, classes=2, decoder_use_norm=False,
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    assert_parity(smp_model("UnetPlusPlus", **cfg), image((2, cfg.get("in_channels", 3), 64, 32)), data_format)


def test_transformer_style_timm_encoder_as_smp():
    """SMP refuses only mit_b* encoders: a transformer-style tu- encoder (ConvNeXt, first feature at stride 4,
    an empty stride-2 skip) builds, as in SMP's own test_timm_transformer_style_encoder."""
    reference = smp_model("UnetPlusPlus", encoder_name="tu-test_convnext", encoder_depth=4, decoder_channels=(32, 16, 16, 8))
    assert_parity(reference, image((1, 3, 64, 64)), "channels_last")
    with pytest.raises(ValueError, match="UnetPlusPlus is not support encoder_name=mit_b0"):
        keras_seg.UnetPlusPlus("mit_b0", encoder_weights=None)


def test_interop_round_trip_bit_identical():
    # scse builds attention1 in the last block, which SMP never runs: it must still round-trip.
    reference = trained(smp_model("UnetPlusPlus", **SMALL, decoder_attention_type="scse", aux_params={"classes": 2}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "UnetPlusPlus"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())
    assert model.name == "unetplusplus-resnet18"


def test_training_step():
    assert_fit_step(keras_seg.UnetPlusPlus(**SMALL, encoder_weights=None), image((2, 3, 32, 32)))


def test_non_divisible_input_raises():
    model = keras_seg.UnetPlusPlus(**SMALL, encoder_weights=None)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 8.*\(48, 32\)"):
        model(to_format(image((1, 3, 41, 32)), "channels_last"))
    assert isinstance(keras_seg.InputShapeError("x"), ValueError)


def test_deprecated_batchnorm_argument_and_create_model():
    with pytest.warns(DeprecationWarning, match="decoder_use_batchnorm"):
        model = keras_seg.create_model(
            "unetplusplus", **SMALL, encoder_weights=None, decoder_use_batchnorm=False
        )
    assert isinstance(model, keras_seg.UnetPlusPlus) and model.config["decoder_use_norm"] is False
    clone = keras_seg.UnetPlusPlus.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=3), "decoder_channels"),
        (dict(encoder_depth=1, decoder_channels=(16,)), "encoder_depth >= 2"),
        (dict(encoder_depth=6, decoder_channels=(8,) * 6), "depth should be in range"),
        (dict(encoder_depth=2, decoder_channels=(16, 16), decoder_interpolation="linear"), "decoder_interpolation"),
        (dict(encoder_depth=2, decoder_channels=(16, 16), decoder_attention_type="cbam"), "valid choices"),
        (dict(encoder_depth=2, decoder_channels=(16, 16), decoder_use_norm="groupnorm"), "decoder_use_norm type"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        keras_seg.UnetPlusPlus(**kwargs)
