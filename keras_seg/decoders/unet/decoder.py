"""Unet decoder: upsample to each skip's exact size, concatenate, two conv-norm-ReLUs."""

import keras

from backbones.layers import channel_axis, layer_name
from keras_seg.blocks import attention, conv_norm_relu
from keras_seg.layers import Resize

INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def unet_block(x, skip, reference, in_channels, skip_channels, out_channels, prefix, *, use_norm, attention_type, interpolation, data_format, dormant):
    """One decoder block at ``prefix``: resize to ``reference``'s size, [cat skip, attention1], conv1, conv2, attention2."""
    x = Resize(interpolation, data_format=data_format)([x, reference])
    if skip is not None:
        x = keras.layers.Concatenate(axis=channel_axis(data_format))([x, skip])
        x = attention(x, attention_type, in_channels + skip_channels, layer_name(prefix, "attention1"), data_format)
    elif attention_type is not None:
        # SMP builds attention1 even without a skip, and never runs it: keep its weights.
        dormant.append(attention(x, attention_type, in_channels, layer_name(prefix, "attention1"), data_format))
    x = conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv1"), use_norm, data_format, padding=1)
    x = conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv2"), use_norm, data_format, padding=1)
    return attention(x, attention_type, out_channels, layer_name(prefix, "attention2"), data_format)


def unet_decoder(features, dormant, *, encoder_channels, decoder_channels, use_norm, attention_type, interpolation, add_center_block, data_format, prefix="decoder"):
    """SMP's UnetDecoder over encoder ``features`` (strides 1..2**depth)."""
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(f"decoder_interpolation must be one of {INTERPOLATION_MODES}, got {interpolation!r}.")
    enc = list(encoder_channels[1:])[::-1]
    in_channels = [enc[0]] + list(decoder_channels[:-1])
    skip_channels = enc[1:] + [0]
    references = list(features)[::-1][1:]  # block i resizes to the (i+1)-th shape from the deepest
    skips = list(features[1:])[::-1][1:] + [None]
    x = features[-1]
    if add_center_block:
        x = conv_norm_relu(x, enc[0], 3, layer_name(prefix, "center", 0), use_norm, data_format, padding=1)
        x = conv_norm_relu(x, enc[0], 3, layer_name(prefix, "center", 1), use_norm, data_format, padding=1)
    for i, out_ch in enumerate(decoder_channels):
        skip = skips[i] if skip_channels[i] > 0 else None
        x = unet_block(
            x, skip, references[i], in_channels[i], skip_channels[i], out_ch, layer_name(prefix, "blocks", i),
            use_norm=use_norm, attention_type=attention_type, interpolation=interpolation, data_format=data_format, dormant=dormant,
        )
    return x
