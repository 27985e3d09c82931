"""Channel attention: squeeze-and-excitation as torch CNN families build it."""

import keras

from backbones.layers.activations import activation
from backbones.layers.conv import conv2d
from backbones.layers.formats import channels
from backbones.layers.pooling import global_avg_pool


def squeeze_excite(
    x,
    reduced_channels,
    reduce_name,
    expand_name,
    *,
    data_format,
    act="relu",
    gate="sigmoid",
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """Global average pool -> 1x1 conv (``reduce_name``) -> ``act`` -> 1x1 conv (``expand_name``)
    -> ``gate``, multiplied onto ``x``. The families differ only in names, the reduced width
    (each family's own rounding) and the activations, which the caller passes."""
    in_channels = channels(x, data_format)
    s = global_avg_pool(x, data_format=data_format)
    s = conv2d(s, reduced_channels, 1, reduce_name, data_format=data_format, kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
    s = activation(s, act)
    s = conv2d(s, in_channels, 1, expand_name, data_format=data_format, kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
    s = activation(s, gate)
    return keras.layers.Multiply()([x, s])
