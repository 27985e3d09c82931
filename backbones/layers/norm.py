"""Normalisation layers with torch's defaults (eps, momentum) and parameter names."""

import keras

from backbones.layers.formats import channel_axis


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


def layer_norm_2d(x, name, data_format, eps=1e-6, scale=True, center=True):
    """LayerNorm over the channel axis at every pixel (SMP's / timm's LayerNorm2d).

    channels_first permutes to channels_last and back: Keras 3.15's
    LayerNormalization(axis=1) fails on the torch backend (torch's layer_norm
    normalises trailing axes only).
    """
    layer = keras.layers.LayerNormalization(axis=-1, epsilon=eps, scale=scale, center=center, name=name)
    if data_format == "channels_last":
        return layer(x)
    x = keras.layers.Permute((2, 3, 1))(x)
    return keras.layers.Permute((3, 1, 2))(layer(x))


def layer_norm(x, name, eps=1e-5, scale=True, center=True):
    """torch ``nn.LayerNorm(C)`` over the last axis (token sequences)."""
    return keras.layers.LayerNormalization(axis=-1, epsilon=eps, scale=scale, center=center, name=name)(x)


def group_norm(x, groups, name, *, data_format, eps=1e-5, affine=True):
    """torch ``nn.GroupNorm(groups, C, eps, affine)``."""
    return keras.layers.GroupNormalization(
        groups=groups, axis=channel_axis(data_format), epsilon=eps, center=affine, scale=affine, name=name
    )(x)
