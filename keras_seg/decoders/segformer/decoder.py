"""Segformer's all-MLP decoder: a per-pixel Linear on each feature, bilinear resize to 1/4 of
the input, concatenation (deepest first) and a 1x1 Conv2dReLU with BatchNorm."""

import keras

from backbones.layers import Dense, channel_axis, layer_name, move_channels_back, move_channels_last
from keras_seg.blocks import conv_norm_relu
from keras_seg.layers import Resize


def mlp(x, filters, name, data_format):
    """SMP's MLP: ``nn.Linear`` over the channels of every pixel (a Dense on the channel axis)."""
    dense = Dense(filters, kernel_initializer="glorot_uniform", bias_initializer="zeros", name=name)
    return move_channels_back(dense(move_channels_last(x, data_format)), data_format)


def segformer_decoder(features, dormant, *, encoder_channels, segmentation_channels, data_format, prefix="decoder"):
    """SMP's SegformerDecoder over encoder ``features`` (strides 1..2**depth, depth >= 3).

    Transformer encoders (mit_b*) report 0 channels at stride 2; that feature is dropped,
    as in SMP. Otherwise every feature but the input gets an MLP (5 for a depth-5 ResNet).
    """
    skip_stride2 = encoder_channels[1] == 0
    inputs = list(features[2:] if skip_stride2 else features[1:])[::-1]
    # SMP resizes to (H // 4, W // 4) of the input; with the input a multiple of
    # 2**min(depth, 5) >= 8 (checked by the model), that is the stride-4 feature's size.
    target = features[2]
    resized = []
    for i, feature in enumerate(inputs):
        y = mlp(feature, segmentation_channels, layer_name(prefix, "mlp_stage", i, "linear"), data_format)
        resized.append(Resize("bilinear", align_corners=False, data_format=data_format)([y, target]))
    x = keras.layers.Concatenate(axis=channel_axis(data_format))(resized)
    return conv_norm_relu(x, segmentation_channels, 1, layer_name(prefix, "fuse_stage"), "batchnorm", data_format)
