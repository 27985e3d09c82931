"""PSPNet against SMP's PSPNet: parity, interop, input check, training and errors."""

import pytest
import segmentation_models_pytorch as smp

import keras_seg
from tests.parity import NATIVE_FORMAT, assert_parity, assert_state_dicts_identical, assert_trains, image, smp_model, tmpdir, to_keras

CONFIGS = {
    # default depth 3: deepest map 8x8, pyramid bins 3 and 6 overlap (8 % s != 0)
    "default": dict(encoder_name="resnet18"),
    # deepest map 2x2 at depth 5: pools of size 3 and 6 repeat pixels (H < s)
    "depth5_in2_aux_no_norm": dict(
        encoder_name="resnet18", encoder_depth=5, psp_out_channels=64, decoder_use_norm=False, in_channels=2, classes=3,
        upsampling=32, aux_params=dict(classes=2, dropout=0.3),
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    model = smp_model("PSPNet", **cfg)
    assert_parity(model, image((1, cfg.get("in_channels", 3), 64, 64)), data_format)


def test_interop_round_trip_bit_identical():
    reference = smp_model("PSPNet", encoder_name="resnet18", encoder_depth=2, psp_out_channels=16, classes=2, upsampling=4, aux_params={"classes": 3})
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "PSPNet"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())


def test_training_step_finite_gradients():
    model = keras_seg.PSPNet("resnet18", encoder_weights=None, encoder_depth=2, psp_out_channels=16, upsampling=4, data_format=NATIVE_FORMAT)
    assert_trains(model, image((2, 3, 32, 32)), NATIVE_FORMAT)


def test_non_divisible_input_raises(data_format):
    model = keras_seg.PSPNet("resnet18", encoder_weights=None, encoder_depth=3, psp_out_channels=16, data_format=data_format)
    x = image((1, 3, 36, 32))
    x = x if data_format == "channels_first" else x.transpose(0, 2, 3, 1)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 8.*\(40, 32\)"):
        model(x)


def test_deprecated_psp_use_batchnorm_replaces_decoder_use_norm():
    with pytest.warns(DeprecationWarning, match="psp_use_batchnorm"):
        model = keras_seg.PSPNet("resnet18", None, 2, psp_out_channels=16, decoder_use_norm=True, psp_use_batchnorm=False)
    assert model.config["decoder_use_norm"] is False
    reference = smp.PSPNet("resnet18", None, 2, psp_out_channels=16, decoder_use_norm=False)
    assert set(model.torch_state_dict()) == set(reference.state_dict())


def test_empty_aux_params_builds_no_classification_head():
    # SMP tests `if aux_params:` in PSPNet
    model = keras_seg.PSPNet("resnet18", encoder_weights=None, encoder_depth=2, psp_out_channels=16, aux_params={})
    assert len(model.outputs) == 1
    assert set(model.torch_state_dict()) == set(smp.PSPNet("resnet18", None, 2, psp_out_channels=16, aux_params={}).state_dict())


def test_config_and_create_model():
    model = keras_seg.create_model("pspnet", encoder_name="resnet18", encoder_weights=None, encoder_depth=2, psp_out_channels=16, classes=2)
    assert isinstance(model, keras_seg.PSPNet) and model.name == "psp-resnet18"
    clone = keras_seg.PSPNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=6), "depth should be in range"),
        (dict(decoder_use_norm="groupnorm"), "decoder_use_norm type"),
        (dict(aux_params={"classes": 2, "pooling": "sum"}), "Pooling should be one of"),
        (dict(activation="relu6"), "Activation should be"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_seg.PSPNet(**{"encoder_name": "resnet18", "encoder_weights": None, "psp_out_channels": 16, **kwargs})
