"""Exported models (.tflite, .onnx, SavedModel folders) loaded once and run like a Keras model.

``Artifact(path)`` opens the runtime (LiteRT, onnxruntime, TensorFlow) once;
``artifact(x)`` runs a numpy batch, sample group by sample group when the artifact has
a fixed batch size. ``SegmentationArtifact`` adds what ``keras_seg.training``'s
evaluation reads from a model (``data_format``, ``config``, ``predict``), so
``evaluate_masks`` scores an exported model exactly as it scores the Keras one.
"""

import os

import numpy as np

ARTIFACT_KINDS = {".tflite": "litert", ".onnx": "onnx"}


def artifact_format(path):
    """"litert", "onnx" or "tf_saved_model" for ``path``; ``ValueError`` for anything else."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if any(os.path.isfile(os.path.join(path, n)) for n in ("saved_model.pb", "saved_model.pbtxt")):
            return "tf_saved_model"
        raise ValueError(f"{path} is a folder without saved_model.pb: not a SavedModel export.")
    if not os.path.isfile(path):
        raise ValueError(f"Exported model not found: {path}")
    kind = ARTIFACT_KINDS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise ValueError(f"{path}: an exported model must be a .tflite file, an .onnx file or a SavedModel folder.")
    return kind


def _dim(value):
    return value if isinstance(value, int) and value > 0 else None  # None / -1 / "batch": dynamic


def litert_interpreter(path, threads=None):
    """LiteRT's interpreter (the ai-edge-litert package); TensorFlow's deprecated one where it is absent."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite import Interpreter
    return Interpreter(model_path=os.fspath(path), num_threads=threads)


class Artifact:
    """An exported model: ``input_shape`` (``None`` for dynamic axes) and ``__call__(x) -> [outputs]``.

    ``threads``: CPU threads of the LiteRT / onnxruntime runtime (default: theirs).
    """

    def __init__(self, path, threads=None):
        self.path = os.fspath(path)
        self.format = artifact_format(self.path)
        self.threads = threads
        getattr(self, f"_open_{self.format}")()

    def _open_litert(self):
        try:
            self._interpreter = litert_interpreter(self.path, self.threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.path} is not a loadable .tflite model: {e}") from None
        self._input = self._interpreter.get_input_details()[0]
        self.input_shape = tuple(_dim(int(d)) for d in self._input["shape"])
        self._outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["name"])

    def _open_onnx(self):
        try:
            import onnxruntime
        except ImportError as e:
            raise ImportError("Running ONNX exports needs onnxruntime (pip install onnxruntime).") from e
        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        self._session = onnxruntime.InferenceSession(self.path, options)
        first = self._session.get_inputs()[0]
        self._input_name = first.name
        self.input_shape = tuple(_dim(d) for d in first.shape)

    def _open_tf_saved_model(self):
        import tensorflow as tf

        self._loaded = tf.saved_model.load(self.path)  # keep a reference: serve() uses its variables
        spec = self._loaded.signatures["serving_default"].structured_input_signature[1]
        self.input_shape = tuple(_dim(d) for d in next(iter(spec.values())).shape.as_list())

    def _run(self, x):
        if self.format == "litert":
            self._interpreter.set_tensor(self._input["index"], x)
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(d["index"]) for d in self._outputs]
        if self.format == "onnx":
            return self._session.run(None, {self._input_name: x})
        import tensorflow as tf

        out = self._loaded.serve(tf.constant(x))
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    def __call__(self, x):
        """Outputs for the float32 batch ``x``, in groups of the artifact's fixed batch size."""
        x = np.asarray(x, np.float32)
        step = self.input_shape[0] or len(x)
        if len(x) % step:
            raise ValueError(f"{self.path} takes batches of {step}; got {len(x)} samples.")
        parts = [self._run(x[i:i + step]) for i in range(0, len(x), step)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


class SegmentationArtifact(Artifact):
    """An ``Artifact`` of a keras-seg model, evaluable by ``training.evaluate_masks``.

    ``config`` is the Keras model's (classes, activation; may be set after opening); the
    layout is read from the artifact's input shape (``channels`` image channels).
    """

    def __init__(self, path, config=None, channels=3):
        super().__init__(path)
        self.config = dict(config or {})
        shape = self.input_shape
        if len(shape) != 4 or channels not in (shape[1], shape[3]):
            raise ValueError(f"{self.path} takes inputs of shape {shape}, not a batch of {channels}-channel images.")
        self.data_format = "channels_last" if shape[3] == channels else "channels_first"
        self.image_size = shape[1:3] if self.data_format == "channels_last" else shape[2:4]

    def predict(self, x, batch_size=None, verbose=0):
        """The mask output (the largest 4-D output: a classification head's is 2-D)."""
        outputs = [o for o in self(x) if o.ndim == 4]
        return max(outputs, key=lambda o: o.size)
