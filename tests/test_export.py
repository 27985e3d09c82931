"""Export to TF SavedModel and TFLite: the artifacts reproduce the Keras outputs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg.export import ExportTargetError, compare_exported, export_model
from tests.arch_configs import ARCH_CONFIGS, INPUT_SIZES
from tests.parity import NATIVE_FORMAT, infer, tmpdir

BACKEND = keras.backend.backend()
FORMATS = [("tf_saved_model", "saved_model"), ("litert", "model.tflite")]

def _image(model, size=64):
    shape = (1, size, size, 3) if model.data_format == "channels_last" else (1, 3, size, size)
    return np.random.RandomState(0).rand(*shape).astype("float32")


@pytest.mark.parametrize("fmt, filename", FORMATS)
def test_unet_export_matches_keras(fmt, filename):
    model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(32, 16, 8), classes=2, aux_params={"classes": 3})
    path = export_model(model, f"{tmpdir()}/{filename}", fmt, input_size=(64, 64))
    assert compare_exported(model, path, fmt, _image(model)) < 1e-4
    with pytest.raises(ExportTargetError, match="already exists: pass overwrite=True"):
        export_model(model, path, fmt, input_size=(64, 64))
    other = "onnx" if fmt == "tf_saved_model" else "tf_saved_model"  # a folder by a file, a file by a folder
    with pytest.raises(ExportTargetError, match="is not an .onnx file" if other == "onnx" else "is not a SavedModel folder"):
        export_model(model, path, other, input_size=(64, 64), overwrite=True)
    assert compare_exported(model, path, fmt, _image(model)) < 1e-4  # untouched


def test_export_overwrite_replaces_only_a_previous_export_of_the_same_format(tmp_path):
    import os

    model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(8, 8))
    user = tmp_path / "my_folder"
    user.mkdir()
    (user / "data.txt").write_text("keep me")
    for overwrite, message in ((False, "already exists"), (True, "is not a SavedModel folder")):
        with pytest.raises(ExportTargetError, match=message):
            export_model(model, user, "tf_saved_model", input_size=(32, 32), overwrite=overwrite)
    assert os.listdir(user) == ["data.txt"]
    previous = tmp_path / "model.tflite"
    previous.write_bytes(b"\x1c\x00\x00\x00TFL3 from before")
    export_model(model, previous, "litert", input_size=(32, 32), overwrite=True)
    assert b"from before" not in previous.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["model.tflite", "my_folder"]  # no temporary left


# channels_first models export through a channels_last twin between two transposes; that path is
# checked on DeepLabV3+, which has plain, dilated (its OS16 encoder) and separable-dilated convolutions
# (CI time: PAN's channels_first export alone took 86 s, Unet's 39 s).
# Keras's LiteRT export writes the model's SavedModel (its ExportArchive) and converts that, so the
# SavedModel artifact itself is loaded and compared on Unet (above) and the channels_first case only.
CHANNELS_FIRST_EXPORTS = ("deeplabv3plus",)
EXPORT_CASES = [(arch, "channels_last") for arch in sorted(ARCH_CONFIGS)] + [(arch, "channels_first") for arch in CHANNELS_FIRST_EXPORTS]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="direct TensorFlow export; other backends export through a TF subprocess (tested with Unet)")
@pytest.mark.parametrize("arch, data_format", EXPORT_CASES)
def test_every_architecture_exports(arch, data_format):
    if arch not in keras_seg.ARCHITECTURES:
        pytest.skip(f"{arch} is not in this checkout")
    model = keras_seg.create_model(arch, encoder_name="resnet18", encoder_weights=None, classes=2, data_format=data_format, **ARCH_CONFIGS[arch])
    size = INPUT_SIZES.get(arch, 64)
    x = _image(model, size)
    for fmt, filename in FORMATS if data_format == "channels_first" else FORMATS[1:]:
        path = export_model(model, f"{tmpdir()}/{filename}", fmt, input_size=(size, size))
        scale = max(float(np.abs(keras.ops.convert_to_numpy(model(x))).max()), 1e-6)
        assert compare_exported(model, path, fmt, x) / scale < 1e-4, fmt


# Run by a TensorFlow-backend interpreter: each .keras file written on another backend loads there
# and gives that backend's outputs (the export path of torch and JAX models: keras_seg.export saves
# the model and exports it in such a subprocess, so what TensorFlow loads is what gets exported).
_LOAD_IN_TENSORFLOW = """
import json, sys
import keras_seg  # first: triton before TensorFlow, oneDNN for channels_first
import keras, numpy as np
errors = {}
for name in sys.argv[1:]:
    model = keras.saving.load_model(name + ".keras")
    x, expected = np.load(name + ".x.npy"), np.load(name + ".out.npy")
    out = keras.ops.convert_to_numpy(model(x, training=False))
    errors[name] = float(np.abs(out - expected).max() / max(np.abs(expected).max(), 1e-6)) if out.shape == expected.shape else str(out.shape)
print(json.dumps(errors))
"""


@pytest.mark.skipif(BACKEND == "tensorflow", reason="a .keras file from another backend, loaded by TensorFlow")
def test_every_architecture_keras_file_loads_in_tensorflow(tmp_path):
    names = []
    for arch in sorted(ARCH_CONFIGS):  # in the backend's fast layout: channels_first on torch
        model = keras_seg.create_model(arch, encoder_name="resnet18", encoder_weights=None, classes=2,
                                       data_format=NATIVE_FORMAT, **ARCH_CONFIGS[arch])
        size = INPUT_SIZES.get(arch, 64)
        x = _image(model, size)
        name = str(tmp_path / arch)
        model.save(name + ".keras")
        np.save(name + ".x.npy", x)
        np.save(name + ".out.npy", keras.ops.convert_to_numpy(infer(model, x)))
        names.append(name)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", _LOAD_IN_TENSORFLOW, *names], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(errors) == len(ARCH_CONFIGS)
    bad = {os.path.basename(k): v for k, v in errors.items() if isinstance(v, str) or v > 1e-4}
    assert bad == {}, f"outputs in TensorFlow differ from {BACKEND}'s ({NATIVE_FORMAT}): {bad}"


def test_export_rejects_bad_arguments():
    model = keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(16, 8))
    with pytest.raises(ValueError, match="valid formats"):
        export_model(model, f"{tmpdir()}/m", "coreml")
    with pytest.raises(ValueError, match=".tflite"):
        export_model(model, f"{tmpdir()}/m.bin", "litert", input_size=(32, 32))
    with pytest.raises(ValueError, match="input_size"):
        export_model(model, f"{tmpdir()}/m", "tf_saved_model", input_size=(32,))
    with pytest.raises(ValueError, match="quantize applies to the 'litert' format only"):
        export_model(model, f"{tmpdir()}/m", "tf_saved_model", input_size=(32, 32), quantize="float16")
