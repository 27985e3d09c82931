"""Keras building blocks that compute exactly what the matching torch modules compute.

Torch pads convolutions and max-pools symmetrically; Keras "same" padding does not
match it for strided ops on even inputs, so every op here pads explicitly and then
runs "valid". Norm layers take torch's eps and momentum. Layer names are torch
module paths (see ``weight_ports.naming``), which is what lets one translator port
every model.
"""

import keras

from weight_ports.naming import layer_name

DATA_FORMATS = ("channels_last", "channels_first")


def standardize_data_format(data_format):
    """``data_format`` or the global image data format; a ValueError for anything else."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS} or None, got {data_format!r}.")
    return data_format


def channel_axis(data_format):
    return -1 if data_format == "channels_last" else 1


def spatial_axes(data_format):
    return (1, 2) if data_format == "channels_last" else (2, 3)


def torch_conv_init(mode="fan_out"):
    """He-normal init with fan_out, as torchvision initialises its ResNets."""
    return keras.initializers.VarianceScaling(2.0, mode, "untruncated_normal")


def pad(x, padding, data_format, name=None):
    """Symmetric zero padding (torch ``padding=p``); ``padding`` is an int or (ph, pw)."""
    if isinstance(padding, int):
        padding = (padding, padding)
    if padding == (0, 0):
        return x
    return keras.layers.ZeroPadding2D(padding, data_format=data_format, name=name)(x)


def same_padding_equivalent(kernel_size, stride, padding, dilation):
    """True when torch's symmetric ``padding`` equals Keras ``"same"`` for this conv.

    With stride 1 and an odd kernel, "same" pads ``(k - 1) / 2`` on each side, exactly
    torch's; the framework then pads inside its conv kernel (no separate pad pass, which
    costs a full copy of the activation on TensorFlow and torch). Dilated convs keep the
    explicit pad: TensorFlow's CPU kernels reject a dilated "same" conv in channels_first.
    """
    if isinstance(padding, int):
        padding = (padding, padding)
    return stride == 1 and dilation == 1 and kernel_size % 2 == 1 and padding == ((kernel_size - 1) // 2,) * 2


def pad_for_conv(x, kernel_size, padding, data_format, stride=1, dilation=1, name=None):
    """torch's symmetric conv ``padding`` in Keras: ``(x, keras_padding)`` for the conv layer,
    "same" where that is equivalent, else ``x`` explicitly zero-padded and "valid"."""
    if padding and same_padding_equivalent(kernel_size, stride, padding, dilation):
        return x, "same"
    return pad(x, padding, data_format, name=name if padding else None), "valid"


def conv2d(
    x,
    filters,
    kernel_size,
    name,
    *,
    data_format,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    use_bias=True,
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """torch ``nn.Conv2d(..., stride, padding, dilation, groups, bias)`` named ``name``."""
    x, keras_padding = pad_for_conv(x, kernel_size, padding, data_format, stride, dilation, name=f"{name}_pad")
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding=keras_padding,
        dilation_rate=dilation,
        groups=groups,
        use_bias=use_bias,
        data_format=data_format,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        name=name,
    )(x)


def batch_norm(x, name, *, data_format, eps=1e-5, momentum=0.1, affine=True):
    """torch ``nn.BatchNorm2d(C, eps, momentum, affine)``: torch momentum m is Keras 1 - m."""
    return keras.layers.BatchNormalization(
        axis=channel_axis(data_format),
        epsilon=eps,
        momentum=1.0 - momentum,
        center=affine,
        scale=affine,
        name=name,
    )(x)


def relu(x, name=None):
    return keras.layers.ReLU(name=name)(x)


def max_pool(x, pool_size, stride, padding, *, data_format, name=None, nonnegative=False):
    """torch ``nn.MaxPool2d(pool_size, stride, padding)``.

    Torch pads with -inf; zero padding gives the same result only when the input is
    non-negative (after a ReLU), so pass ``nonnegative=True`` there for a plain pad.
    """
    if padding:
        if nonnegative:
            x = pad(x, padding, data_format)
        else:
            x = NegInfPad(padding, data_format=data_format)(x)
    return keras.layers.MaxPooling2D(pool_size, strides=stride, padding="valid", data_format=data_format, name=name)(x)


@keras.saving.register_keras_serializable(package="keras_seg")
class NegInfPad(keras.layers.Layer):
    """Pad the spatial axes with -inf (what torch's max-pool padding means)."""

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding if isinstance(padding, (list, tuple)) else (padding, padding)
        self.data_format = standardize_data_format(data_format)

    def call(self, x):
        ph, pw = self.padding
        spatial = [(ph, ph), (pw, pw)]
        widths = [(0, 0)] + (spatial + [(0, 0)] if self.data_format == "channels_last" else [(0, 0)] + spatial)
        return keras.ops.pad(x, widths, constant_values=float("-inf"))

    def compute_output_shape(self, shape):
        shape = list(shape)
        for axis, p in zip(spatial_axes(self.data_format), self.padding):
            if shape[axis] is not None:
                shape[axis] += 2 * p
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding), "data_format": self.data_format}


def identity(x, name=None):
    return keras.layers.Identity(name=name)(x)


__all__ = [
    "DATA_FORMATS",
    "batch_norm",
    "channel_axis",
    "conv2d",
    "identity",
    "layer_name",
    "max_pool",
    "pad",
    "pad_for_conv",
    "relu",
    "same_padding_equivalent",
    "spatial_axes",
    "standardize_data_format",
    "torch_conv_init",
]
