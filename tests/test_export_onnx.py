"""ONNX export of every architecture (run in onnxruntime, compared with Keras), dynamic
shapes, and Keras's own ``model.export`` on keras-seg models, on every backend."""

import os

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg.export import compare_exported, export_model, run_exported
from tests.arch_configs import ARCH_CONFIGS, INPUT_SIZES
from tests.parity import NATIVE_FORMAT, tmpdir

BACKEND = keras.backend.backend()
DPT = dict(encoder_name="tu-vit_tiny_patch16_224", img_size=32, decoder_intermediate_channels=(8, 16, 32, 32), decoder_fusion_channels=16)
CONFIGS = {**{arch: dict(encoder_name="resnet18", **config) for arch, config in ARCH_CONFIGS.items()}, "dpt": DPT}
SIZES = {**INPUT_SIZES, "dpt": 32}
# Every architecture on some backend (CI time: tf2onnx's optimizer takes 30-45 s on FPN, DeepLabV3(+)
# and PAN, which torch.onnx exports in 10-30 s, in the backend's channels_first layout; JAX goes through
# the TensorFlow subprocess, ~10 s an export). Torch's four were the ones onnxruntime refused before
# export._drop_noop_squeezes (Keras's torch `take` writes a no-op Squeeze). DPT's exact GELU is the kit's
# erf form: TensorFlow's own writes Erfc, which is no ONNX op.
ONNX_ARCHS = {
    "tensorflow": ["dpt", "linknet", "manet", "pspnet", "segformer", "unet", "unetplusplus", "upernet"],
    "torch": ["deeplabv3", "deeplabv3plus", "fpn", "pan", "unet"],
    "jax": ["unet"],
}[BACKEND]


def _image(model, shape):
    n, h, w = shape
    shape = (n, h, w, 3) if model.data_format == "channels_last" else (n, 3, h, w)
    return np.random.RandomState(0).rand(*shape).astype("float32")


def _relative_error(model, path, fmt, x):
    scale = max(float(np.abs(keras.ops.convert_to_numpy(model(x, training=False))).max()), 1e-6)
    return compare_exported(model, path, fmt, x) / scale


@pytest.mark.parametrize("arch", ONNX_ARCHS)
def test_onnx_export_matches_keras(arch):
    data_format = NATIVE_FORMAT if arch != "dpt" else "channels_last"
    model = keras_seg.create_model(arch, encoder_weights=None, classes=2, data_format=data_format, **CONFIGS[arch])
    size = SIZES.get(arch, 64)
    path = export_model(model, f"{tmpdir()}/model.onnx", "onnx", input_size=(size, size))
    assert _relative_error(model, path, "onnx", _image(model, (1, size, size))) < 1e-4


@pytest.fixture(scope="module")
def model():
    """Unet++ of depth 3: H and W must be multiples of 8 (and its ONNX conversion is one of the
    quickest; FPN's takes ~45 s in tf2onnx's graph optimizer)."""
    return keras_seg.UnetPlusPlus("resnet18", encoder_weights=None, classes=2, **ARCH_CONFIGS["unetplusplus"])


def test_model_export_is_keras_seg_export_with_dynamic_shapes(model):
    """``model.export`` as Keras documents it (issue 16: FPN failed on JAX and torch; on those backends
    the call now goes through the TensorFlow subprocess): without an input_signature the model's own
    dynamic batch and size, checked at two sizes."""
    folder = tmpdir()
    model.export(f"{folder}/saved_model")  # Keras's default format
    model.export(f"{folder}/model.onnx", format="onnx")
    for shape in ((1, 64, 64), (2, 32, 96)):
        x = _image(model, shape)
        for fmt, name in (("tf_saved_model", "saved_model"), ("onnx", "model.onnx")):
            (out,) = run_exported(f"{folder}/{name}", fmt, x)
            assert out.shape == (shape[0], shape[1], shape[2], 2), fmt
            assert _relative_error(model, f"{folder}/{name}", fmt, x) < 1e-4, (fmt, shape)
    # the dynamic artifact holds no divisibility check: a size off the multiple of 8 fails in the runtime
    with pytest.raises(Exception, match="Non concat axis dimensions must match"):
        run_exported(f"{folder}/model.onnx", "onnx", _image(model, (1, 36, 36)))
    with pytest.raises(FileExistsError, match="already exists: pass overwrite=True"):
        model.export(f"{folder}/model.onnx", format="onnx")  # keras-seg's rule, not Keras's overwrite


@pytest.mark.skipif(BACKEND != "tensorflow", reason="CI time: the signature mapping is backend-independent and "
                    "LiteRT from torch/JAX (the TensorFlow subprocess) is checked in test_export.py")
def test_model_export_litert_with_input_signature(model):
    folder = tmpdir()
    path = f"{folder}/model.tflite"
    with pytest.raises(ValueError, match="LiteRT export needs a fixed input_size"):
        model.export(path, format="litert")  # the model's input is dynamic
    model.export(path, format="litert", input_signature=[keras.InputSpec(shape=(1, 64, 64, 3))])
    assert _relative_error(model, path, "litert", _image(model, (1, 64, 64))) < 1e-4
    assert not os.path.exists(f"{folder}/model.onnx")


def test_model_export_rejects_bad_arguments(model):
    folder = tmpdir()
    with pytest.raises(ValueError, match="valid formats are"):
        model.export(f"{folder}/m", format="openvino")
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['opset_version'\\]"):
        model.export(f"{folder}/m.onnx", format="onnx", opset_version=17)
    with pytest.raises(ValueError, match="fix both height and width or neither"):
        model.export(f"{folder}/m.onnx", format="onnx", input_signature=[keras.InputSpec(shape=(1, 64, None, 3))])
    with pytest.raises(ValueError, match="input_signature must be one spec"):
        model.export(f"{folder}/m.onnx", format="onnx", input_signature=[keras.InputSpec(shape=(1, 64, 3))])
    with pytest.raises(ValueError, match="divisible by 8"):
        model.export(f"{folder}/m.onnx", format="onnx", input_signature=[keras.InputSpec(shape=(1, 36, 36, 3))])
    assert os.listdir(folder) == []
