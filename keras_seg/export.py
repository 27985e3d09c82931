"""Export keras-seg models to TF SavedModel, TFLite (LiteRT) and ONNX, and check the artifacts.

Exports use a fixed input signature (batch and spatial size), which every runtime
handles; the exported artifact is then run and compared with the Keras model,
because a converter can succeed and still produce wrong numbers.

SavedModel and TFLite are produced by TensorFlow. On the torch and JAX backends the
model is saved as ``.keras`` and exported by a TensorFlow-backend subprocess
(``python -m keras_seg.export``), since the same weights and graph load on any backend.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from weight_ports.atomic import atomic_dir, atomic_path

FORMATS = ("tf_saved_model", "litert", "onnx")


def _check_format(format):
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; valid formats are {FORMATS}.")


def input_signature(model, input_size, batch_size=1):
    """The fixed ``keras.InputSpec`` list for ``model`` at ``input_size=(H, W)``."""
    if input_size is None or len(input_size) != 2:
        raise ValueError(f"input_size must be (height, width), got {input_size!r}.")
    h, w = (int(v) for v in input_size)
    if hasattr(model, "check_input_shape"):
        shape = (batch_size, h, w, 3) if model.data_format == "channels_last" else (batch_size, 3, h, w)
        model.check_input_shape(keras.KerasTensor(shape))
    in_shape = list(model.input.shape[1:])
    axes = (0, 1) if model.data_format == "channels_last" else (1, 2)
    in_shape[axes[0]], in_shape[axes[1]] = h, w
    return [keras.InputSpec(shape=(batch_size, *in_shape), dtype="float32")]


class ExportTargetError(FileExistsError):
    """The export path holds something that may not be replaced."""


def _is_previous_export(path, format):
    """Whether ``path`` holds an export of ``format`` (which overwrite may replace)."""
    if format == "tf_saved_model":
        return os.path.isdir(path) and not os.path.islink(path) and any(
            os.path.isfile(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt"))
    if not os.path.isfile(path) or os.path.islink(path):
        return False
    with open(path, "rb") as f:
        head = f.read(8)
    if format == "litert":
        return head[4:8] == b"TFL3"  # the TFLite flatbuffer identifier
    return path.endswith(".onnx")


def check_target(path, format, overwrite=False, option="overwrite=True"):
    """Refuse an existing ``path`` unless ``overwrite`` and it holds a previous ``format`` export.

    ``option`` names the switch in the error (the CLI passes ``--overwrite``).
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    kind = {"tf_saved_model": "a SavedModel folder", "litert": "a .tflite file", "onnx": "an .onnx file"}[format]
    if not overwrite:
        raise ExportTargetError(f"{path} already exists: pass {option} to replace a previous export, or choose another path.")
    if not _is_previous_export(path, format):
        raise ExportTargetError(f"{path} exists and is not {kind} from a previous export; refusing to replace it (choose another path).")


def export_model(model, path, format="tf_saved_model", input_size=(256, 256), batch_size=1, overwrite=False,
                 quantize=None, calibration=None):
    """Export ``model`` to ``path`` in ``format`` for inputs of ``input_size`` = (H, W).

    litert paths must end in ``.tflite``. ``quantize`` (litert only) selects a quantized
    TFLite conversion (see ``keras_seg.quantize``); ``calibration`` is a float32 numpy
    batch of sample inputs in the model's own layout, for the quantizations that need one. An existing ``path`` is refused unless
    ``overwrite=True``, and even then only a previous export of the same format is
    replaced (a SavedModel folder by a SavedModel folder, a .tflite file by a .tflite
    file). The export is written to a temporary path and renamed into place, so a
    failure leaves ``path`` as it was. Returns ``path``.
    """
    _check_format(format)
    path = os.fspath(path)
    if format == "litert" and not path.endswith(".tflite"):
        raise ValueError(f"A LiteRT export path must end in '.tflite', got {path!r}.")
    if input_size is None or len(input_size) != 2:
        raise ValueError(f"input_size must be (height, width), got {input_size!r}.")
    if quantize is not None and format != "litert":
        raise ValueError(f"quantize applies to the 'litert' format only, got format={format!r}.")
    check_target(path, format, overwrite)
    with (atomic_dir(path) if format == "tf_saved_model" else atomic_path(path)) as tmp:
        _write_export(model, tmp, format, input_size, batch_size, quantize, calibration)
    return path


def _write_export(model, path, format, input_size, batch_size, quantize=None, calibration=None):
    """The export itself, to ``path`` (a fresh temporary file or folder)."""
    if format in ("tf_saved_model", "litert") and keras.backend.backend() != "tensorflow":
        return _export_in_tensorflow(model, path, format, input_size, batch_size, quantize, calibration)
    signature = input_signature(model, input_size, batch_size)
    kwargs = {}
    if format == "litert" and quantize is not None:
        from keras_seg.quantize import converter_kwargs

        kwargs = converter_kwargs(quantize, calibration)
    if format in ("tf_saved_model", "litert"):
        model = _channels_last_graph(model)
    model.export(path, format=format, input_signature=signature, verbose=False, **kwargs)
    return path


def _channels_last_graph(model):
    """``model`` as a TensorFlow-friendly graph: NHWC inside, the original layout outside.

    TensorFlow kernels and the TFLite converter are built for NHWC (TFLite cannot prepare
    the SPACE_TO_BATCH_ND that a dilated NCHW convolution lowers to), so a channels_first
    model is rebuilt channels_last with the same weights (Keras kernels do not depend on
    the data format) between two transposes. The exported signature stays NCHW.
    """
    if getattr(model, "data_format", "channels_last") != "channels_first" or not hasattr(model, "get_config"):
        return model
    config = dict(model.get_config(), data_format="channels_last")
    twin = model.__class__.from_config(config)
    source = {v.path: v for v in model.weights}
    if sorted(source) != sorted(v.path for v in twin.weights):
        raise RuntimeError(f"Cannot rebuild {model.name} channels_last for export: its variables differ.")
    for variable in twin.weights:  # by path: layer build order may differ between layouts
        variable.assign(source[variable.path])
    inputs = keras.Input(batch_shape=model.input.shape, dtype=model.input.dtype)
    outputs = twin(keras.ops.transpose(inputs, (0, 2, 3, 1)))
    to_nchw = lambda t: keras.ops.transpose(t, (0, 3, 1, 2)) if len(t.shape) == 4 else t  # noqa: E731
    outputs = [to_nchw(o) for o in outputs] if isinstance(outputs, (list, tuple)) else to_nchw(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_nhwc")


def _export_in_tensorflow(model, path, format, input_size, batch_size, quantize=None, calibration=None):
    with tempfile.TemporaryDirectory() as tmp:
        keras_path = os.path.join(tmp, "model.keras")
        model.save(keras_path)
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, "-m", "keras_seg.export", keras_path, path, "--format", format,
               "--input-size", str(input_size[0]), str(input_size[1]), "--batch-size", str(batch_size)]
        if quantize is not None:
            cmd += ["--quantize", str(quantize)]
        if calibration is not None:
            calibration_path = os.path.join(tmp, "calibration.npy")
            np.save(calibration_path, np.asarray(calibration, "float32"), allow_pickle=False)
            cmd += ["--calibration", calibration_path]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"Export to {format} in a TensorFlow subprocess failed:\n{result.stderr[-4000:]}")
    return path


def run_exported(path, format, x):
    """Run an exported artifact on the numpy batch ``x``; returns a list of numpy outputs."""
    _check_format(format)
    x = np.asarray(x, "float32")
    if format == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep a reference: serve() uses its variables
        out = loaded.serve(tf.constant(x))
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o) for o in outs]
    if format == "litert":
        interpreter = _tflite_interpreter(path)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        details = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
        return [interpreter.get_tensor(d["index"]) for d in details]
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("Running ONNX exports needs onnxruntime (pip install onnxruntime).") from e
    session = onnxruntime.InferenceSession(path)
    return session.run(None, {session.get_inputs()[0].name: x})


def _tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def compare_exported(model, path, format, x):
    """Max absolute difference between the Keras model and the exported artifact on ``x``."""
    expected = model(x, training=False)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    expected = [keras.ops.convert_to_numpy(e) for e in expected]
    actual = run_exported(path, format, x)
    if len(actual) != len(expected):
        raise AssertionError(f"{format} artifact has {len(actual)} outputs, the model {len(expected)}.")
    if len(actual) > 1:  # match outputs by shape (TFLite orders them by name)
        actual = sorted(actual, key=lambda a: a.shape)
        expected = sorted(expected, key=lambda a: a.shape)
    return max(float(np.abs(a - e).max()) for a, e in zip(actual, expected))


def _main(argv=None):
    parser = argparse.ArgumentParser(description="Export a .keras segmentation model.")
    parser.add_argument("model")
    parser.add_argument("output")
    parser.add_argument("--format", default="tf_saved_model", choices=FORMATS)
    parser.add_argument("--input-size", nargs=2, type=int, default=(256, 256))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--quantize", default=None)
    parser.add_argument("--calibration", default=None, help="a .npy file of sample inputs")
    args = parser.parse_args(argv)
    import keras_seg  # noqa: F401  (registers the model classes)

    model = keras.saving.load_model(args.model)
    calibration = None if args.calibration is None else np.load(args.calibration, allow_pickle=False)
    _write_export(model, args.output, args.format, tuple(args.input_size), args.batch_size, args.quantize, calibration)


if __name__ == "__main__":
    _main()
