"""DeepLabV3 and DeepLabV3+ decoders: ASPP (atrous spatial pyramid pooling) and SMP's head-side blocks.

SMP never calls ``initialize()`` for these models, so every layer keeps PyTorch's
default init: ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""

import keras

from backbones.layers import batch_norm, channel_axis, channels, conv2d, layer_name, torch_default_bias_init, torch_default_init
from backbones.layers import separable_conv2d as kit_separable_conv2d
from keras_seg.layers import Resize
from keras_seg.pooling_blocks import adaptive_avg_pool

OUTPUT_STRIDES = (8, 16)


def conv(x, filters, kernel_size, name, data_format, padding=0, dilation=1):
    """torch ``nn.Conv2d(..., bias=False)`` with PyTorch's default init."""
    return conv2d(
        x, filters, kernel_size, name, data_format=data_format, padding=padding, dilation=dilation, use_bias=False,
        kernel_initializer=torch_default_init(),
    )


def separable_conv2d(x, filters, kernel_size, prefix, data_format, padding=0, dilation=1, use_bias=True):
    """SMP's SeparableConv2d: depthwise conv (``prefix.0``, no bias) then pointwise 1x1 (``prefix.1``)."""
    return kit_separable_conv2d(
        x, filters, kernel_size, layer_name(prefix, 0), layer_name(prefix, 1), data_format=data_format, padding=padding,
        dilation=dilation, use_bias=use_bias, depthwise_initializer=torch_default_init(depthwise=True),
        kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(channels(x, data_format)),
    )


def bn_relu(x, name, data_format):
    return keras.layers.ReLU()(batch_norm(x, name, data_format=data_format))


def aspp(x, out_channels, atrous_rates, separable, dropout, prefix, data_format):
    """SMP's ASPP at ``prefix``: 1x1, three atrous 3x3 (plain or separable) and image pooling, then project."""
    rates = tuple(atrous_rates)
    if len(rates) != 3:
        raise ValueError(f"decoder_atrous_rates must hold exactly 3 rates, got {atrous_rates!r}.")
    branches = [bn_relu(conv(x, out_channels, 1, layer_name(prefix, "convs", 0, 0), data_format), layer_name(prefix, "convs", 0, 1), data_format)]
    for i, rate in enumerate(rates, start=1):
        name = layer_name(prefix, "convs", i, 0)
        if separable:
            y = separable_conv2d(x, out_channels, 3, name, data_format, padding=rate, dilation=rate, use_bias=False)
        else:
            y = conv(x, out_channels, 3, name, data_format, padding=rate, dilation=rate)
        branches.append(bn_relu(y, layer_name(prefix, "convs", i, 1), data_format))
    # ASPPPooling: global average -> 1x1 conv -> BN -> ReLU -> bilinear (align_corners=False) to x's size
    pooled = adaptive_avg_pool(x, 1, data_format)
    pooled = bn_relu(conv(pooled, out_channels, 1, layer_name(prefix, "convs", 4, 1), data_format), layer_name(prefix, "convs", 4, 2), data_format)
    branches.append(Resize("bilinear", align_corners=False, data_format=data_format)([pooled, x]))
    y = keras.layers.Concatenate(axis=channel_axis(data_format))(branches)
    y = bn_relu(conv(y, out_channels, 1, layer_name(prefix, "project", 0), data_format), layer_name(prefix, "project", 1), data_format)
    return keras.layers.Dropout(dropout)(y)


def deeplabv3_decoder(features, dormant, *, out_channels, atrous_rates, aspp_separable, aspp_dropout, data_format, prefix="decoder"):
    """SMP's DeepLabV3Decoder: ASPP (``aspp``) on the deepest feature -> conv 3x3 (``conv``) -> BN (``bn``) -> ReLU."""
    x = aspp(features[-1], out_channels, atrous_rates, aspp_separable, aspp_dropout, layer_name(prefix, "aspp"), data_format)
    x = conv(x, out_channels, 3, layer_name(prefix, "conv"), data_format, padding=1)
    return bn_relu(x, layer_name(prefix, "bn"), data_format)


def deeplabv3plus_decoder(
    features, dormant, *, encoder_depth, out_channels, atrous_rates, output_stride, aspp_separable, aspp_dropout, data_format, prefix="decoder"
):
    """SMP's DeepLabV3PlusDecoder: ASPP + separable conv on the deepest feature, upsampled
    (bilinear, align_corners=True) to stride 4, fused with 48 channels from the stride-4 feature."""
    x = aspp(features[-1], out_channels, atrous_rates, aspp_separable, aspp_dropout, layer_name(prefix, "aspp", 0), data_format)
    x = separable_conv2d(x, out_channels, 3, layer_name(prefix, "aspp", 1), data_format, padding=1, use_bias=False)
    x = bn_relu(x, layer_name(prefix, "aspp", 2), data_format)
    scale_factor = 4 if output_stride == 16 and encoder_depth > 3 else 2
    x = Resize("bilinear", align_corners=True, scale_factor=scale_factor, data_format=data_format)(x)
    high = conv(features[2], 48, 1, layer_name(prefix, "block1", 0), data_format)
    high = bn_relu(high, layer_name(prefix, "block1", 1), data_format)
    x = keras.layers.Concatenate(axis=channel_axis(data_format))([x, high])
    x = separable_conv2d(x, out_channels, 3, layer_name(prefix, "block2", 0), data_format, padding=1, use_bias=False)
    return bn_relu(x, layer_name(prefix, "block2", 1), data_format)
