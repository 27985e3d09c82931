"""PAN decoder (SMP's PANDecoder): a feature pyramid attention (FPA) block on the deepest
feature, then global attention upsample (GAU) blocks down to the 1/4-scale feature."""

import keras

from backbones.layers import batch_norm, conv2d, layer_name, max_pool, torch_decoder_init
from keras_seg.layers import Resize

INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
FPA_POOLS = 3  # the FPA max-pools its input three times: the deepest map needs >= 2**3 pixels


def conv_bn_relu(x, filters, kernel_size, prefix, data_format, padding=0, relu=True):
    """SMP's pan ConvBnRelu at ``prefix``: conv (``conv``, with bias), BatchNorm (``bn``), [ReLU]."""
    x = conv2d(x, filters, kernel_size, layer_name(prefix, "conv"), data_format=data_format, padding=padding, kernel_initializer=torch_decoder_init())
    x = batch_norm(x, layer_name(prefix, "bn"), data_format=data_format)
    return keras.layers.ReLU()(x) if relu else x


def _global_pool(x, data_format):
    return keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True)(x)


def _resize_like(x, reference, mode, align_corners, data_format):
    return Resize(mode, align_corners=align_corners, data_format=data_format)([x, reference])


def fpa_block(x, out_channels, prefix, data_format):
    """SMP's FPABlock at ``prefix``; always bilinear with align_corners=True (SMP never passes
    ``decoder_interpolation`` to it). The (H//4, W//4) and (H//2, W//2) targets are exactly the
    sizes of the max-pooled maps x2 and x1, which serve as resize references."""
    b1 = conv_bn_relu(_global_pool(x, data_format), out_channels, 1, layer_name(prefix, "branch1", 1), data_format)
    b1 = _resize_like(b1, x, "bilinear", True, data_format)
    mid = conv_bn_relu(x, out_channels, 1, layer_name(prefix, "mid", 0), data_format)
    # The encoder's last stage ends in a ReLU and every ConvBnRelu here too: no negative values to pad.
    x1 = conv_bn_relu(max_pool(x, 2, 2, 0, data_format=data_format), 1, 7, layer_name(prefix, "down1", 1), data_format, padding=3)
    x2 = conv_bn_relu(max_pool(x1, 2, 2, 0, data_format=data_format), 1, 5, layer_name(prefix, "down2", 1), data_format, padding=2)
    x3 = conv_bn_relu(max_pool(x2, 2, 2, 0, data_format=data_format), 1, 3, layer_name(prefix, "down3", 1), data_format, padding=1)
    x3 = conv_bn_relu(x3, 1, 3, layer_name(prefix, "down3", 2), data_format, padding=1)
    x3 = _resize_like(x3, x2, "bilinear", True, data_format)
    y = keras.layers.Add()([conv_bn_relu(x2, 1, 5, layer_name(prefix, "conv2"), data_format, padding=2), x3])
    y = _resize_like(y, x1, "bilinear", True, data_format)
    y = keras.layers.Add()([y, conv_bn_relu(x1, 1, 7, layer_name(prefix, "conv1"), data_format, padding=3)])
    y = _resize_like(y, x, "bilinear", True, data_format)
    return keras.layers.Add()([keras.layers.Multiply()([y, mid]), b1])


def gau_block(low, high, out_channels, prefix, interpolation, data_format):
    """SMP's GAUBlock at ``prefix``: ``high`` resized to ``low`` (align_corners=True only for
    bilinear) plus ``conv2(low)`` gated by ``sigmoid(conv1(avgpool(high)))``."""
    high_up = _resize_like(high, low, interpolation, True if interpolation == "bilinear" else None, data_format)
    low = conv_bn_relu(low, out_channels, 3, layer_name(prefix, "conv2"), data_format, padding=1)
    gate = conv_bn_relu(_global_pool(high, data_format), out_channels, 1, layer_name(prefix, "conv1", 1), data_format, relu=False)
    gate = keras.layers.Activation("sigmoid")(gate)
    return keras.layers.Add()([high_up, keras.layers.Multiply()([low, gate])])


def pan_decoder(features, dormant, *, encoder_depth, decoder_channels, interpolation, data_format, prefix="decoder"):
    """SMP's PANDecoder over encoder ``features``; returns the 1/4-scale map."""
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(f"decoder_interpolation must be one of {INTERPOLATION_MODES}, got {interpolation!r}.")
    feats = list(features[2:])
    out = fpa_block(feats[-1], decoder_channels, layer_name(prefix, "fpa"), data_format)
    for level in (3, 2, 1):  # gau3 only at depth 5, gau2 from depth 4
        if encoder_depth >= level + 2:
            out = gau_block(feats[level - 1], out, decoder_channels, layer_name(prefix, f"gau{level}"), interpolation, data_format)
    return out
