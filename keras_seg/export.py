"""Export keras-seg models to TF SavedModel, TFLite (LiteRT) and ONNX, and check the artifacts.

An export has a fixed input signature (batch and spatial size) or, with
``input_size=None``, a dynamic batch, height and width (SavedModel and ONNX). The
exported artifact is then run and compared with the Keras model, because a converter
can succeed and still produce wrong numbers.

Routes: SavedModel and TFLite are produced by TensorFlow, ONNX by tf2onnx from the
TensorFlow graph, except fixed-size ONNX on the torch backend, which is torch's own
exporter (``torch.onnx``). Otherwise on torch and JAX the model is saved as ``.keras``
and exported by a TensorFlow-backend subprocess (``python -m keras_seg.export``), since
the same weights and graph load on any backend. (jax2onnx, Keras's JAX route, cannot
trace keras-seg's resizing and pooling.)
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


def _check_input_size(input_size):
    if input_size is not None and (isinstance(input_size, (str, bytes)) or len(input_size) != 2):
        raise ValueError(f"input_size must be (height, width), or None for a dynamic batch and size; got {input_size!r}.")


def input_signature(model, input_size, batch_size=1):
    """The ``keras.InputSpec`` list for ``model`` at ``input_size=(H, W)``; with
    ``input_size=None`` batch, height and width are dynamic, with ``batch_size=None`` the batch."""
    _check_input_size(input_size)
    shape = [None, *model.input.shape[1:]]
    for a, v in zip(_spatial(model), input_size or (None, None)):
        shape[a] = None if v is None else int(v)
    if input_size is not None:
        shape[0] = batch_size
        if hasattr(model, "check_input_shape"):
            model.check_input_shape(keras.KerasTensor([1 if d is None else d for d in shape]))
    return [keras.InputSpec(shape=tuple(shape), dtype="float32")]


def signature_size(model, signature):
    """``(input_size, batch_size)`` of a Keras ``input_signature`` (one spec with a ``shape``; None
    dimensions dynamic), or of ``model``'s own input shape when ``signature`` is None."""
    spec = signature
    while isinstance(spec, (list, tuple)) and len(spec) == 1:
        spec = spec[0]
    shape = model.input.shape if signature is None else getattr(spec, "shape", None)
    if shape is None or isinstance(spec, (list, tuple, dict)) or len(shape) != 4:
        raise ValueError("input_signature must be one spec of shape (batch, height, width, channels) "
                         f"((batch, channels, height, width) channels_first), e.g. [keras.InputSpec((1, 256, 256, 3))]; got {signature!r}.")
    shape = [None if d is None else int(d) for d in shape]
    h, w = (shape[a] for a in _spatial(model))
    if (h is None) != (w is None):
        raise ValueError(f"input_signature must fix both height and width or neither, got shape {tuple(shape)}.")
    return (None if h is None else (h, w)), shape[0]


def _spatial(model):
    """The height and width axes of ``model``'s input batch."""
    return (1, 2) if getattr(model, "data_format", "channels_last") == "channels_last" else (2, 3)


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

    ``input_size=None`` exports a dynamic batch, height and width (``tf_saved_model``
    and ``onnx``; ``batch_size`` is then ignored), ``batch_size=None`` a dynamic batch. Such an artifact does not hold
    keras-seg's divisibility check: an architecture that needs H and W divisible by its
    output stride fails inside the runtime on another size (e.g. onnxruntime's shape
    error at an Add or Concat), so check sizes before running it.

    litert paths must end in ``.tflite``. ``quantize`` (litert only) selects a quantized
    TFLite conversion (see ``keras_seg.quantize``); ``calibration`` is a float32 numpy
    batch of sample inputs in the model's own layout, for the quantizations that need one.

    An existing ``path`` is refused unless ``overwrite=True``, and even then only a
    previous export of the same format is replaced (a SavedModel folder by a SavedModel
    folder, a .tflite file by a .tflite file). The export is written to a temporary path
    and renamed into place, so a failure leaves ``path`` as it was. Returns ``path``.
    """
    _check_format(format)
    path = os.fspath(path)
    if format == "litert" and not path.endswith(".tflite"):
        raise ValueError(f"A LiteRT export path must end in '.tflite', got {path!r}.")
    _check_input_size(input_size)
    if format == "litert" and (input_size is None or batch_size is None):
        raise ValueError("A LiteRT export needs a fixed input_size=(height, width) and batch_size: dynamic "
                         "shapes (input_size=None, batch_size=None) are for 'tf_saved_model' and 'onnx'.")
    if quantize is not None and format != "litert":
        raise ValueError(f"quantize applies to the 'litert' format only, got format={format!r}.")
    if quantize is not None:
        from keras_seg.quantize import check_quantize

        calibration = check_quantize(quantize, calibration)  # here, not wrapped in a subprocess's error
    input_signature(model, input_size, batch_size)  # the size checks, here before any subprocess
    check_target(path, format, overwrite)
    with (atomic_dir(path) if format == "tf_saved_model" else atomic_path(path)) as tmp:
        _write_export(model, tmp, format, input_size, batch_size, quantize, calibration)
    return path


def _write_export(model, path, format, input_size, batch_size, quantize=None, calibration=None):
    """The export itself, to ``path`` (a fresh temporary file or folder)."""
    backend = keras.backend.backend()
    native_onnx = backend == "torch" and format == "onnx" and input_size is not None and batch_size is not None
    if backend != "tensorflow" and not native_onnx:
        return _export_in_tensorflow(model, path, format, input_size, batch_size, quantize, calibration)
    signature = input_signature(model, input_size, batch_size)
    if backend == "tensorflow":
        model = _channels_last_graph(model)
    if format == "litert" and quantize is not None:
        return _write_quantized(model, path, signature, quantize, calibration, batch_size)
    keras.Model.export(model, path, format=format, input_signature=signature, verbose=False)
    if native_onnx:
        _drop_noop_squeezes(path)
    return path


def _write_quantized(model, path, signature, quantize, calibration, batch_size):
    """A quantized .tflite through a SavedModel (Keras's LiteRT route), see ``keras_seg.quantize``."""
    from keras_seg import quantize as quantization

    with tempfile.TemporaryDirectory() as tmp:
        saved_model = os.path.join(tmp, "saved_model")
        keras.Model.export(model, saved_model, format="tf_saved_model", input_signature=signature, verbose=False)
        data = quantization.convert_saved_model(saved_model, quantize, calibration, quantization.statistics_layers(model),
                                                batch_size)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _drop_noop_squeezes(path):
    """Make torch's ONNX export of Keras's torch ``take`` loadable.

    Keras's torch ``take(x, idx, axis)`` is ``index_select(...).squeeze(axis)``, a no-op squeeze
    in torch when that axis is not 1 (``Resize``'s gathers hit it); torch's exporter writes it
    as an ONNX Squeeze, which onnxruntime refuses ("Dimension of input 1 must be 1"). Such
    Squeezes (every squeezed axis statically not 1) become Identity: torch's own semantics.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in (*inferred.value_info, *inferred.input)}
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    changed = False
    for node in graph.node:
        shape = shapes.get(node.input[0]) if node.input else None
        if node.op_type != "Squeeze" or len(node.input) != 2 or node.input[1] not in constants or not shape:
            continue
        if all(shape[int(a) % len(shape)] not in (None, 1) for a in constants[node.input[1]].reshape(-1)):
            node.op_type, changed = "Identity", True
            del node.input[1:]
    if changed:
        used = {name for n in graph.node for name in n.input}
        kept = [i for i in graph.initializer if i.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        onnx.save(model, path)


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
        cmd = [sys.executable, "-m", "keras_seg.export", keras_path, path, "--format", format, "--batch-size", str(batch_size)]
        cmd += ["--dynamic"] if input_size is None else ["--input-size", str(input_size[0]), str(input_size[1])]
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
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    parser.add_argument("--batch-size", type=lambda v: None if v == "None" else int(v), default=1)
    parser.add_argument("--quantize", default=None)
    parser.add_argument("--calibration", default=None, help="a .npy file of sample inputs")
    args = parser.parse_args(argv)
    import keras_seg  # noqa: F401  (registers the model classes)

    model = keras.saving.load_model(args.model)
    calibration = None if args.calibration is None else np.load(args.calibration, allow_pickle=False)
    size = None if args.dynamic else tuple(args.input_size)
    _write_export(model, args.output, args.format, size, args.batch_size, args.quantize, calibration)


if __name__ == "__main__":
    _main()
