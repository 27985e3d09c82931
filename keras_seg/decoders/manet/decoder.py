"""MAnet decoder (SMP's MAnetDecoder): a position-wise attention block (PAB) on the deepest
feature, then multi-scale fusion attention blocks (MFAB) at every skip and plain blocks after.
"""

import keras
from keras import ops

from backbones.layers import channel_axis, conv2d, layer_name, standardize_data_format, torch_decoder_init
from keras_seg.blocks import conv_norm_relu
from keras_seg.layers import Resize

INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


@keras.saving.register_keras_serializable(package="keras_seg")
class PositionAttention(keras.layers.Layer):
    """The attention product of SMP's PABBlock, from its top, center and bottom conv outputs.

    As SMP computes it: ``softmax`` over the whole (HW x HW) map of each image (not per row),
    times the bottom features as (B, HW, C), then a raw reshape of that (B, HW, C) buffer to
    (B, C, H, W) (no transpose). The reshape is done in NCHW order whatever ``data_format``
    is, so channels_last gives the same numbers.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs):
        top, center, bottom = inputs
        if self.data_format == "channels_last":
            top, center, bottom = (ops.transpose(t, (0, 3, 1, 2)) for t in (top, center, bottom))
        shape = ops.shape(bottom)
        channels, height, width = bottom.shape[1], shape[2], shape[3]
        pab_channels = top.shape[1]
        x_top = ops.reshape(top, (-1, pab_channels, height * width))  # (B, P, HW)
        x_center = ops.transpose(ops.reshape(center, (-1, pab_channels, height * width)), (0, 2, 1))  # (B, HW, P)
        x_bottom = ops.transpose(ops.reshape(bottom, (-1, channels, height * width)), (0, 2, 1))  # (B, HW, C)
        sp = ops.matmul(x_center, x_top)  # (B, HW, HW)
        sp = ops.softmax(ops.reshape(sp, (-1, height * width * height * width)), axis=-1)
        sp = ops.reshape(sp, (-1, height * width, height * width))
        sp = ops.matmul(sp, x_bottom)  # (B, HW, C)
        sp = ops.reshape(sp, (-1, channels, height, width))  # SMP's raw reshape
        if self.data_format == "channels_last":
            sp = ops.transpose(sp, (0, 2, 3, 1))
        return sp

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[2])

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


def _conv(x, filters, kernel_size, name, data_format, padding=0):
    return conv2d(x, filters, kernel_size, name, data_format=data_format, padding=padding, kernel_initializer=torch_decoder_init())


def pab_block(x, channels, pab_channels, prefix, data_format):
    """SMP's PABBlock(channels, pab_channels) at ``prefix``."""
    top = _conv(x, pab_channels, 1, layer_name(prefix, "top_conv"), data_format)
    center = _conv(x, pab_channels, 1, layer_name(prefix, "center_conv"), data_format)
    bottom = _conv(x, channels, 3, layer_name(prefix, "bottom_conv"), data_format, padding=1)
    sp = PositionAttention(data_format=data_format)([top, center, bottom])
    x = keras.layers.Add()([x, sp])
    return _conv(x, channels, 3, layer_name(prefix, "out_conv"), data_format, padding=1)


def squeeze_excite(x, channels, reduced, prefix, data_format):
    """AdaptiveAvgPool(1) -> conv (``prefix.1``) -> ReLU -> conv (``prefix.3``) -> sigmoid."""
    s = keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True)(x)
    s = keras.layers.ReLU()(_conv(s, reduced, 1, layer_name(prefix, 1), data_format))
    return keras.layers.Activation("sigmoid")(_conv(s, channels, 1, layer_name(prefix, 3), data_format))


def mfab_block(x, skip, in_channels, skip_channels, out_channels, prefix, *, use_norm, interpolation, data_format, reduction=16):
    """SMP's MFABBlock at ``prefix`` (``skip`` is always given: MFAB blocks are built for skips)."""
    x = conv_norm_relu(x, in_channels, 3, layer_name(prefix, "hl_conv", 0), use_norm, data_format, padding=1)
    x = conv_norm_relu(x, skip_channels, 1, layer_name(prefix, "hl_conv", 1), use_norm, data_format)
    x = Resize(interpolation, scale_factor=2.0, data_format=data_format)(x)
    reduced = max(1, skip_channels // reduction)
    att = squeeze_excite(x, skip_channels, reduced, layer_name(prefix, "SE_hl"), data_format)
    att = keras.layers.Add()([att, squeeze_excite(skip, skip_channels, reduced, layer_name(prefix, "SE_ll"), data_format)])
    x = keras.layers.Multiply()([x, att])
    x = keras.layers.Concatenate(axis=channel_axis(data_format))([x, skip])
    x = conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv1"), use_norm, data_format, padding=1)
    return conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv2"), use_norm, data_format, padding=1)


def plain_block(x, skip, out_channels, prefix, *, use_norm, interpolation, data_format):
    """SMP's manet DecoderBlock: upsample x2, [cat skip], conv1, conv2."""
    x = Resize(interpolation, scale_factor=2.0, data_format=data_format)(x)
    if skip is not None:
        x = keras.layers.Concatenate(axis=channel_axis(data_format))([x, skip])
    x = conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv1"), use_norm, data_format, padding=1)
    return conv_norm_relu(x, out_channels, 3, layer_name(prefix, "conv2"), use_norm, data_format, padding=1)


def manet_decoder(features, dormant, *, encoder_channels, decoder_channels, use_norm, pab_channels, interpolation, data_format, prefix="decoder"):
    """SMP's MAnetDecoder over encoder ``features`` (strides 1..2**depth)."""
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(f"decoder_interpolation must be one of {INTERPOLATION_MODES}, got {interpolation!r}.")
    enc = list(encoder_channels[1:])[::-1]
    in_channels = [enc[0]] + list(decoder_channels[:-1])
    skip_channels = enc[1:] + [0]
    feats = list(features[1:])[::-1]
    skips = feats[1:]
    x = pab_block(feats[0], enc[0], pab_channels, layer_name(prefix, "center"), data_format)
    for i, (in_ch, skip_ch, out_ch) in enumerate(zip(in_channels, skip_channels, decoder_channels)):
        name = layer_name(prefix, "blocks", i)
        skip = skips[i] if i < len(skips) else None
        if skip_ch > 0:
            x = mfab_block(x, skip, in_ch, skip_ch, out_ch, name, use_norm=use_norm, interpolation=interpolation, data_format=data_format)
        else:
            # A 0-channel skip (transformer encoders' dummy 1/2 feature) adds nothing to the concat.
            x = plain_block(x, None, out_ch, name, use_norm=use_norm, interpolation=interpolation, data_format=data_format)
    return x
