"""PSPNet decoder: pyramid pooling (bins 1, 2, 3, 6) on the deepest feature, then a 1x1 Conv2dReLU."""

import keras

from backbones.layers import channel_axis, layer_name
from keras_seg.blocks import conv_norm_relu
from keras_seg.pooling_blocks import pyramid_pooling_branch

PSP_SIZES = (1, 2, 3, 6)


def psp_module(x, in_channels, prefix, *, use_norm, data_format, sizes=PSP_SIZES):
    """SMP's PSPModule: ``cat([branch(x) for each size] + [x])`` (x last).

    Each PSPBlock pools to ``s x s``, applies a 1x1 Conv2dReLU to ``in_channels // len(sizes)``
    channels (without norm for ``s == 1``: BatchNorm cannot train on a 1x1 map, so SMP
    forces "identity" there and that conv has a bias) and resizes back bilinearly with
    align_corners=True.
    """
    branches = []
    for i, size in enumerate(sizes):
        branch_norm = "identity" if size == 1 else use_norm
        branches.append(
            pyramid_pooling_branch(
                x, size, in_channels // len(sizes), layer_name(prefix, "blocks", i, "pool", 1), branch_norm, data_format, align_corners=True
            )
        )
    return keras.layers.Concatenate(axis=channel_axis(data_format))(branches + [x])


def psp_decoder(features, dormant, *, encoder_channels, use_norm, out_channels, dropout, data_format, prefix="decoder"):
    """SMP's PSPDecoder over encoder ``features``; only the deepest one is used."""
    x = features[-1]
    x = psp_module(x, encoder_channels[-1], layer_name(prefix, "psp"), use_norm=use_norm, data_format=data_format)
    x = conv_norm_relu(x, out_channels, 1, layer_name(prefix, "conv"), use_norm, data_format)
    return keras.layers.SpatialDropout2D(dropout, data_format=data_format)(x)
