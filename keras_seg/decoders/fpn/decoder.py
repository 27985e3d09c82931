"""FPN decoder (SMP's FPNDecoder): a top-down pyramid with lateral 1x1 convs, per-level
conv3x3-GroupNorm-ReLU segmentation blocks upsampled to the finest level, merged by sum or concat.
"""

import keras

from backbones.layers import channel_axis, conv2d, layer_name, torch_decoder_init
from keras_seg.layers import Resize

INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
MERGE_POLICIES = ("add", "cat")
GROUPS = 32


def validate_fpn_arguments(encoder_depth, segmentation_channels, merge_policy, dropout, interpolation):
    """SMP's checks (and the ones torch makes when building the layers), as ValueErrors."""
    if not isinstance(encoder_depth, int) or encoder_depth < 3:
        raise ValueError(f"Encoder depth for FPN decoder cannot be less than 3, got {encoder_depth}.")
    if merge_policy not in MERGE_POLICIES:
        raise ValueError(f"`merge_policy` must be one of: {list(MERGE_POLICIES)}, got {merge_policy}")
    if not isinstance(segmentation_channels, int) or segmentation_channels < 1 or segmentation_channels % GROUPS:
        raise ValueError(
            f"decoder_segmentation_channels must be a positive multiple of {GROUPS} (GroupNorm({GROUPS}, C)), got {segmentation_channels!r}."
        )
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        # torch also accepts 1 (all-zero decoder output in training); Keras's dropout divides by 1 - p.
        raise ValueError(f"decoder_dropout: dropout probability has to be in [0, 1), got {dropout!r}")
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(f"decoder_interpolation must be one of {INTERPOLATION_MODES}, got {interpolation!r}.")


def _conv1x1(x, filters, name, data_format):
    return conv2d(x, filters, 1, name, data_format=data_format, kernel_initializer=torch_decoder_init())


def conv3x3_gn_relu(x, filters, prefix, data_format, upsample):
    """SMP's Conv3x3GNReLU at ``prefix``: conv (``block.0``, no bias), GroupNorm(32) (``block.1``),
    ReLU, then bilinear x2 with align_corners=True when ``upsample``."""
    x = conv2d(
        x, filters, 3, layer_name(prefix, "block", 0), data_format=data_format, padding=1, use_bias=False,
        kernel_initializer=torch_decoder_init(),
    )
    x = keras.layers.GroupNormalization(GROUPS, axis=channel_axis(data_format), epsilon=1e-5, name=layer_name(prefix, "block", 1))(x)
    x = keras.layers.ReLU()(x)
    if upsample:
        x = Resize("bilinear", align_corners=True, scale_factor=2.0, data_format=data_format)(x)
    return x


def segmentation_block(x, filters, n_upsamples, prefix, data_format):
    """SMP's SegmentationBlock: ``max(1, n_upsamples)`` Conv3x3GNReLU, each but a lone n=0 one upsampling."""
    x = conv3x3_gn_relu(x, filters, layer_name(prefix, "block", 0), data_format, upsample=bool(n_upsamples))
    for i in range(1, n_upsamples):
        x = conv3x3_gn_relu(x, filters, layer_name(prefix, "block", i), data_format, upsample=True)
    return x


def fpn_decoder(features, dormant, *, encoder_depth, pyramid_channels, segmentation_channels, dropout, merge_policy, interpolation, data_format, prefix="decoder"):
    """SMP's FPNDecoder over encoder ``features``; uses the last four (SMP's c2..c5).

    With encoder_depth 3 or 4 those include finer maps (down to the input itself), so the
    merged map, and the output, is larger than at depth 5: what SMP computes too.
    """
    validate_fpn_arguments(encoder_depth, segmentation_channels, merge_policy, dropout, interpolation)
    c2, c3, c4, c5 = features[-4:]

    def fpn_block(x, skip, name):  # SMP's FPNBlock: upsample x2 (decoder_interpolation) + lateral 1x1 conv
        x = Resize(interpolation, scale_factor=2.0, data_format=data_format)(x)
        return keras.layers.Add()([x, _conv1x1(skip, pyramid_channels, name, data_format)])

    p5 = _conv1x1(c5, pyramid_channels, layer_name(prefix, "p5"), data_format)
    p4 = fpn_block(p5, c4, layer_name(prefix, "p4", "skip_conv"))
    p3 = fpn_block(p4, c3, layer_name(prefix, "p3", "skip_conv"))
    p2 = fpn_block(p3, c2, layer_name(prefix, "p2", "skip_conv"))
    pyramid = [
        segmentation_block(p, segmentation_channels, n, layer_name(prefix, "seg_blocks", i), data_format)
        for i, (p, n) in enumerate(zip((p5, p4, p3, p2), (3, 2, 1, 0)))
    ]
    if merge_policy == "add":
        x = keras.layers.Add()(pyramid)
    else:
        x = keras.layers.Concatenate(axis=channel_axis(data_format))(pyramid)
    if dropout:
        x = keras.layers.SpatialDropout2D(dropout, data_format=data_format)(x)
    return x

