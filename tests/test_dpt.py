"""DPT against SMP's DPT (built with timm's random weights, ported through SMP's save_pretrained):
parity for readouts, depths, output indices and input sizes that make timm resample the position
embedding; interop both ways; SMP's input and argument checks; create_model, .keras and export."""

import json
import warnings

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

import keras_seg
from tests.parity import (BACKEND, NATIVE_FORMAT, assert_state_dicts_identical, assert_trains, image, relative_error,
                          run_keras, run_smp, smp_model, tmpdir, to_format, to_keras, trained)
from tests.test_encoder_vit import randomize_vit

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: checked on the torch backend")
TINY = "tu-vit_tiny_patch16_224"
SMALL = dict(decoder_intermediate_channels=(8, 16, 32, 32), decoder_fusion_channels=16)

# SMP's DPT arguments (timm's img_size / dynamic_img_size / reg_tokens forwarded by both), input (H, W)
CONFIGS = {
    "cat": (dict(encoder_name=TINY, img_size=64, **SMALL), (64, 64)),
    "add_depth3_indices_aux": (
        dict(encoder_name=TINY, encoder_depth=3, encoder_output_indices=[0, 5, -1], decoder_readout="add", img_size=32,
             decoder_intermediate_channels=(8, 16, 16), decoder_fusion_channels=8, classes=3, aux_params=dict(classes=2, dropout=None)),
        (32, 32),
    ),
    # depth 5: the fifth reassemble block downsamples 4x; registers (timm's reg_tokens) read out by "cat"
    "cat_depth5_registers": (
        dict(encoder_name=TINY, encoder_depth=5, reg_tokens=4, no_embed_class=True, img_size=64,
             decoder_intermediate_channels=(8, 8, 8, 8, 8), decoder_fusion_channels=8),
        (64, 64),
    ),
    # no prefix tokens (SMP warns): "cat" projects the features alone
    "cat_no_prefix_tokens": (dict(encoder_name=TINY, class_token=False, global_pool="avg", img_size=32, **SMALL), (32, 32)),
    # patch 8: reassemble factors 2, 1, 1/2, 1/4 (a stride-4 conv)
    "cat_patch8": (dict(encoder_name="tu-vit_small_patch8_224", img_size=32, **SMALL), (32, 32)),
    # position embedding resampled every forward: 2x2 -> 4x6 (bicubic up), 6x6 -> 4x2 (antialiased down). (SMP's
    # fusion needs an even patch grid at depth 4, i.e. inputs that are multiples of 32, though it checks 16.)
    "ignore_dynamic_up": (dict(encoder_name=TINY, decoder_readout="ignore", img_size=32, dynamic_img_size=True, **SMALL), (64, 96)),
    "add_dynamic_down": (dict(encoder_name=TINY, decoder_readout="add", img_size=96, dynamic_img_size=True, **SMALL), (64, 32)),
}
ALL_BACKENDS = ("cat", "cat_depth5_registers", "add_dynamic_down")


def smp_dpt(seed=0, **kwargs):
    return randomize_vit(smp_model("DPT", seed=seed, **kwargs), seed)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    if config not in ALL_BACKENDS and (BACKEND != "torch" or data_format == "channels_last"):
        pytest.skip("torch backend, channels_first only (CI time); the all-backend cases cover both layouts")
    kwargs, (h, w) = CONFIGS[config]
    reference = smp_dpt(**kwargs)
    model = to_keras(reference, data_format)
    x = image((1, 3, h, w))
    expected, actual = run_smp(reference, x), run_keras(model, x, data_format)
    assert len(actual) == len(expected) == (2 if "aux_params" in kwargs else 1)
    errors = [relative_error(a, e) for a, e in zip(actual, expected)]
    assert all(a.shape == e.shape for a, e in zip(actual, expected)) and max(errors) < 1e-4, f"{errors} on {BACKEND}/{data_format}"


@torch_only
def test_interop_round_trip_bit_identical():
    kwargs = dict(CONFIGS["add_depth3_indices_aux"][0])
    reference = trained(smp_dpt(**kwargs), size=32)
    model = to_keras(reference, "channels_last")
    assert model.config == json.loads(json.dumps({**reference.config, "encoder_weights": None}))  # config.json's values
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "DPT" and back.encoder.model.patch_embed.img_size == (32, 32)
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())


@torch_only
def test_checkpoint_keras_seg_trained_is_smps_model():
    """keras-seg's own init after one training step, written with save_pretrained and read by SMP: the
    same tensors and outputs."""
    model = keras_seg.DPT(TINY, encoder_weights=None, img_size=32, classes=2, data_format=NATIVE_FORMAT, **SMALL)
    x = image((2, 3, 32, 32))
    y = np.random.RandomState(1).rand(*keras.ops.shape(model(to_format(x, NATIVE_FORMAT)))).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(to_format(x, NATIVE_FORMAT), y)
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d).eval()
    ours = model.torch_state_dict()
    assert int(ours["segmentation_head.head.1.num_batches_tracked"]) == 1
    assert_state_dicts_identical({k: torch.from_numpy(np.asarray(v)) for k, v in ours.items()}, back.state_dict())
    for a, e in zip(run_keras(model, x, NATIVE_FORMAT), run_smp(back, x)):
        assert a.shape == e.shape and relative_error(a, e) < 1e-4


@torch_only
def test_trains_and_freezes():
    model = keras_seg.DPT(TINY, encoder_weights=None, img_size=32, data_format=NATIVE_FORMAT, **SMALL)
    assert_trains(model, image((2, 3, 32, 32)), NATIVE_FORMAT)
    model.freeze_encoder()
    assert not any(v.trainable for v in model.encoder.weights)
    model.unfreeze_encoder()
    dormant = {id(layer) for layer in model.encoder.dormant_layers}  # the classifier and final norm, never computed
    assert dormant and all(layer.trainable == (id(layer) not in dormant) for layer in model.encoder.layers if layer.weights)


@torch_only
def test_input_shape_rules(data_format):
    fixed = keras_seg.DPT(TINY, encoder_weights=None, img_size=32, data_format=data_format, **SMALL)
    dynamic = keras_seg.DPT(TINY, encoder_weights=None, img_size=32, dynamic_img_size=True, data_format=data_format, **SMALL)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 16.*\(48, 32\)"):
        dynamic(to_format(image((1, 3, 40, 32)), data_format))
    with pytest.raises(keras_seg.InputShapeError, match=r"Input height \(64\) doesn't match model \(32\).*dynamic_img_size=True"):
        fixed(to_format(image((1, 3, 64, 32)), data_format))
    assert tuple(keras.ops.shape(dynamic(to_format(image((1, 3, 64, 32)), data_format)))) == to_format(np.zeros((1, 1, 64, 32)), data_format).shape
    assert fixed.encoder.input_size == (3, 224, 224) and fixed.encoder.is_fixed_input_size


@torch_only
def test_config_create_model_and_keras_file(tmp_path):
    model = keras_seg.create_model("dpt", encoder_name=TINY, encoder_weights=None, img_size=32, **SMALL)
    assert isinstance(model, keras_seg.DPT) and model.name == "dpt-vit_tiny_patch16_224"
    assert type(smp.create_model("dpt", encoder_name=TINY, encoder_weights=None, img_size=32)).__name__ == "DPT"
    assert keras_seg.DPT.from_config(model.get_config()).get_config() == model.get_config()
    x = to_format(image((1, 3, 32, 32)), model.data_format)
    model.save(tmp_path / "dpt.keras")
    loaded = keras.saving.load_model(tmp_path / "dpt.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)


def _errors(smp_fn, ours_fn):
    try:
        smp_fn()
    except Exception as e:  # noqa: BLE001
        expected = e
    else:
        raise AssertionError("SMP accepted it")
    with pytest.raises(type(expected)) as raised:
        ours_fn()
    return str(raised.value), str(expected)


@torch_only
@pytest.mark.parametrize(
    "kwargs",
    [dict(encoder_name="resnet18"), dict(decoder_readout="concat"), dict(encoder_depth=5), dict(encoder_depth=0),
     dict(encoder_output_indices=[0, 1, 2]), dict(in_chans=1)],
    ids=["not_timm", "readout", "intermediate_length", "depth0", "indices_length", "duplicate_kwarg"],
)
def test_argument_errors_are_smps(kwargs):
    kwargs = {"encoder_name": TINY, "encoder_weights": None, "img_size": 32, **kwargs}
    ours, theirs = _errors(lambda: smp.DPT(**kwargs), lambda: keras_seg.DPT(**kwargs))
    assert ours.startswith(theirs), (ours, theirs)


@torch_only
def test_sizes_the_fusion_blocks_cannot_add_up():
    """A patch grid that the fusion blocks cannot add up (odd at depth 4; any with patch 14) fails in SMP's
    forward with a size mismatch; keras-seg says why when it is built (fixed size) or called (dynamic)."""
    for kwargs, size, message in [
        (dict(encoder_name=TINY, img_size=48), 48, r"input height of 48 \(3 patches of 16\).*multiples of 32"),
        (dict(encoder_name="tu-vit_small_patch14_dinov2", img_size=56), 56, "no input size fuses with this patch size"),
    ]:
        reference = smp.DPT(encoder_weights=None, **kwargs, **SMALL).eval()
        with pytest.raises(RuntimeError, match="must match the size"):
            reference(torch.rand(1, 3, size, size))
        with pytest.raises(ValueError, match=message):
            keras_seg.DPT(encoder_weights=None, **kwargs, **SMALL)
    dynamic = keras_seg.DPT(TINY, encoder_weights=None, img_size=32, dynamic_img_size=True, data_format="channels_last", **SMALL)
    with pytest.raises(keras_seg.InputShapeError, match=r"input width of 80 \(5 patches of 16\).*multiples of 32"):
        dynamic(to_format(image((1, 3, 64, 80)), "channels_last"))


@torch_only
def test_readout_without_prefix_tokens_warns_as_smp():
    kwargs = dict(encoder_name=TINY, encoder_weights=None, img_size=32, class_token=False, global_pool="avg")
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        smp.DPT(**kwargs)
    with pytest.warns(UserWarning) as ours:
        keras_seg.DPT(**kwargs, **SMALL)
    assert [str(w.message) for w in ours if "prefix tokens" in str(w.message)] == [str(w.message) for w in theirs if "prefix tokens" in str(w.message)]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="direct TensorFlow export; other backends export through a TF subprocess (tested with Unet)")
def test_export_matches_keras():
    from keras_seg.export import compare_exported, export_model

    model = keras_seg.DPT(TINY, encoder_weights=None, img_size=32, classes=2, data_format="channels_last", **SMALL)
    x = image((1, 32, 32, 3))
    scale = max(float(np.abs(keras.ops.convert_to_numpy(model(x))).max()), 1e-6)
    for fmt, filename in [("tf_saved_model", "saved_model"), ("litert", "model.tflite")]:
        path = export_model(model, f"{tmpdir()}/{filename}", fmt, input_size=(32, 32))
        assert compare_exported(model, path, fmt, x) / scale < 1e-4, fmt
