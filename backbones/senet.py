"""pretrainedmodels' SENet family (vendored by SMP as ``_senet.py``), as SMP's SENetEncoder uses it.

``layer0`` is the stem (one 7x7/2 conv, or senet154's three 3x3 convs) whose 3x3/2 max-pool
(``ceil_mode=True``, Caffe's rounding) SMP moves out as ``layer0_pool``; then four ResNet
stages of SE bottlenecks, each ending in ``se_module`` (``fc1``/``fc2`` 1x1 convs with bias).
Layer names are the torch module paths.
"""

import math

import keras

from backbones import registry
from backbones.layers import batch_norm, conv2d, max_pool, relu, squeeze_excite, torch_default_init
from backbones.resnet import IMAGENET_PREPROCESSING, block_plan
from backbones.resnet import _conv_bn as resnet_conv_bn  # bias-free conv + BatchNorm
from backbones.resnet import _hub as smp_hub  # {weights: smp-hub/<name>.<weights> at a revision}


def _conv_bn(x, filters, kernel_size, conv_name, bn_name, data_format, stride=1, dilation=1, groups=1, padding=None):
    """A bias-free ``nn.Conv2d`` (torch's default init: SENet does not re-initialise) + BatchNorm."""
    return resnet_conv_bn(
        x, filters, kernel_size, conv_name, bn_name, data_format, stride, dilation, groups, padding, init=torch_default_init()
    )


def _widths(block, planes, groups):
    """(conv1, conv2) output widths and which conv is strided, per bottleneck kind."""
    if block == "senet":  # SEBottleneck (senet154)
        return planes * 2, planes * 4, "conv2"
    if block == "se_resnet":  # SEResNetBottleneck: Caffe's stride on the 1x1 conv1
        return planes, planes, "conv1"
    width = math.floor(planes * (4 / 64)) * groups  # SEResNeXtBottleneck, base_width 4
    return width, width, "conv2"


def _bottleneck(x, plan, data_format, *, block, groups, reduction, downsample_kernel_size, downsample_padding):
    """The three SE bottlenecks: conv1 (1x1), conv2 (3x3, grouped), conv3 (1x1, planes * 4), each
    with BatchNorm, then the SE module on conv3's output, plus the (downsampled) input, ReLU."""
    prefix, planes, dilation = plan.prefix, plan.planes, plan.dilation
    width1, width2, strided = _widths(block, planes, groups)
    s1, s2 = (plan.stride, 1) if strided == "conv1" else (1, plan.stride)
    out = relu(_conv_bn(x, width1, 1, f"{prefix}-conv1", f"{prefix}-bn1", data_format, s1))
    out = relu(_conv_bn(out, width2, 3, f"{prefix}-conv2", f"{prefix}-bn2", data_format, s2, dilation, groups))
    out = _conv_bn(out, planes * 4, 1, f"{prefix}-conv3", f"{prefix}-bn3", data_format)
    out = squeeze_excite(
        out, planes * 4 // reduction, f"{prefix}-se_module-fc1", f"{prefix}-se_module-fc2", data_format=data_format,
        act="relu", gate="sigmoid", kernel_initializer=torch_default_init(),
    )
    shortcut = x
    if plan.downsample:
        # layer1 always 1x1; layer2-4 downsample_kernel_size / downsample_padding; SMP's
        # dilation re-pads every conv of a dilated stage to (k // 2) * dilation.
        k, p = (1, 0) if plan.stage == 0 else (downsample_kernel_size, downsample_padding)
        d = dilation if k > 1 else 1
        shortcut = _conv_bn(
            x, planes * 4, k, f"{prefix}-downsample-0", f"{prefix}-downsample-1", data_format, plan.stride, d,
            padding=p if d == 1 else None,
        )
    return relu(keras.layers.Add()([out, shortcut]))


def _layer0(x, inplanes, input_3x3, data_format):
    """The stem: conv1 7x7/2 (64 -> inplanes) or three 3x3 convs (64, 64, inplanes), BatchNorm + ReLU each."""
    convs = [(64, 2), (64, 1), (inplanes, 1)] if input_3x3 else [(inplanes, 2)]
    kernel = 3 if input_3x3 else 7
    for i, (filters, stride) in enumerate(convs, start=1):
        x = conv2d(
            x, filters, kernel, f"layer0-conv{i}", data_format=data_format, stride=stride, padding=kernel // 2,
            use_bias=False, kernel_initializer=torch_default_init(),
        )
        x = relu(batch_norm(x, f"layer0-bn{i}", data_format=data_format))
    return x


def build_senet(
    x, *, depth, output_stride, data_format, block, layers, groups, reduction, inplanes, input_3x3,
    downsample_kernel_size, downsample_padding,
):
    """SENet features: [x, layer0 (stride 2), layer1 (after layer0_pool), layer2, layer3, layer4]."""
    features = [x, _layer0(x, inplanes, input_3x3, data_format)]
    x = max_pool(features[-1], 3, 2, data_format=data_format, nonnegative=True, ceil_mode=True)
    for plan in block_plan(layers, output_stride, expansion=4, inplanes=inplanes):
        x = _bottleneck(
            x, plan, data_format, block=block, groups=groups, reduction=reduction,
            downsample_kernel_size=downsample_kernel_size, downsample_padding=downsample_padding,
        )
        if plan.last:
            features.append(x)
    return features


# SENet's own arguments for SMP's rows (its constructor defaults filled in for senet154).
_SE_RESNET = dict(inplanes=64, input_3x3=False, downsample_kernel_size=1, downsample_padding=0, reduction=16)
SENET_ENCODERS = {
    "senet154": ([3, 128, 256, 512, 1024, 2048], dict(
        block="senet", layers=[3, 8, 36, 3], groups=64, reduction=16, inplanes=128, input_3x3=True,
        downsample_kernel_size=3, downsample_padding=1,
    ), "249f45efc9881ba560a0c480128edbc34ab87e40"),
    "se_resnet50": (None, dict(block="se_resnet", layers=[3, 4, 6, 3], groups=1, **_SE_RESNET), "e6b4bc2dc85226c3d3474544410724a485455459"),
    "se_resnet101": (None, dict(block="se_resnet", layers=[3, 4, 23, 3], groups=1, **_SE_RESNET), "71fe95cc0a27f444cf83671f354de02dc741b18b"),
    "se_resnet152": (None, dict(block="se_resnet", layers=[3, 8, 36, 3], groups=1, **_SE_RESNET), "e79fc3d9d76f197bd76a2593c2054edf1083fe32"),
    "se_resnext50_32x4d": (None, dict(block="se_resnext", layers=[3, 4, 6, 3], groups=32, **_SE_RESNET), "73246406d879a2b0e3fdfe6fddd56347d38f38ae"),
    "se_resnext101_32x4d": (None, dict(block="se_resnext", layers=[3, 4, 23, 3], groups=32, **_SE_RESNET), "18808a4276f46421d358a9de554e0b93c2795df4"),
}

for _name, (_channels, _params, _revision) in SENET_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_senet,
        out_channels=_channels or [3, 64, 256, 512, 1024, 2048],
        params=_params,
        pretrained_weights=smp_hub(_name, {"imagenet": _revision}),
        # pretrainedmodels' pretrained_settings (SMP <= 0.4's table): ImageNet mean/std, RGB, [0, 1].
        preprocessing={"imagenet": IMAGENET_PREPROCESSING},
        first_conv="layer0.conv1",
        classifier_keys=("last_linear.",),  # SMP's load_state_dict pops last_linear.weight / .bias
    )
