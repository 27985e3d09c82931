"""Segmentation head (mask logits) and classification head (aux labels), as SMP has them."""

import keras

from backbones.layers import Dense, channel_axis, conv2d, torch_default_bias_init, torch_default_init
from keras_seg.activations import apply_activation
from keras_seg.layers import Resize

AUX_KEYS = ("classes", "pooling", "dropout", "activation")
HEAD_INITS = ("smp", "torch")


def head_initializers(init, fan_in):
    """``(kernel_initializer, bias_initializer)`` for a head layer: SMP's ``initialize_head``
    (xavier-uniform weights, zero biases) or torch's layer default."""
    if init == "smp":
        return keras.initializers.GlorotUniform(), "zeros"
    if init == "torch":
        return torch_default_init(), torch_default_bias_init(fan_in)
    raise ValueError(f"Unknown head init {init!r}; valid choices: {HEAD_INITS}.")


def segmentation_head(x, classes, data_format, kernel_size=3, activation=None, upsampling=1, init="smp"):
    """Conv (``segmentation_head.0``) -> bilinear x``upsampling`` (align_corners=True) -> activation.

    ``init``: "smp" (SMP's initialize_head) or "torch" (PyTorch's layer default).
    """
    kernel_init, bias_init = head_initializers(init, x.shape[channel_axis(data_format)] * kernel_size**2)
    x = conv2d(
        x,
        classes,
        kernel_size,
        "segmentation_head-0",
        data_format=data_format,
        padding=kernel_size // 2,
        kernel_initializer=kernel_init,
        bias_initializer=bias_init,
    )
    if upsampling > 1:
        x = Resize("bilinear", align_corners=True, scale_factor=upsampling, data_format=data_format)(x)
    return apply_activation(x, activation, data_format, name="mask_activation")


def validate_aux_params(aux_params):
    if aux_params is None:
        return None
    if not isinstance(aux_params, dict):
        raise ValueError(f"aux_params must be a dict with keys {AUX_KEYS}, got {aux_params!r}.")
    unknown = set(aux_params) - set(AUX_KEYS)
    if unknown:
        raise ValueError(f"Unknown aux_params keys {sorted(unknown)}; valid keys: {AUX_KEYS}.")
    if "classes" not in aux_params:
        raise ValueError("aux_params must include 'classes' (the number of labels).")
    pooling = aux_params.get("pooling", "avg")
    if pooling not in ("avg", "max"):
        raise ValueError(f"Pooling should be one of ('max', 'avg'), got {pooling!r}.")
    return dict(aux_params)


def classification_head(features, aux_params, data_format, init="smp"):
    """Global pooling -> dropout (default 0.2) -> linear (``classification_head.3``) -> activation."""
    aux_params = validate_aux_params(aux_params)
    pool = keras.layers.GlobalAveragePooling2D if aux_params.get("pooling", "avg") == "avg" else keras.layers.GlobalMaxPooling2D
    x = pool(data_format=data_format)(features)
    dropout = aux_params.get("dropout", 0.2)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    kernel_init, bias_init = head_initializers(init, x.shape[-1])
    x = Dense(aux_params["classes"], kernel_initializer=kernel_init, bias_initializer=bias_init, name="classification_head-3")(x)
    return apply_activation(x, aux_params.get("activation"), "channels_last", name="label_activation")
