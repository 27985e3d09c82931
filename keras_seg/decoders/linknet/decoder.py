"""Linknet decoder (SMP's LinknetDecoder): 1x1 conv, x2 transposed conv, 1x1 conv per block,
summed with the encoder skip."""

import keras

from backbones.layers import conv_transpose2d, layer_name, torch_default_bias_init, torch_default_init
from keras_seg.blocks import conv_norm_relu, norm, parse_norm


def transposed_conv_x2(x, filters, name, data_format):
    """torch ``nn.ConvTranspose2d(C, filters, kernel_size=4, stride=2, padding=1)``, bias and default init.

    SMP never re-initialises this layer, so it keeps torch's default init: kaiming_uniform(a=sqrt(5))
    for the kernel and U(+-1/sqrt(fan_in)) for the bias, fan_in = out_channels * 4 * 4 for a
    transposed conv's (I, O, kh, kw) weight; both are uniform with limit 1/sqrt(fan_in).
    """
    return conv_transpose2d(
        x, filters, 4, name, data_format=data_format, stride=2, padding=1,
        kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(filters * 16),
    )


def linknet_block(x, skip, in_channels, out_channels, prefix, *, use_norm, data_format):
    """SMP's linknet DecoderBlock at ``prefix``: ``block.0`` Conv2dReLU 1x1, ``block.1`` TransposeX2
    (transposed conv, norm, ReLU), ``block.2`` Conv2dReLU 1x1; then ``+ skip``."""
    mid = in_channels // 4
    x = conv_norm_relu(x, mid, 1, layer_name(prefix, "block", 0), use_norm, data_format)
    x = transposed_conv_x2(x, mid, layer_name(prefix, "block", 1, 0), data_format)
    kind, kwargs = parse_norm(use_norm)
    x = norm(x, kind, kwargs, layer_name(prefix, "block", 1, 1), data_format)
    x = keras.layers.ReLU()(x)
    x = conv_norm_relu(x, out_channels, 1, layer_name(prefix, "block", 2), use_norm, data_format)
    if skip is not None:
        x = keras.layers.Add()([x, skip])
    return x


def linknet_decoder(features, dormant, *, encoder_channels, n_blocks, use_norm, data_format, prefinal_channels=32, prefix="decoder"):
    """SMP's LinknetDecoder over encoder ``features`` (strides 1..2**depth)."""
    enc = list(encoder_channels[1:])[::-1]
    channels = enc + [prefinal_channels]
    for i in range(1, len(channels) - 1):
        if channels[i] == 0:  # transformer encoders' 0-channel 1/2 skip: keep the stream, skip the sum
            channels[i] = channels[i - 1]
    feats = list(features[1:])[::-1]
    skips = feats[1:]
    skip_channels = enc[1:]
    x = feats[0]
    for i in range(n_blocks):
        skip = skips[i] if i < len(skips) and skip_channels[i] != 0 else None
        x = linknet_block(x, skip, channels[i], channels[i + 1], layer_name(prefix, "blocks", i), use_norm=use_norm, data_format=data_format)
    return x
