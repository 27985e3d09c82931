"""The torchvision ResNet and ResNeXt family, as SMP's ResNetEncoder uses it."""

import keras

from backbones import registry
from backbones.layers import batch_norm, conv2d, layer_name, max_pool, relu, torch_conv_init

IMAGENET_PREPROCESSING = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "input_range": [0, 1],
    "input_space": "RGB",
}


def _conv_bn(x, filters, kernel_size, conv_name, bn_name, data_format, stride=1, dilation=1, groups=1):
    pad = (kernel_size // 2) * dilation
    x = conv2d(
        x,
        filters,
        kernel_size,
        conv_name,
        data_format=data_format,
        stride=stride,
        padding=pad,
        dilation=dilation,
        groups=groups,
        use_bias=False,
        kernel_initializer=torch_conv_init(),
    )
    return batch_norm(x, bn_name, data_format=data_format)


def _basic_block(x, prefix, planes, stride, dilation, downsample, data_format, **_):
    shortcut = x
    out = _conv_bn(x, planes, 3, f"{prefix}-conv1", f"{prefix}-bn1", data_format, stride, dilation)
    out = relu(out)
    out = _conv_bn(out, planes, 3, f"{prefix}-conv2", f"{prefix}-bn2", data_format, 1, dilation)
    if downsample:
        shortcut = _conv_bn(x, planes, 1, f"{prefix}-downsample-0", f"{prefix}-downsample-1", data_format, stride)
    return relu(keras.layers.Add()([out, shortcut]))


def _bottleneck(x, prefix, planes, stride, dilation, downsample, data_format, groups=1, width_per_group=64):
    width = int(planes * (width_per_group / 64.0)) * groups
    shortcut = x
    out = relu(_conv_bn(x, width, 1, f"{prefix}-conv1", f"{prefix}-bn1", data_format))
    out = relu(_conv_bn(out, width, 3, f"{prefix}-conv2", f"{prefix}-bn2", data_format, stride, dilation, groups))
    out = _conv_bn(out, planes * 4, 1, f"{prefix}-conv3", f"{prefix}-bn3", data_format)
    if downsample:
        shortcut = _conv_bn(x, planes * 4, 1, f"{prefix}-downsample-0", f"{prefix}-downsample-1", data_format, stride)
    return relu(keras.layers.Add()([out, shortcut]))


_BLOCKS = {"basic": (_basic_block, 1), "bottleneck": (_bottleneck, 4)}


def build_resnet(x, *, depth, output_stride, data_format, block, layers, groups=1, width_per_group=64):
    """torchvision ResNet: returns [x, stem, layer1, layer2, layer3, layer4] outputs.

    Stages whose stride exceeds ``output_stride`` are dilated as SMP's make_dilated
    does: every conv in them gets stride 1 and dilation stride // output_stride.
    """
    block_fn, expansion = _BLOCKS[block]
    features = [x]
    x = conv2d(
        x, 64, 7, "conv1", data_format=data_format, stride=2, padding=3, use_bias=False, kernel_initializer=torch_conv_init()
    )
    x = relu(batch_norm(x, "bn1", data_format=data_format))
    features.append(x)
    x = max_pool(x, 3, 2, 1, data_format=data_format, nonnegative=True)
    inplanes = 64
    for i, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        stage_stride = 2 ** (i + 2)
        stride = 1 if i == 0 else 2
        dilation = 1
        if stage_stride > output_stride:
            stride, dilation = 1, stage_stride // output_stride
        for b in range(n_blocks):
            prefix = layer_name(f"layer{i + 1}", b)
            first = b == 0
            x = block_fn(
                x,
                prefix,
                planes,
                stride if first else 1,
                dilation,
                first and (i > 0 or inplanes != planes * expansion),  # torchvision's rule, before dilation
                data_format,
                groups=groups,
                width_per_group=width_per_group,
            )
            inplanes = planes * expansion
        features.append(x)
    return features


def _hub(name, revisions):
    return {w: {"repo_id": f"smp-hub/{name}.{w}", "revision": rev} for w, rev in revisions.items()}


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
