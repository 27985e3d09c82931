"""Unet against SMP's Unet: parity, interop, input sizes, heads, norms and errors."""

import segmentation_models_pytorch as smp
import numpy as np
import keras
import pytest

import keras_seg
from tests.parity import (
    NATIVE_FORMAT, assert_parity, assert_state_dicts_identical, assert_trains, image, offline_hub_snapshot, relative_error,
    run_keras, run_smp, smp_model, tmpdir, to_format, to_keras, to_nchw, trained,
)
from weight_ports.hub import WeightsUnavailableError

CONFIGS = {
    "default": dict(encoder_name="resnet18"),
    "depth3_in1_scse_aux": dict(
        encoder_name="resnet18", encoder_depth=3, decoder_channels=(64, 32, 16), in_channels=1, classes=4,
        decoder_attention_type="scse", aux_params=dict(classes=3, dropout=0.5, activation="sigmoid"),
    ),
    "bilinear_no_norm": dict(encoder_name="resnet18", decoder_interpolation="bilinear", decoder_use_norm=False, classes=2),
    "bicubic_depth4": dict(encoder_name="resnet34", encoder_depth=4, decoder_channels=(64, 32, 16, 8), decoder_interpolation="bicubic"),
    "bottleneck_nearest_exact_in4": dict(
        encoder_name="resnet50", encoder_depth=2, decoder_channels=(32, 16), in_channels=4, classes=3,
        decoder_interpolation="nearest-exact", aux_params=dict(classes=2, pooling="max"),
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    model = smp_model("Unet", **cfg)
    # odd, non-square, not a multiple of 32: SMP's Unet accepts any size
    assert_parity(model, image((2, cfg.get("in_channels", 3), 45, 70)), data_format)


def test_interop_round_trip_bit_identical():
    reference = trained(smp_model("Unet", encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 16), decoder_attention_type="scse", aux_params={"classes": 2}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d, dataset="toy", metrics={"iou": 0.5})
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "Unet"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())
    card = open(f"{d}/README.md").read()
    assert "toy" in card and '"iou": 0.5' in card


def test_from_pretrained_overrides_and_strict():
    reference = smp_model("Unet", encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 8))
    d = tmpdir()
    reference.save_pretrained(d)
    with pytest.raises(ValueError, match="segmentation_head.0.weight"):
        keras_seg.from_pretrained(d, classes=5)
    with pytest.warns(UserWarning, match="segmentation_head"):
        model = keras_seg.from_pretrained(d, classes=5, strict=False)
    assert model.output.shape[-1] == 5
    expected = reference.state_dict()["decoder.blocks.0.conv1.0.weight"].numpy()
    np.testing.assert_array_equal(model.torch_state_dict()["decoder.blocks.0.conv1.0.weight"], expected)


def test_from_pretrained_hub_repository_offline(tmp_path, monkeypatch):
    # A hub repository as SMP's save_pretrained / push_to_hub lays it out, read from the local
    # cache (HF_HUB_OFFLINE): keras-seg and SMP's own smp.from_pretrained load the same repo id.
    reference = smp_model("Unet", encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 8), classes=2)
    reference.save_pretrained(offline_hub_snapshot(tmp_path, monkeypatch, "someone/tiny-unet"))
    from_hub = smp.from_pretrained("someone/tiny-unet").eval()
    model = keras_seg.from_pretrained("someone/tiny-unet", data_format="channels_last")
    x = image((1, 3, 64, 64))
    expected = run_smp(from_hub, x)[0]
    assert relative_error(run_keras(model, x, "channels_last")[0], expected) < 1e-4
    with pytest.raises(WeightsUnavailableError, match="someone/missing"):
        keras_seg.from_pretrained("someone/missing")


def test_any_input_size_output_matches(data_format):
    model = keras_seg.Unet("resnet18", encoder_weights=None, classes=3, data_format=data_format)
    x = image((1, 3, 67, 37))
    out = model(x if data_format == "channels_first" else x.transpose(0, 2, 3, 1))
    expected = (1, 3, 67, 37) if data_format == "channels_first" else (1, 67, 37, 3)
    assert tuple(out.shape) == expected


def test_training_step_finite_gradients():
    model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(32, 16, 8), data_format=NATIVE_FORMAT)
    assert_trains(model, image((2, 3, 32, 32)), NATIVE_FORMAT)


def test_config_round_trip_and_keras_saving():
    model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(32, 16, 8), classes=2, aux_params={"classes": 4})
    clone = keras_seg.Unet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    import keras

    path = f"{tmpdir()}/unet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = image((1, 32, 32, 3))
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_name="resnet_nope"), "Wrong encoder name"),
        (dict(encoder_depth=6, decoder_channels=(8,) * 6), "depth should be in range"),
        (dict(encoder_depth=3), "decoder_channels"),
        (dict(decoder_interpolation="linear"), "decoder_interpolation"),
        (dict(decoder_use_norm="groupnorm"), "decoder_use_norm type"),
        (dict(decoder_use_norm={"eps": 1e-3}), "'type'"),
        (dict(decoder_attention_type="cbam"), "valid choices"),
        (dict(activation="relu6"), "Activation should be"),
        (dict(aux_params={"classes": 2, "pool": "avg"}), "Unknown aux_params keys"),
        (dict(aux_params={"classes": 2, "pooling": "sum"}), "Pooling should be one of"),
        (dict(encoder_weights="instagram"), "Available options are"),
        (dict(data_format="NHWC"), "data_format"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        keras_seg.Unet(**kwargs)


@pytest.mark.parametrize("activation", [None, "identity", "sigmoid", "softmax", "softmax2d", "logsoftmax", "tanh", "argmax", "argmax2d", "clamp"])
def test_activations_match_smp(activation, data_format):
    reference = smp_model("Unet", encoder_name="resnet18", encoder_depth=2, decoder_channels=(16, 8), classes=3, activation=activation)
    if activation == "argmax":
        return _check_argmax(reference, data_format)
    assert_parity(reference, image((1, 3, 32, 32)), data_format)


def _check_argmax(reference, data_format):
    # SMP's "argmax" uses dim=None (an index into the flattened batch); keras-seg takes the channel axis.
    from tests.parity import run_keras, run_smp

    model = to_keras(reference, data_format)
    x = image((1, 3, 32, 32))
    reference.segmentation_head[2].activation.dim = 1
    np.testing.assert_array_equal(run_keras(model, x, data_format)[0], run_smp(reference, x)[0])


@pytest.mark.parametrize("use_norm", [True, False, "batchnorm", "identity", "inplace", {"type": "batchnorm", "eps": 1e-3, "momentum": 0.01}])
def test_norm_forms_match_smp(use_norm, data_format):
    kwargs = dict(encoder_name="resnet18", encoder_depth=2, decoder_channels=(16, 8))
    if use_norm == "inplace":
        # SMP needs the CUDA-only inplace_abn package for this; its math is BatchNorm + ReLU.
        reference = smp_model("Unet", decoder_use_norm="batchnorm", **kwargs)
        assert_parity(reference, image((1, 3, 32, 32)), data_format, decoder_use_norm="inplace")
        return
    reference = smp_model("Unet", decoder_use_norm=use_norm, **kwargs)
    assert_parity(reference, image((1, 3, 32, 32)), data_format)


@pytest.mark.parametrize("use_norm", ["layernorm", {"type": "layernorm", "eps": 0.1}, "instancenorm",
                                      {"type": "instancenorm", "affine": True}])
def test_other_norms_are_smps_modules(use_norm, data_format):
    import torch
    from segmentation_models_pytorch.base.modules import get_norm_layer

    kwargs = dict(encoder_name="resnet18", encoder_depth=2, decoder_channels=(16, 8), encoder_weights=None, decoder_use_norm=use_norm)
    model = keras_seg.Unet(**kwargs, data_format=data_format)
    instancenorm = "instancenorm" in str(use_norm)
    if use_norm == "instancenorm":
        # SMP 0.6.0 cannot build this: its initializer fills the absent affine weight.
        with pytest.raises(AttributeError):
            smp.Unet(**kwargs)
        assert not any(".conv1.1." in k for k in model.torch_state_dict())
    elif not instancenorm:
        reference = smp.Unet(**kwargs)
        assert set(model.torch_state_dict()) == set(reference.state_dict())
    # The norm's values against SMP's own norm module (get_norm_layer), on the conv output the model feeds it.
    # SMP applies nn.LayerNorm(C) to NCHW (its last, width axis; it only runs when W == C); keras-seg
    # normalises over channels, which is SMP's module on the channels-last tensor (as SMP's LayerNorm2d does).
    names = [layer.name for layer in model.layers]
    norm_layer = model.get_layer("decoder-blocks-1-conv1-1")
    relu = next(layer for layer in model.layers[names.index(norm_layer.name):] if isinstance(layer, keras.layers.ReLU))
    rng = np.random.RandomState(3)
    for weight in norm_layer.weights:  # non-default affine parameters
        weight.assign(rng.rand(*weight.shape).astype("float32") + 0.5)
    probe = keras.Model(model.input, [model.get_layer("decoder-blocks-1-conv1-0").output, relu.input])
    x, y = (to_nchw(t, data_format) for t in probe(to_format(image((2, 3, 32, 32)), data_format)))
    reference_norm = get_norm_layer(use_norm, x.shape[1]).eval()
    assert type(reference_norm).__name__ == ("InstanceNorm2d" if instancenorm else "LayerNorm")
    state = {k.rsplit(".", 1)[1]: torch.from_numpy(v) for k, v in model.torch_state_dict().items()
             if k.startswith("decoder.blocks.1.conv1.1.")}
    reference_norm.load_state_dict(state)  # strict: the same affine parameters, or none
    with torch.no_grad():
        t = torch.from_numpy(x)
        expected = (reference_norm(t) if instancenorm else reference_norm(t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)).numpy()
    assert relative_error(y, expected) < 1e-4
    out = keras.ops.convert_to_numpy(model(to_format(image((2, 3, 32, 32)), data_format)))
    assert np.all(np.isfinite(out))


def test_scse_needs_enough_channels():
    with pytest.raises(ValueError, match="at least 16 channels"):
        keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(16, 8), decoder_attention_type="scse")


def test_deprecated_batchnorm_argument_warns():
    with pytest.warns(DeprecationWarning, match="decoder_use_batchnorm"):
        model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(16, 8), decoder_use_batchnorm=False)
    assert model.config["decoder_use_norm"] is False


def test_create_model_keys():
    assert "unet" in keras_seg.ARCHITECTURES
    model = keras_seg.create_model("UNET", encoder_name="resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(16, 8), classes=2)
    assert isinstance(model, keras_seg.Unet)
    with pytest.raises(ValueError, match="Available options"):
        keras_seg.create_model("unet3d")


def test_freeze_encoder_keeps_batchnorm_statistics():
    model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(16, 8))
    model.freeze_encoder()
    assert not any(v.trainable for v in model.encoder.weights)
    before = model.encoder.get_layer("bn1").moving_mean.numpy().copy()
    model(image((2, 32, 32, 3)), training=True)
    np.testing.assert_array_equal(model.encoder.get_layer("bn1").moving_mean.numpy(), before)
    model.unfreeze_encoder()
    assert model.encoder.get_layer("bn1").trainable
    model(image((2, 32, 32, 3)), training=True)
    assert not np.array_equal(model.encoder.get_layer("bn1").moving_mean.numpy(), before)
