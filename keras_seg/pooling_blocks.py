"""Pooling blocks shared by decoders: torch-exact adaptive average pooling and the
pyramid-pooling branch of PSPNet and UPerNet.

Adaptive average pooling is computed with ``Resize(mode="area")``, which reproduces
torch's ``AdaptiveAvgPool2d`` bins (``[floor(i*H/s), ceil((i+1)*H/s))``, overlapping
when ``H % s != 0``, repeating pixels when ``H < s``) for dynamic input sizes on every
backend. Output size 1 is a global mean.
"""

import keras

from keras_seg.blocks import conv_norm_relu
from keras_seg.layers import Resize


def adaptive_avg_pool(x, output_size, data_format):
    """torch ``nn.AdaptiveAvgPool2d(output_size)`` (an int, or ``(h, w)``)."""
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if size == (1, 1):
        return keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True)(x)
    return Resize("area", size=size, data_format=data_format)(x)


def pyramid_pooling_branch(x, pool_size, filters, prefix, use_norm, data_format, align_corners):
    """AdaptiveAvgPool2d(pool_size) -> Conv2dReLU 1x1 (at ``prefix``) -> bilinear back to ``x``'s size.

    The branch of PSPNet's PSPBlock (``align_corners=True``) and of UPerNet's PSPModule
    (``align_corners=False``); ``prefix`` is the torch module path of the Conv2dReLU.
    """
    pooled = adaptive_avg_pool(x, pool_size, data_format)
    pooled = conv_norm_relu(pooled, filters, 1, prefix, use_norm, data_format)
    return Resize("bilinear", align_corners=align_corners, data_format=data_format)([pooled, x])


__all__ = ["adaptive_avg_pool", "pyramid_pooling_branch"]
