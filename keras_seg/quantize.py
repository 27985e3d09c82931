"""Quantized TFLite (LiteRT) conversion settings.

``export_model(..., format="litert", quantize=MODE, calibration=X)`` passes
``converter_kwargs(MODE, X)`` to Keras's LiteRT export, which sets them on the
``tf.lite.TFLiteConverter``:

- ``"float16"``: weights stored as float16 (half the file), computed in float32.
- ``"dynamic"``: dynamic-range quantization: int8 weights, activations quantized on
  the fly; no calibration data.
- ``"int8"``: full-integer quantization: int8 weights and activations, every op an
  int8 builtin, calibrated on ``calibration`` (sample inputs of the model, e.g. a few
  dozen training images preprocessed as for training). Input and output stay float32,
  so the artifact takes the same inputs as the float model.
"""

import numpy as np

QUANTIZE_MODES = ("float16", "dynamic", "int8")
NEEDS_CALIBRATION = ("int8",)


def check_quantize(quantize, calibration=None):
    """Raise ``ValueError`` for an unknown mode or missing / malformed calibration data.

    Returns the calibration as a float32 array (``None`` when the mode needs none).
    Importable without TensorFlow, so callers can check before starting a conversion.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"Unknown quantize value {quantize!r}; valid values are {', '.join(QUANTIZE_MODES)}.")
    if quantize not in NEEDS_CALIBRATION:
        return None
    if calibration is None:
        raise ValueError(f"quantize={quantize!r} needs calibration data: a batch of sample inputs "
                         "(the CLI takes them from the run's training data, --calibration-data or synthetic).")
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError(f"calibration must be a non-empty batch of images (N, H, W, C) or (N, C, H, W), "
                         f"got an array of shape {calibration.shape}.")
    if not np.isfinite(calibration).all():
        raise ValueError("calibration holds NaN or infinite values.")
    return calibration


def representative_dataset(calibration, batch_size=1):
    """A TFLite ``representative_dataset``: a callable yielding ``[batch]`` lists of float32 inputs."""
    calibration = np.asarray(calibration, dtype=np.float32)

    def batches():
        for start in range(0, len(calibration) - batch_size + 1, batch_size):
            yield [calibration[start:start + batch_size]]

    return batches


def converter_kwargs(quantize, calibration=None, batch_size=1):
    """``TFLiteConverter`` attributes for ``quantize`` (one of ``QUANTIZE_MODES``), as Keras's
    ``model.export(path, format="litert", **kwargs)`` takes them."""
    calibration = check_quantize(quantize, calibration)
    import tensorflow as tf

    kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        kwargs["target_spec"] = {"supported_types": [tf.float16]}
    elif quantize == "int8":
        if len(calibration) < batch_size:
            raise ValueError(f"calibration has {len(calibration)} sample(s), fewer than the batch size {batch_size}.")
        kwargs["representative_dataset"] = representative_dataset(calibration, batch_size)
        kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    return kwargs
