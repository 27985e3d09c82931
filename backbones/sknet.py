"""timm's Selective Kernel ResNets (``timm.models.sknet``), as SMP's timm_sknet SkNetEncoder uses them.

A timm ResNet (torchvision's stem, stages and 1x1 downsample shortcuts) whose 3x3 conv is a
``SelectiveKernel``: two ConvNormAct paths (3x3, and 3x3 dilated 2 for timm's default 5x5 with
``keep_3x3``), optionally each on half of the input channels (``split_input``), weighted per
channel by ``SelectiveKernelAttn`` (mean of the paths' sum, ``fc_reduce`` 1x1, BatchNorm, ReLU,
``fc_select`` 1x1 to one logit per path and channel, softmax over the paths). Layer names are
the torch module paths (``conv1.paths.0.conv``, ``conv1.attn.fc_select``, ...).
"""

import keras

from backbones import registry
from backbones.layers import (
    batch_norm,
    channels,
    conv2d,
    global_avg_pool,
    group_softmax,
    relu,
    split_channels,
    torch_conv_init,
)
from backbones.resnet import IMAGENET_PREPROCESSING, resnet_features
from backbones.resnet import _conv_bn as conv_bn  # bias-free conv (kaiming fan_out, timm's init) + BatchNorm
from backbones.resnet import _hub as smp_hub  # {weights: smp-hub/<name>.<weights> at a revision}
from backbones.timm_efficientnet import make_divisible  # timm's make_divisible

# timm's SelectiveKernel defaults for kernel_size=None, keep_3x3=True: kernels [3, 5] as 3x3
# convs dilated (k - 1) // 2.
PATH_DILATIONS = (1, 2)


def _attention(paths, prefix, attn_channels, data_format):
    """SelectiveKernelAttn: softmax-over-paths weights, one per path and channel, as P tensors."""
    width = channels(paths[0], data_format)
    s = global_avg_pool(keras.layers.Add()(paths), data_format=data_format)
    s = conv2d(s, attn_channels, 1, f"{prefix}-fc_reduce", data_format=data_format, use_bias=False, kernel_initializer=torch_conv_init())
    s = relu(batch_norm(s, f"{prefix}-bn", data_format=data_format))
    s = conv2d(s, width * len(paths), 1, f"{prefix}-fc_select", data_format=data_format, use_bias=False, kernel_initializer=torch_conv_init())
    s = group_softmax(s, len(paths), data_format=data_format)
    return split_channels(s, [width] * len(paths), data_format=data_format)


def selective_kernel(x, filters, prefix, data_format, *, stride, dilation, groups, rd_ratio, rd_divisor, split_input):
    """timm's ``SelectiveKernel(in, filters, stride, groups, rd_ratio, rd_divisor, split_input)``.

    ``dilation`` is SMP's make_dilated rate for the stage: 1 keeps timm's path dilations
    (1, 2); in a dilated stage SMP sets every conv, both paths alike, to ``dilation``.
    """
    dilations = PATH_DILATIONS if dilation == 1 else (dilation,) * len(PATH_DILATIONS)
    n = len(dilations)
    inputs = split_channels(x, [channels(x, data_format) // n] * n, data_format=data_format) if split_input else [x] * n
    paths = [
        relu(conv_bn(
            t, filters, 3, f"{prefix}-paths-{i}-conv", f"{prefix}-paths-{i}-bn", data_format, stride, d,
            min(filters, groups),
        ))
        for i, (t, d) in enumerate(zip(inputs, dilations))
    ]
    attn_channels = make_divisible(filters * rd_ratio, divisor=rd_divisor)
    weights = _attention(paths, f"{prefix}-attn", attn_channels, data_format)
    return keras.layers.Add()([keras.layers.Multiply()([p, w]) for p, w in zip(paths, weights)])


def _shortcut(x, out, plan, filters, data_format):
    """The residual sum and ReLU, through timm's ``downsample`` (1x1 conv + BatchNorm) when planned."""
    if plan.downsample:
        x = conv_bn(x, filters, 1, f"{plan.prefix}-downsample-0", f"{plan.prefix}-downsample-1", data_format, plan.stride)
    return relu(keras.layers.Add()([out, x]))


def _basic(x, plan, data_format, *, cardinality, base_width, **sk):
    """SelectiveKernelBasic: conv1 the SK conv (strided), conv2 a 3x3 ConvNormAct without act."""
    prefix = plan.prefix
    out = selective_kernel(x, plan.planes, f"{prefix}-conv1", data_format, stride=plan.stride, dilation=plan.dilation, groups=1, **sk)
    out = conv_bn(out, plan.planes, 3, f"{prefix}-conv2-conv", f"{prefix}-conv2-bn", data_format, 1, plan.dilation)
    return _shortcut(x, out, plan, plan.planes, data_format)


def _bottleneck(x, plan, data_format, *, cardinality, base_width, **sk):
    """SelectiveKernelBottleneck: 1x1 ConvNormAct, the grouped SK conv (strided), 1x1 without act."""
    prefix = plan.prefix
    width = int(plan.planes * (base_width / 64)) * cardinality
    out = relu(conv_bn(x, width, 1, f"{prefix}-conv1-conv", f"{prefix}-conv1-bn", data_format))
    out = selective_kernel(
        out, width, f"{prefix}-conv2", data_format, stride=plan.stride, dilation=plan.dilation, groups=cardinality, **sk
    )
    out = conv_bn(out, plan.planes * 4, 1, f"{prefix}-conv3-conv", f"{prefix}-conv3-bn", data_format)
    return _shortcut(x, out, plan, plan.planes * 4, data_format)


_BLOCKS = {"basic": (_basic, 1), "bottleneck": (_bottleneck, 4)}


def build_sknet(x, *, depth, output_stride, data_format, block, layers, **block_kwargs):
    """timm SK-ResNet features: [x, act1 (stride 2), layer1, layer2, layer3, layer4]."""
    block_fn, expansion = _BLOCKS[block]
    return resnet_features(
        x, output_stride=output_stride, data_format=data_format, block_fn=block_fn, expansion=expansion, layers=layers,
        **block_kwargs,
    )


# SMP's rows with timm's defaults filled in (SMP passes rd_ratio 1/8 to the basic ones only; it
# never passes rd_divisor, so timm's SelectiveKernel default 8 holds, not timm's own model defs').
_BASIC = dict(block="basic", cardinality=1, base_width=64, rd_ratio=1 / 8, rd_divisor=8, split_input=True)
SKNET_ENCODERS = {
    "timm-skresnet18": ([3, 64, 64, 128, 256, 512], dict(layers=[2, 2, 2, 2], **_BASIC), "6c97652bb744d89177b68274d2fda3923a7d1f95"),
    "timm-skresnet34": ([3, 64, 64, 128, 256, 512], dict(layers=[3, 4, 6, 3], **_BASIC), "2367796924a8182cc835ef6b5dc303917f923f99"),
    "timm-skresnext50_32x4d": ([3, 64, 256, 512, 1024, 2048], dict(
        block="bottleneck", layers=[3, 4, 6, 3], cardinality=32, base_width=4, rd_ratio=1 / 16, rd_divisor=8, split_input=True,
    ), "50207e407cc4c6ea9e6872963db6844ca7b7b9de"),
}

for _name, (_channels, _params, _revision) in SKNET_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_sknet,
        out_channels=_channels,
        params=_params,
        pretrained_weights=smp_hub(_name, {"imagenet": _revision}),
        # SMP <= 0.4's timm_sknet table: ImageNet mean/std, input_range [0, 1] (no input_space:
        # SMP's preprocess_input defaults to RGB).
        preprocessing={"imagenet": IMAGENET_PREPROCESSING},
        first_conv="conv1",
        classifier_keys=("fc.",),  # SMP's load_state_dict pops fc.weight / fc.bias
    )
