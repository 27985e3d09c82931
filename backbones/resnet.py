"""The torchvision ResNet and ResNeXt family, as SMP's ResNetEncoder uses it."""

from typing import NamedTuple

import keras

from backbones import registry
from backbones.layers import batch_norm, conv2d, layer_name, max_pool, relu, torch_conv_init

IMAGENET_PREPROCESSING = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "input_range": [0, 1],
    "input_space": "RGB",
}


def _conv_bn(x, filters, kernel_size, conv_name, bn_name, data_format, stride=1, dilation=1, groups=1, padding=None, init=None):
    """A bias-free conv (torch's ``(k // 2) * dilation`` padding unless ``padding`` is given;
    torchvision's kaiming fan_out init unless ``init`` is) then BatchNorm."""
    x = conv2d(
        x,
        filters,
        kernel_size,
        conv_name,
        data_format=data_format,
        stride=stride,
        padding=(kernel_size // 2) * dilation if padding is None else padding,
        dilation=dilation,
        groups=groups,
        use_bias=False,
        kernel_initializer=init or torch_conv_init(),
    )
    return batch_norm(x, bn_name, data_format=data_format)


class BlockPlan(NamedTuple):
    """One residual block: its module path, width, stride and dilation, whether it has a
    ``downsample`` shortcut, its stage (0-3) and whether it ends the stage."""

    prefix: str
    planes: int
    stride: int
    dilation: int
    downsample: bool
    stage: int
    last: bool


def block_plan(layers, output_stride, expansion, inplanes=64):
    """The blocks of a four-stage ResNet (``layer1``..``layer4``, planes 64..512, stride 4..32)
    in torch order, dilated as SMP's ``make_dilated`` does: stages whose stride exceeds
    ``output_stride`` get stride 1 and dilation ``stride // output_stride`` in every conv.
    A block has a downsample shortcut when it is first in a strided stage or changes width
    (torchvision's / pretrainedmodels' / timm's rule, taken before dilation)."""
    for i, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        stage_stride = 2 ** (i + 2)
        stride, dilation = (1 if i == 0 else 2), 1
        if stage_stride > output_stride:
            stride, dilation = 1, stage_stride // output_stride
        for b in range(n_blocks):
            first = b == 0
            downsample = first and (i > 0 or inplanes != planes * expansion)
            yield BlockPlan(layer_name(f"layer{i + 1}", b), planes, stride if first else 1, dilation, downsample, i, b == n_blocks - 1)
            inplanes = planes * expansion


def _basic_block(x, plan, data_format, **_):
    prefix, planes = plan.prefix, plan.planes
    shortcut = x
    out = _conv_bn(x, planes, 3, f"{prefix}-conv1", f"{prefix}-bn1", data_format, plan.stride, plan.dilation)
    out = relu(out)
    out = _conv_bn(out, planes, 3, f"{prefix}-conv2", f"{prefix}-bn2", data_format, 1, plan.dilation)
    if plan.downsample:
        shortcut = _conv_bn(x, planes, 1, f"{prefix}-downsample-0", f"{prefix}-downsample-1", data_format, plan.stride)
    return relu(keras.layers.Add()([out, shortcut]))


def _bottleneck(x, plan, data_format, groups=1, width_per_group=64):
    prefix, planes = plan.prefix, plan.planes
    width = int(planes * (width_per_group / 64.0)) * groups
    shortcut = x
    out = relu(_conv_bn(x, width, 1, f"{prefix}-conv1", f"{prefix}-bn1", data_format))
    out = relu(_conv_bn(out, width, 3, f"{prefix}-conv2", f"{prefix}-bn2", data_format, plan.stride, plan.dilation, groups))
    out = _conv_bn(out, planes * 4, 1, f"{prefix}-conv3", f"{prefix}-bn3", data_format)
    if plan.downsample:
        shortcut = _conv_bn(x, planes * 4, 1, f"{prefix}-downsample-0", f"{prefix}-downsample-1", data_format, plan.stride)
    return relu(keras.layers.Add()([out, shortcut]))


_BLOCKS = {"basic": (_basic_block, 1), "bottleneck": (_bottleneck, 4)}


def resnet_features(x, *, output_stride, data_format, block_fn, expansion, layers, **block_kwargs):
    """[x, stem, layer1, layer2, layer3, layer4] of a torchvision-layout ResNet (``conv1``/``bn1``
    7x7/2 stem, 3x3/2 max-pool, then ``block_fn(x, plan, data_format, **block_kwargs)`` per
    ``block_plan``): torchvision's and timm's ResNets, whatever their blocks."""
    features = [x]
    x = conv2d(
        x, 64, 7, "conv1", data_format=data_format, stride=2, padding=3, use_bias=False, kernel_initializer=torch_conv_init()
    )
    x = relu(batch_norm(x, "bn1", data_format=data_format))
    features.append(x)
    x = max_pool(x, 3, 2, 1, data_format=data_format, nonnegative=True)
    for plan in block_plan(layers, output_stride, expansion):
        x = block_fn(x, plan, data_format, **block_kwargs)
        if plan.last:
            features.append(x)
    return features


def build_resnet(x, *, depth, output_stride, data_format, block, layers, groups=1, width_per_group=64):
    """torchvision ResNet: returns [x, stem, layer1, layer2, layer3, layer4] outputs."""
    block_fn, expansion = _BLOCKS[block]
    return resnet_features(
        x, output_stride=output_stride, data_format=data_format, block_fn=block_fn, expansion=expansion, layers=layers,
        groups=groups, width_per_group=width_per_group,
    )


def _hub(name, revisions):
    """SMP's smp-hub entries; the repos spell a "+" of a weights name "-" (imagenet+5k -> smp-hub/<name>.imagenet-5k)."""
    return {w: {"repo_id": f"smp-hub/{name}.{w.replace('+', '-')}", "revision": rev} for w, rev in revisions.items()}


_SMALL = [3, 64, 64, 128, 256, 512]
_LARGE = [3, 64, 256, 512, 1024, 2048]

RESNET_ENCODERS = {
    "resnet18": (_SMALL, dict(block="basic", layers=[2, 2, 2, 2]), {
        "imagenet": "3f2325ff978283d47aa6a1d6878ca20565622683",
        "ssl": "d600d5116aac2e6e595f99f40612074c723c00b2",
        "swsl": "0e3a35d4d8e344088c14a96eee502a88ac70eae1",
    }),
    "resnet34": (_SMALL, dict(block="basic", layers=[3, 4, 6, 3]), {
        "imagenet": "7a57b34f723329ff020b3f8bc41771163c519d0c",
    }),
    "resnet50": (_LARGE, dict(block="bottleneck", layers=[3, 4, 6, 3]), {
        "imagenet": "00cb74e366966d59cd9a35af57e618af9f88efe9",
        "ssl": "d07daf5b4377f3700c6ac61906b0aafbc4eca46b",
        "swsl": "b9520cce124f91c6fe7eee45721a2c7954f0d8c0",
    }),
    "resnet101": (_LARGE, dict(block="bottleneck", layers=[3, 4, 23, 3]), {
        "imagenet": "cd7c15e8c51da86ae6a084515fdb962d0c94e7d1",
    }),
    "resnet152": (_LARGE, dict(block="bottleneck", layers=[3, 8, 36, 3]), {
        "imagenet": "951dd835e9d086628e447b484584c8983f9e1dd0",
    }),
    "resnext50_32x4d": (_LARGE, dict(block="bottleneck", layers=[3, 4, 6, 3], groups=32, width_per_group=4), {
        "imagenet": "329793c85d62fd340ae42ae39fb905a63df872e7",
        "ssl": "9b67cff77d060c7044493a58c24d1007c1eb06c3",
        "swsl": "52e6e49da61b8e26ca691e1aef2cbb952884057d",
    }),
    "resnext101_32x4d": (_LARGE, dict(block="bottleneck", layers=[3, 4, 23, 3], groups=32, width_per_group=4), {
        "ssl": "b39796c8459084d13523b7016c3ef13a2e9e472b",
        "swsl": "3f8355b4892a31f001a832b49b2b01484d48516a",
    }),
    "resnext101_32x8d": (_LARGE, dict(block="bottleneck", layers=[3, 4, 23, 3], groups=32, width_per_group=8), {
        "imagenet": "221af6198d03a4ee88992f78a1ee81b46a52d339",
        "instagram": "44cd927aa6e64673ffe9d31230bad44abc18b823",
        "ssl": "723a95ddeed335c9488c37c6cbef13d779ac8f97",
        "swsl": "58cf0bb65f91365470398080d9588b187d1777c4",
    }),
    "resnext101_32x16d": (_LARGE, dict(block="bottleneck", layers=[3, 4, 23, 3], groups=32, width_per_group=16), {
        "instagram": "64e8e320eeae6501185b0627b2429a68e52d050c",
        "ssl": "1283fe03fbb6aa2599b2df24095255acb93c3d5c",
        "swsl": "30ba61bbd4d6af0d955c513dbb4f557b84eb094f",
    }),
    "resnext101_32x32d": (_LARGE, dict(block="bottleneck", layers=[3, 4, 23, 3], groups=32, width_per_group=32), {
        "instagram": "c9405de121fdaa275a89de470fb19409e3eeaa86",
    }),
    "resnext101_32x48d": (_LARGE, dict(block="bottleneck", layers=[3, 4, 23, 3], groups=32, width_per_group=48), {
        "instagram": "53e61a962b824ad7027409821f9ac3e3336dd024",
    }),
}

for _name, (_channels, _params, _revisions) in RESNET_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_resnet,
        out_channels=_channels,
        params=_params,
        pretrained_weights=_hub(_name, _revisions),
        preprocessing={w: IMAGENET_PREPROCESSING for w in _revisions},
        first_conv="conv1",
    )
