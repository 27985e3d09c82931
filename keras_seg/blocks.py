"""Blocks shared by the decoders: conv-norm-activation, SCSE attention, activations.

Every function takes a tensor and a torch module path prefix and returns a tensor;
parametric layers are named after SMP's module paths so weights port mechanically.
"""

import keras

from backbones.layers import batch_norm, channel_axis, conv2d, layer_name, layer_norm_2d, torch_decoder_init

NORM_TYPES = ("batchnorm", "identity", "layernorm", "instancenorm", "inplace")


def parse_norm(use_norm):
    """Normalise ``decoder_use_norm`` (bool, string or dict with "type") to ``(type, kwargs)``."""
    if use_norm is True:
        return "batchnorm", {}
    if use_norm is False:
        return "identity", {}
    if isinstance(use_norm, str):
        kind, kwargs = use_norm.lower(), {}
    elif isinstance(use_norm, dict):
        if "type" not in use_norm:
            raise ValueError(f"decoder_use_norm dict must have a 'type' key (one of {NORM_TYPES}), got {use_norm!r}.")
        kwargs = dict(use_norm)
        kind = str(kwargs.pop("type")).lower()
    else:
        raise ValueError(f"decoder_use_norm must be a bool, a str in {NORM_TYPES} or a dict with 'type', got {use_norm!r}.")
    if kind not in NORM_TYPES:
        raise ValueError(f"Unrecognized decoder_use_norm type {kind!r}; supported: {NORM_TYPES}.")
    return kind, kwargs


_NORM_KWARGS = {
    "batchnorm": ("eps", "momentum", "affine", "track_running_stats"),
    "inplace": ("eps", "momentum", "affine", "activation", "activation_param"),
    "layernorm": ("eps", "elementwise_affine", "bias"),
    "instancenorm": ("eps", "momentum", "affine", "track_running_stats"),
    "identity": (),
}


def norm(x, kind, kwargs, name, data_format):
    """Apply the norm layer ``kind`` named ``name``; ``kwargs`` are torch's constructor arguments."""
    unknown = set(kwargs) - set(_NORM_KWARGS[kind])
    if unknown:
        raise ValueError(f"Unsupported arguments {sorted(unknown)} for norm {kind!r}; supported: {_NORM_KWARGS[kind]}.")
    if kind == "identity":
        return x
    if kind in ("batchnorm", "inplace"):
        # InPlaceABN (CUDA-only torch extension) with its leaky_relu(0.0) default is
        # BatchNorm followed by ReLU, with the same state_dict keys: computed that way.
        if kind == "inplace" and kwargs.get("activation", "leaky_relu") not in ("leaky_relu", "relu", "identity"):
            raise ValueError(f"inplace norm activation must be 'leaky_relu', 'relu' or 'identity', got {kwargs['activation']!r}.")
        if kwargs.get("track_running_stats", True) is False:
            raise ValueError("batchnorm with track_running_stats=False is not supported; Keras BatchNormalization always tracks statistics.")
        return batch_norm(
            x, name, data_format=data_format, eps=kwargs.get("eps", 1e-5), momentum=kwargs.get("momentum", 0.1), affine=kwargs.get("affine", True)
        )
    if kind == "layernorm":
        # SMP applies nn.LayerNorm(C) to NCHW tensors, normalising the last (width) axis,
        # which only runs when W == C. keras-seg normalises over channels, as intended.
        affine = kwargs.get("elementwise_affine", True)
        return layer_norm_2d(x, name, data_format, eps=kwargs.get("eps", 1e-5), scale=affine, center=affine and kwargs.get("bias", True))
    if kind == "instancenorm":
        if kwargs.get("track_running_stats", False):
            raise ValueError("instancenorm with track_running_stats=True is not supported.")
        affine = kwargs.get("affine", False)
        return keras.layers.GroupNormalization(
            groups=-1, axis=channel_axis(data_format), epsilon=kwargs.get("eps", 1e-5), center=affine, scale=affine, name=name
        )(x)
    raise AssertionError(kind)


def conv_norm_relu(x, filters, kernel_size, prefix, use_norm, data_format, padding=0, stride=1):
    """SMP's Conv2dReLU: conv (``prefix.0``, bias only without norm), norm (``prefix.1``), ReLU."""
    kind, kwargs = parse_norm(use_norm)
    x = conv2d(
        x,
        filters,
        kernel_size,
        layer_name(prefix, 0),
        data_format=data_format,
        stride=stride,
        padding=padding,
        use_bias=kind == "identity",
        kernel_initializer=torch_decoder_init(),
    )
    x = norm(x, kind, kwargs, layer_name(prefix, 1), data_format)
    if kind == "inplace" and kwargs.get("activation") == "identity":
        return x
    return keras.layers.ReLU()(x)


def scse(x, channels, prefix, data_format, reduction=16):
    """Concurrent spatial and channel squeeze-excitation (SMP's SCSEModule) at ``prefix``."""
    if channels // reduction < 1:
        raise ValueError(
            f"SCSE attention squeezes {channels} channels by {reduction} to {channels // reduction}; it needs at least "
            f"{reduction} channels. Use wider decoder channels or decoder_attention_type=None."
        )

    def conv1x1(t, filters, idx_name):
        return conv2d(t, filters, 1, idx_name, data_format=data_format, kernel_initializer=torch_decoder_init())

    pooled = keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True)(x)
    c = conv1x1(pooled, channels // reduction, layer_name(prefix, "cSE", 1))
    c = keras.layers.ReLU()(c)
    c = conv1x1(c, channels, layer_name(prefix, "cSE", 3))
    c = keras.layers.Activation("sigmoid")(c)
    s = conv1x1(x, 1, layer_name(prefix, "sSE", 0))
    s = keras.layers.Activation("sigmoid")(s)
    return keras.layers.Add()([keras.layers.Multiply()([x, c]), keras.layers.Multiply()([x, s])])


ATTENTION_TYPES = (None, "scse")


def attention(x, attention_type, channels, prefix, data_format):
    """SMP's Attention wrapper: None is identity, "scse" is SCSE at ``prefix.attention``."""
    if attention_type is None:
        return x
    if attention_type != "scse":
        raise ValueError(f"Attention {attention_type!r} is not implemented; valid choices: {ATTENTION_TYPES}.")
    return scse(x, channels, layer_name(prefix, "attention"), data_format)
