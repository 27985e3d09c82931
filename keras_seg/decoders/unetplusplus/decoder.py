"""Unet++ decoder: nested dense skip pathways of Unet-style blocks (SMP's UnetPlusPlusDecoder).

Block ``x_{d}_{l}`` (SMP's ModuleDict key) upsamples by 2 (``decoder_interpolation``), concatenates
every finer node of its column and the encoder skip, and runs attention1, conv1, conv2, attention2.
"""

import keras

from backbones.layers import channel_axis, layer_name
from keras_seg.blocks import attention, conv_norm_relu
from keras_seg.layers import Resize

INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def decoder_block(x, skips, in_channels, skip_channels, out_channels, prefix, *, use_norm, attention_type, interpolation, data_format, dormant):
    """SMP's unetplusplus DecoderBlock at ``prefix``.

    ``skips`` is None (no skip: attention1 is built but never run, as in SMP) or a list of
    tensors to concatenate after ``x`` (empty when every skip has 0 channels; SMP still
    runs attention1 then). A block with ``out_channels == 0`` outputs nothing (None).
    """
    x = Resize(interpolation, scale_factor=2.0, data_format=data_format)(x)
    if out_channels == 0:
        return None
    if skips is not None:
        if skips:
            x = keras.layers.Concatenate(axis=channel_axis(data_format))([x] + list(skips))
        x = attention(x, attention_type, in_channels + skip_channels, layer_name(prefix, "attention1"), data_format)
    elif attention_type is not None:
        dormant.append(attention(x, attention_type, in_channels + skip_channels, layer_name(prefix, "attention1"), data_format))
    x = conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv1"), use_norm, data_format, padding=1)
    x = conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv2"), use_norm, data_format, padding=1)
    return attention(x, attention_type, out_channels, layer_name(prefix, "attention2"), data_format)


def block_channels(depth_idx, layer_idx, in_channels, skip_channels, out_channels):
    """(in, skip, out) channels of block ``x_{depth_idx}_{layer_idx}``, SMP's bookkeeping."""
    if depth_idx == 0:
        return in_channels[layer_idx], skip_channels[layer_idx] * (layer_idx + 1), out_channels[layer_idx]
    return skip_channels[layer_idx - 1], skip_channels[layer_idx] * (layer_idx + 1 - depth_idx), skip_channels[layer_idx]


def unetplusplus_decoder(features, dormant, *, encoder_channels, decoder_channels, use_norm, attention_type, interpolation, add_center_block, data_format, prefix="decoder"):
    """SMP's UnetPlusPlusDecoder over encoder ``features`` (strides 1..2**depth)."""
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(f"decoder_interpolation must be one of {INTERPOLATION_MODES}, got {interpolation!r}.")
    enc = list(encoder_channels[1:])[::-1]
    in_channels = [enc[0]] + list(decoder_channels[:-1])
    skip_channels = enc[1:] + [0]
    out_channels = list(decoder_channels)
    depth = len(in_channels) - 1
    feats = list(features[1:])[::-1]
    if add_center_block:
        # SMP builds a CenterBlock for vgg encoders but its forward never runs it.
        c = conv_norm_relu(feats[0], enc[0], 3, layer_name(prefix, "center", 0), use_norm, data_format, padding=1)
        dormant.append(conv_norm_relu(c, enc[0], 3, layer_name(prefix, "center", 1), use_norm, data_format, padding=1))

    def run(depth_idx, layer_idx, x, skips):
        channels = block_channels(depth_idx, layer_idx, in_channels, skip_channels, out_channels)
        out = decoder_block(
            x, skips, *channels, layer_name(prefix, "blocks", f"x_{depth_idx}_{layer_idx}"),
            use_norm=use_norm, attention_type=attention_type, interpolation=interpolation, data_format=data_format, dormant=dormant,
        )
        return out, channels[2]

    def nonempty(pairs):  # 0-channel maps (transformer encoders' dummy 1/2 skip) add nothing to a concat
        return [t for t, ch in pairs if ch > 0 and t is not None]

    dense = {}  # key -> (tensor, channels)
    for layer_idx in range(depth):
        for depth_idx in range(depth - layer_idx):
            if layer_idx == 0:
                skips = nonempty([(feats[depth_idx + 1], enc[depth_idx + 1])])
                dense[f"x_{depth_idx}_{depth_idx}"] = run(depth_idx, depth_idx, feats[depth_idx], skips)
            else:
                top = depth_idx + layer_idx
                cat = [dense[f"x_{i}_{top}"] for i in range(depth_idx + 1, top + 1)] + [(feats[top + 1], enc[top + 1])]
                dense[f"x_{depth_idx}_{top}"] = run(depth_idx, top, dense[f"x_{depth_idx}_{top - 1}"][0], nonempty(cat))
    return run(0, depth, dense[f"x_0_{depth - 1}"][0], None)[0]
