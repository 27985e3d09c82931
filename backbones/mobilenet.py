"""torchvision's MobileNetV2, as SMP's MobileNetV2Encoder uses it (classifier dropped).

Layer names are torchvision's module paths: ``features.{i}`` is the stem
(``Conv2dNormActivation``: ``.0`` conv, ``.1`` BatchNorm), inverted residual blocks
(``features.{i}.conv.{j}``) and the final 1x1 ``Conv2dNormActivation``.
"""

import keras

from backbones import registry
from backbones.layers import activation, batch_norm, channels, depthwise_conv2d, layer_name, torch_conv_init
from backbones.resnet import IMAGENET_PREPROCESSING
from backbones.resnet import _conv_bn as conv_bn  # bias-free conv (kaiming fan_out) + BatchNorm, as torchvision
from backbones.resnet import _hub as smp_hub

# torchvision's (expand ratio t, channels c, blocks n, first stride s).
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# SMP's taps: the outputs of features[1], [3], [6], [13] and [18] (strides 2, 4, 8, 16, 32).
FEATURE_INDEXES = (1, 3, 6, 13, 18)


def _conv_norm_act(x, filters, kernel_size, prefix, data_format, stride=1):
    """torchvision ``Conv2dNormActivation`` with ReLU6: ``prefix.0`` conv, ``prefix.1`` BatchNorm."""
    x = conv_bn(x, filters, kernel_size, layer_name(prefix, 0), layer_name(prefix, 1), data_format, stride)
    return activation(x, "relu6")


def _depthwise_norm_act(x, prefix, data_format, stride, dilation):
    """The 3x3 depthwise ``Conv2dNormActivation`` of an InvertedResidual (padding = dilation)."""
    x = depthwise_conv2d(
        x, 3, layer_name(prefix, 0), data_format=data_format, stride=stride, padding=dilation, dilation=dilation,
        # kaiming_normal_(fan_out): torch's fan_out of a (C, 1, k, k) depthwise weight is Keras's fan_in.
        depthwise_initializer=torch_conv_init("fan_in"),
    )
    return activation(batch_norm(x, layer_name(prefix, 1), data_format=data_format), "relu6")


def _inverted_residual(x, prefix, out_channels, stride, dilation, expand_ratio, residual, data_format):
    """torchvision ``InvertedResidual``: [1x1 expand] -> 3x3 depthwise -> 1x1 linear projection."""
    out, j = x, 0
    if expand_ratio != 1:
        hidden = int(round(channels(x, data_format) * expand_ratio))
        out = _conv_norm_act(out, hidden, 1, layer_name(prefix, "conv", 0), data_format)
        j = 1
    out = _depthwise_norm_act(out, layer_name(prefix, "conv", j), data_format, stride, dilation)
    out = conv_bn(out, out_channels, 1, layer_name(prefix, "conv", j + 1), layer_name(prefix, "conv", j + 2), data_format)
    return keras.layers.Add()([x, out]) if residual else out


def _dilate(stage_stride, stride, output_stride):
    """SMP's make_dilated on one layer: (stride, dilation) for the stage of ``stage_stride``."""
    if stage_stride > output_stride:
        return 1, stage_stride // output_stride
    return stride, 1


def _blocks():
    """(output channels, stride, expand ratio) of features[1..17], in order."""
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for b in range(n):
            yield c, s if b == 0 else 1, t


def build_mobilenet_v2(x, *, depth, output_stride, data_format):
    """torchvision MobileNetV2 features: returns [x, f1, f3, f6, f13, f18] outputs.

    SMP's get_stages dilates features[7:14] (stride 16) and features[14:] (stride 32) past
    ``output_stride``: every conv there gets stride 1, dilation stage // output_stride and
    padding (k // 2) * dilation. Residual connections keep torchvision's construction-time rule.
    """
    inputs, taps = x, {}
    x = _conv_norm_act(x, STEM_CHANNELS, 3, layer_name("features", 0), data_format, stride=2)
    current = 2
    for i, (out_channels, stride, expand_ratio) in enumerate(_blocks(), start=1):
        current *= stride
        residual = stride == 1 and channels(x, data_format) == out_channels
        block_stride, dilation = _dilate(current, stride, output_stride)
        x = _inverted_residual(x, layer_name("features", i), out_channels, block_stride, dilation, expand_ratio, residual, data_format)
        taps[i] = x
    last = len(taps) + 1
    taps[last] = _conv_norm_act(x, LAST_CHANNELS, 1, layer_name("features", last), data_format)
    return [inputs] + [taps[i] for i in FEATURE_INDEXES]


registry.register_encoder(
    "mobilenet_v2",
    build_mobilenet_v2,
    out_channels=[3, 16, 24, 32, 96, 1280],
    pretrained_weights=smp_hub("mobilenet_v2", {"imagenet": "e67aa804e17f7b404b629127eabbd224c4e0690b"}),
    # SMP <= 0.4's table (torchvision's ImageNet weights); SMP 0.6 keeps it in the hub repo's config.json.
    preprocessing={"imagenet": IMAGENET_PREPROCESSING},
    first_conv="features.0.0",
    classifier_keys=("classifier.1.",),  # SMP's load_state_dict pops classifier.1.weight / .bias
)
