"""UPerNet decoder: channel-wise LayerNorm on the stride-4+ features, a PSP module on the
deepest, an FPN top-down path over the others, and a 3x3 fusion of all levels at stride 4.
Every resize is bilinear with align_corners=False, as in SMP."""

import keras

from backbones.layers import channel_axis, layer_name, layer_norm_2d
from keras_seg.blocks import conv_norm_relu
from keras_seg.layers import Resize
from keras_seg.pooling_blocks import pyramid_pooling_branch

PSP_SIZES = (1, 2, 3, 6)


def resize_like(x, reference, data_format):
    return Resize("bilinear", align_corners=False, data_format=data_format)([x, reference])


def upernet_psp_module(x, out_channels, prefix, *, use_norm, data_format, sizes=PSP_SIZES):
    """SMP's UPerNet PSPModule: ``cat([x] + branches)`` (x first) -> Conv2dReLU 3x3 with BatchNorm."""
    branches = [
        pyramid_pooling_branch(x, size, out_channels, layer_name(prefix, "blocks", i, 1), use_norm, data_format, align_corners=False)
        for i, size in enumerate(sizes)
    ]
    x = keras.layers.Concatenate(axis=channel_axis(data_format))([x] + branches)
    return conv_norm_relu(x, out_channels, 3, layer_name(prefix, "out_conv"), "batchnorm", data_format, padding=1)


def upernet_decoder(features, dormant, *, decoder_channels, use_norm, data_format, prefix="decoder"):
    """SMP's UPerNetDecoder over encoder ``features`` (strides 1..2**depth, depth >= 3)."""
    features = [
        layer_norm_2d(f, layer_name(prefix, "feature_norms", i), data_format) for i, f in enumerate(features[2:])
    ]  # strides 4, 8, ..., 2**depth
    fpn_features = [upernet_psp_module(features[-1], decoder_channels, layer_name(prefix, "psp"), use_norm=use_norm, data_format=data_format)]
    for i, lateral in enumerate(features[:-1][::-1]):  # deepest first, without the PSP input
        lateral = conv_norm_relu(lateral, decoder_channels, 1, layer_name(prefix, "fpn_lateral_blocks", i, "conv_norm_relu"), use_norm, data_format)
        state = resize_like(fpn_features[-1], lateral, data_format)
        fpn_features.append(keras.layers.Add()([state, lateral]))  # the pre-conv sum feeds the next level
    for i in range(1, len(fpn_features)):
        fpn_features[i] = conv_norm_relu(
            fpn_features[i], decoder_channels, 3, layer_name(prefix, "fpn_conv_blocks", i - 1), use_norm, data_format, padding=1
        )
    target = fpn_features[-1]  # stride 4; resizing it to its own size is the identity
    resized = [resize_like(f, target, data_format) for f in fpn_features[:-1]] + [target]
    x = keras.layers.Concatenate(axis=channel_axis(data_format))(resized[::-1])
    return conv_norm_relu(x, decoder_channels, 3, layer_name(prefix, "fusion_block"), use_norm, data_format, padding=1)
