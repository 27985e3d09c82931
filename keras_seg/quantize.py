"""Quantized TFLite (LiteRT) conversion settings.

``export_model(..., format="litert", quantize=MODE, calibration=X)`` converts with
TensorFlow's ``tf.lite.TFLiteConverter``:

- ``"float16"``: weights stored as float16 (half the file), computed in float32.
- ``"dynamic"``: dynamic-range quantization: int8 weights, activations quantized on
  the fly; no calibration data.
- ``"int8"``: int8 weights and activations, calibrated on ``calibration`` (sample
  inputs of the model, e.g. a few dozen training images preprocessed as for
  training), except the layers that compute normalisation statistics at run time
  (GroupNorm, LayerNorm, RMSNorm, GRN, EvoNorm: FPN's and Segformer's decoders,
  transformer encoders), which stay float32 ops between a dequantize and a quantize.
  Their variances span orders of magnitude that one int8 scale cannot hold (measured on
  FPN-resnet18: a GroupNorm variance off by 22 quantization steps). A model without
  such layers (BatchNorm is folded into its conv) is full-integer.
- ``"int8_full"``: every op an int8 builtin (for integer-only accelerators), statistics
  included; less accurate where the model has such layers.

Input and output stay float32 in every mode, so an artifact takes the same inputs as
the float model.
"""

import re
import warnings

import numpy as np

QUANTIZE_MODES = ("float16", "dynamic", "int8", "int8_full")
NEEDS_CALIBRATION = ("int8", "int8_full")


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
    elif quantize in NEEDS_CALIBRATION:
        if len(calibration) < batch_size:
            raise ValueError(f"calibration has {len(calibration)} sample(s), fewer than the batch size {batch_size}.")
        kwargs["representative_dataset"] = representative_dataset(calibration, batch_size)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + ([tf.lite.OpsSet.TFLITE_BUILTINS] if quantize == "int8" else [])
        kwargs["target_spec"] = {"supported_ops": ops}
    return kwargs


def statistics_layers(model):
    """Names of the layers of ``model`` (nested ones too) that compute normalisation statistics at run time."""
    import keras

    from backbones.layers.norm import GlobalResponseNorm, RmsNorm
    from backbones.timm_efficientnet_builder import EvoNormS0

    kinds = (keras.layers.GroupNormalization, keras.layers.LayerNormalization, RmsNorm, GlobalResponseNorm, EvoNormS0)
    names, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if isinstance(layer, kinds):
            names.append(layer.name)
        stack.extend(getattr(layer, "layers", []))
    return sorted(set(names))


def convert_saved_model(saved_model, quantize, calibration=None, float_layers=(), batch_size=1):
    """TFLite bytes of the SavedModel folder ``saved_model`` quantized as ``quantize``.

    For ``"int8"``, the ops of the layers named in ``float_layers`` (see ``statistics_layers``)
    are kept in float32: the model is calibrated once, then quantized with those ops on
    TFLite's deny list (``tf.lite.experimental.QuantizationDebugger``'s selective quantization).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter.experimental_enable_resource_variables = True  # as Keras's LiteRT export
    for key, value in converter_kwargs(quantize, calibration, batch_size).items():
        if key == "target_spec":
            for spec_key, spec_value in value.items():
                setattr(converter.target_spec, spec_key, spec_value)
        else:
            setattr(converter, key, value)
    if quantize != "int8" or not float_layers:
        return converter.convert()
    scope = re.compile("|".join(rf"(^|[/;]){re.escape(name)}(_\d+)?/" for name in float_layers))
    with warnings.catch_warnings():  # the debugger runs tf.lite's deprecated Interpreter
        warnings.simplefilter("ignore")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative_dataset(calibration[:batch_size], batch_size))
        names = [d["name"] for d in tf.lite.Interpreter(model_content=debugger.calibrated_model).get_tensor_details()]
        denied = [name for name in names if scope.search(name)]
        if denied:
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied)
        return debugger.get_nondebug_quantized_model()
