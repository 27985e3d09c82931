"""MAnet against SMP's MAnet: parity (incl. the PAB's whole-map softmax and raw reshape), interop,
training, input check and errors."""

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import assert_fit_step, assert_parity, assert_state_dicts_identical, image, smp_model, tmpdir, to_format, to_keras, trained

# SMALL is reused by every non-parity test so that compiled shapes are shared (JAX compiles per shape).
SMALL = dict(encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 16))
CONFIGS = {
    # non-square input: the PAB's raw (B, HW, C) -> (B, C, H, W) reshape is only checked when H != W
    "depth3": SMALL,
    "depth5_pab8_bilinear_in1_aux": dict(
        encoder_name="resnet18", decoder_channels=(32, 32, 16, 16, 16), decoder_pab_channels=8, decoder_interpolation="bilinear",
        in_channels=1, classes=3, decoder_use_norm=False, aux_params=dict(classes=2, pooling="max"),
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    assert_parity(smp_model("MAnet", **cfg), image((2, cfg.get("in_channels", 3), 64, 96)), data_format)


def test_interop_round_trip_bit_identical():
    reference = trained(smp_model("MAnet", **SMALL, decoder_pab_channels=16, aux_params={"classes": 2}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "MAnet"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())
    assert model.name == "manet-resnet18"


def test_training_step():
    assert_fit_step(keras_seg.MAnet(**SMALL, encoder_weights=None), image((2, 3, 32, 32)))


def test_non_divisible_input_raises():
    model = keras_seg.MAnet(**SMALL, encoder_weights=None, data_format="channels_first")
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 8.*\(32, 40\)"):
        model(image((1, 3, 32, 33)))


def test_deprecated_batchnorm_argument_and_config():
    with pytest.warns(DeprecationWarning, match="decoder_use_batchnorm"):
        model = keras_seg.create_model(
            "manet", **SMALL, encoder_weights=None, decoder_use_batchnorm=False
        )
    assert isinstance(model, keras_seg.MAnet) and model.config["decoder_use_norm"] is False
    clone = keras_seg.MAnet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


def test_keras_saving_round_trip():
    # the PAB's attention product is a custom layer (PositionAttention): it must (de)serialize
    model = keras_seg.MAnet(**SMALL, encoder_weights=None)
    path = f"{tmpdir()}/manet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = to_format(image((1, 3, 32, 32)), "channels_last")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=3), "decoder_channels"),
        (dict(encoder_depth=6, decoder_channels=(8,) * 6), "depth should be in range"),
        (dict(encoder_depth=2, decoder_channels=(16, 16), decoder_pab_channels=0), "decoder_pab_channels"),
        (dict(encoder_depth=2, decoder_channels=(16, 16), decoder_interpolation="linear"), "decoder_interpolation"),
        (dict(encoder_depth=2, decoder_channels=(16, 16), decoder_use_norm="groupnorm"), "decoder_use_norm type"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        keras_seg.MAnet(**kwargs)
