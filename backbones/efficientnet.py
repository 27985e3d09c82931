"""SMP's own EfficientNet encoders (``efficientnet-b0`` ... ``b7``): lukemelas' EfficientNet-PyTorch
as SMP vendors it (``encoders/_efficientnet.py``), classifier ``_fc`` dropped.

Layer names are its module paths: ``_conv_stem``/``_bn0``, ``_blocks.{i}`` (MBConv:
``_expand_conv``/``_bn0``, ``_depthwise_conv``/``_bn1``, ``_se_reduce``/``_se_expand``,
``_project_conv``/``_bn2``) and the head ``_conv_head``/``_bn1``, which SMP keeps in its
state_dict but never runs (built here, left dormant).

Every conv pads TensorFlow-"SAME" fixed at construction from the model's nominal image size
(``Conv2dStaticSamePadding``), not from the input; that size advances by each block's
nominal stride. BatchNorm: eps 1e-3, torch momentum 0.01 (TF's 0.99).
"""

import collections
import math

import keras

from backbones import registry
from backbones.layers import (
    activation,
    batch_norm,
    conv2d,
    depthwise_conv2d,
    drop_path,
    layer_name,
    squeeze_excite,
    static_same_padding,
    torch_default_bias_init,
    torch_default_init,
)
from backbones.resnet import IMAGENET_PREPROCESSING

# EfficientNet-b0's stages: (repeats, kernel, first stride, expand ratio, in filters, out filters).
BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
SE_RATIO = 0.25
STEM_FILTERS, HEAD_FILTERS = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # global params: batch_norm_epsilon, 1 - batch_norm_momentum (0.99)
DROP_CONNECT_RATE = 0.2  # every member; SMP scales it by block index / number of blocks
DEPTH_ERROR = "EfficientNetEncoder depth should be in range [1, 5], got {}"  # SMP refuses depth 1 too

# Advprop checkpoints expect inputs in [-1, 1]: SMP's earlier tables (and lukemelas' README).
ADVPROP_PREPROCESSING = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_range": [0, 1], "input_space": "RGB"}

MBConv = collections.namedtuple("MBConv", "kernel stride expand in_filters out_filters skip")


def round_filters(filters, width, divisor=8):
    """Filters scaled by ``width``, to a multiple of ``divisor``, never more than 10% below."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def mbconv_blocks(width, depth_multiplier):
    """Every MBConv block in order: each stage's first block has its stride and filter change,
    the ``ceil(depth_multiplier * repeats) - 1`` repeats stride 1 and a skip connection.

    (The reference compares the first block's list-valued stride with 1, so a stage's first
    block never has the skip; its filters always change anyway.)"""
    blocks = []
    for repeats, kernel, stride, expand, in_filters, out_filters in BASE_STAGES:
        in_filters, out_filters = round_filters(in_filters, width), round_filters(out_filters, width)
        blocks.append(MBConv(kernel, stride, expand, in_filters, out_filters, False))
        blocks += [MBConv(kernel, 1, expand, out_filters, out_filters, True)] * (math.ceil(depth_multiplier * repeats) - 1)
    return blocks


def dilation_rates(n_blocks, out_indexes, output_stride):
    """SMP's make_dilated over get_stages: blocks ``(out_indexes[1], out_indexes[2]]`` are the
    stride-16 stage, the rest the stride-32 one; rate ``stage // output_stride`` past it, else 1."""
    def stage(i):
        return 32 if i > out_indexes[2] else 16 if i > out_indexes[1] else 1

    return [stage(i) // output_stride if stage(i) > output_stride else 1 for i in range(n_blocks)]


# One block as built: its config and its depthwise conv's stride, padding, dilation; its drop-connect rate.
BlockPlan = collections.namedtuple("BlockPlan", "block stride padding dilation drop_rate")


def block_plan(width, depth_multiplier, image_size, out_indexes, output_stride=32):
    """Every MBConv block as SMP builds and dilates it.

    Its depthwise conv pads TF-"SAME" for the nominal ``image_size`` reaching the block (it
    advances by each block's own stride; dilation, applied after construction, leaves it
    alone). A dilated block's convs run stride 1, dilation ``rate`` and torch padding
    ``(k // 2) * rate`` instead (replace_strides_with_dilation drops the static padding).
    Drop-connect: SMP's ``drop_connect_rate * i / len(blocks)``, used on skip blocks only.
    """
    blocks = mbconv_blocks(width, depth_multiplier)
    rates = dilation_rates(len(blocks), out_indexes, output_stride)
    size, plan = math.ceil(image_size / 2), []  # after the stride-2 stem
    for i, (block, rate) in enumerate(zip(blocks, rates)):
        if rate > 1:
            stride, padding = 1, (block.kernel // 2) * rate
        else:
            stride, padding = block.stride, static_same_padding(size, block.kernel, block.stride)
        plan.append(BlockPlan(block, stride, padding, rate, DROP_CONNECT_RATE * i / len(blocks) if block.skip else 0.0))
        size = math.ceil(size / block.stride)
    return plan


def _bn(x, name, data_format, act=True):
    x = batch_norm(x, name, data_format=data_format, eps=BN_EPS, momentum=BN_MOMENTUM)
    return activation(x, "swish") if act else x


def _pointwise(x, filters, name, data_format):
    """A bias-free 1x1 conv (its static "SAME" padding is always zero; dilating it changes nothing)."""
    return conv2d(x, filters, 1, name, data_format=data_format, use_bias=False, kernel_initializer=torch_default_init())


def mbconv(x, prefix, plan, data_format):
    """MBConvBlock: [1x1 expand] -> depthwise -> squeeze-excite -> 1x1 project [-> drop-connect + skip]."""
    inputs, block = x, plan.block
    hidden = block.in_filters * block.expand
    if block.expand != 1:
        x = _bn(_pointwise(x, hidden, f"{prefix}-_expand_conv", data_format), f"{prefix}-_bn0", data_format)
    x = depthwise_conv2d(
        x, block.kernel, f"{prefix}-_depthwise_conv", data_format=data_format, stride=plan.stride, padding=plan.padding,
        dilation=plan.dilation, depthwise_initializer=torch_default_init(depthwise=True),
    )
    x = _bn(x, f"{prefix}-_bn1", data_format)
    x = squeeze_excite(
        x, max(1, int(block.in_filters * SE_RATIO)), f"{prefix}-_se_reduce", f"{prefix}-_se_expand",
        data_format=data_format, act="swish", gate="sigmoid",
        kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(hidden),
    )
    x = _bn(_pointwise(x, block.out_filters, f"{prefix}-_project_conv", data_format), f"{prefix}-_bn2", data_format, act=False)
    if not block.skip:
        return x
    return keras.layers.Add()([drop_path(x, plan.drop_rate, name=f"{prefix}-drop_connect"), inputs])


def build_efficientnet(x, *, depth, output_stride, data_format, width, depth_multiplier, image_size, out_indexes):
    """SMP's EfficientNetEncoder: returns [x, stem, blocks[out_indexes[0]], ..., blocks[out_indexes[3]]]
    outputs, then the unused head's (so its weights exist; ``Encoder`` leaves it dormant).

    ``image_size`` is the nominal one the static paddings are computed for; ``out_indexes``
    are SMP's taps (b0 taps the first, not the last, 112-filter block at stride 16).
    """
    if depth < 2:
        raise ValueError(DEPTH_ERROR.format(depth))
    features = [x]
    x = conv2d(
        x, round_filters(STEM_FILTERS, width), 3, "_conv_stem", data_format=data_format, stride=2,
        padding=static_same_padding(image_size, 3, 2), use_bias=False, kernel_initializer=torch_default_init(),
    )
    x = _bn(x, "_bn0", data_format)
    features.append(x)
    for i, plan in enumerate(block_plan(width, depth_multiplier, image_size, out_indexes, output_stride)):
        x = mbconv(x, layer_name("_blocks", i), plan, data_format)
        if i in out_indexes:
            features.append(x)
    head = _pointwise(x, round_filters(HEAD_FILTERS, width), "_conv_head", data_format)
    return features + [_bn(head, "_bn1", data_format)]


# name: ((width, depth multiplier, nominal image size), SMP's out_indexes, out_channels, smp-hub revisions).
EFFICIENTNETS = {
    "efficientnet-b0": ((1.0, 1.0, 224), [2, 4, 8, 15], [3, 32, 24, 40, 112, 320], {
        "imagenet": "1bbe7ecc1d5ea1d2058de1a2db063b8701aff314",
        "advprop": "29043c08140d9c6ee7de1468d55923f2b06bcec2",
    }),
    "efficientnet-b1": ((1.0, 1.1, 240), [4, 7, 15, 22], [3, 32, 24, 40, 112, 320], {
        "imagenet": "5d637466a5215de300a8ccb13a39357df2df2bf4",
        "advprop": "2e518b8b0955bbab467f50525578dab6b6086afc",
    }),
    "efficientnet-b2": ((1.1, 1.2, 260), [4, 7, 15, 22], [3, 32, 24, 48, 120, 352], {
        "imagenet": "a96d4f0295ffbae18ebba173bf7f3c0c8f21990e",
        "advprop": "be788c20dfb0bbe83b4c439f9cfe0dd937c0783e",
    }),
    "efficientnet-b3": ((1.2, 1.4, 300), [4, 7, 17, 25], [3, 40, 32, 48, 136, 384], {
        "imagenet": "074c54a6c473e0d294690d49cedb6cf463e7127d",
        "advprop": "9ccc166d87bd9c08d6bed4477638c7f4bb3eec78",
    }),
    "efficientnet-b4": ((1.4, 1.8, 380), [5, 9, 21, 31], [3, 48, 32, 56, 160, 448], {
        "imagenet": "05cd5dde5dab658f00c463f9b9aa0ced76784f40",
        "advprop": "f04caa809ea4eb08ee9e7fd555f5514ebe2a9ef5",
    }),
    "efficientnet-b5": ((1.6, 2.2, 456), [7, 12, 26, 38], [3, 48, 40, 64, 176, 512], {
        "imagenet": "69f4d28460a4e421b7860bc26ee7d832e03e01ca",
        "advprop": "dabe78fc8ab7ce93ddc2bb156b01db227caede88",
    }),
    "efficientnet-b6": ((1.8, 2.6, 528), [8, 14, 30, 44], [3, 56, 40, 72, 200, 576], {
        "imagenet": "8570752016f7c62ae149cffa058550fe44e21c8b",
        "advprop": "c2dbb4d1359151165ec7b96cfe54a9cac2142a31",
    }),
    "efficientnet-b7": ((2.0, 3.1, 600), [10, 17, 37, 54], [3, 64, 48, 80, 224, 640], {
        "imagenet": "5a5dbe687d612ebc3dca248274fd1191111deda6",
        "advprop": "ce33edb4e80c0cde268f098ae2299e23f615577d",
    }),
}

PREPROCESSING = {"imagenet": IMAGENET_PREPROCESSING, "advprop": ADVPROP_PREPROCESSING}

for _name, ((_width, _depth_multiplier, _image_size), _out_indexes, _channels, _revisions) in EFFICIENTNETS.items():
    registry.register_encoder(
        _name,
        build_efficientnet,
        out_channels=_channels,
        params=dict(width=_width, depth_multiplier=_depth_multiplier, image_size=_image_size, out_indexes=_out_indexes),
        pretrained_weights={w: dict(repo_id=f"smp-hub/{_name}.{w}", revision=rev) for w, rev in _revisions.items()},
        preprocessing={w: PREPROCESSING[w] for w in _revisions},
        first_conv="_conv_stem",
        classifier_keys=("_fc.",),  # what EfficientNetEncoder.load_state_dict pops
    )
