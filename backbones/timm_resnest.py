"""timm's ResNeSt module (``timm.models.resnest``) as ``tu-`` encoders: every model it registers (8 in
timm 1.0.31), timm's ResNet (``backbones.timm_resnet``: deep stem, avg-pool shortcuts, dilation) with its
ResNestBottleneck block, from ``timm_configs.resnest``.

ResNestBottleneck: 1x1 conv, then timm's ``SplitAttn`` as ``conv2`` (a 3x3 conv with ``radix`` times the
channels in ``cardinality * radix`` groups, ``bn0``, ReLU; the radix splits summed, pooled, ``fc1`` / ``bn1`` /
ReLU / ``fc2`` in ``cardinality`` groups; softmax over the radix splits within each cardinal group, a
sigmoid for radix 1; the splits weighted and summed), 1x1 conv. ``avd``: a strided block runs its 3x3 conv
at stride 1 and strides by a 3x3 average pool (zero padding counted) before (``avd_first``) or after it.
"""

import keras

from backbones.layers import (
    avg_pool, channels, concat_channels, conv2d, global_avg_pool, group_softmax, layer_name, relu, split_channels, torch_conv_init,
)
from backbones.timm_configs.resnest import RESNEST_MODELS
from backbones.timm_efficientnet import make_divisible
from backbones.timm_resnet import build_timm_resnet, feature_info, register_block
from backbones.timm_universal import register_timm_models


def _radix_weights(attn, radix, cardinality, data_format):
    """timm's ``RadixSoftmax``: ``fc2``'s channels, ordered (cardinality, radix, c), as ``radix`` weights of
    ``cardinality * c`` channels each (softmax over the radix within each cardinal group)."""
    if radix == 1:
        return [keras.layers.Activation("sigmoid")(attn)]
    width = channels(attn, data_format) // (cardinality * radix)
    groups = split_channels(attn, [width * radix] * cardinality, data_format=data_format)
    groups = [split_channels(group_softmax(g, radix, data_format=data_format), [width] * radix, data_format=data_format)
              for g in groups]
    return [concat_channels([g[r] for g in groups], data_format=data_format) for r in range(radix)]


def split_attention(net, x, filters, path, *, stride, dilation, cardinality, radix, rd_ratio=0.25, rd_divisor=8):
    """timm's ``SplitAttn(filters, filters, 3, stride, padding=dilation, dilation, groups=cardinality, radix)``."""
    df = net.data_format
    attn_chs = max(32, make_divisible(channels(x, df) * radix * rd_ratio, rd_divisor))  # timm: min_value=32
    x = net.conv(x, filters * radix, 3, f"{path}.conv", stride, dilation, dilation, cardinality * radix)
    splits = split_channels(relu(net.norm(x, f"{path}.bn0")), [filters] * radix, data_format=df)
    gap = global_avg_pool(splits[0] if radix == 1 else keras.layers.Add()(splits), data_format=df)

    def fc(t, units, i):  # fc1 / fc2: biased 1x1 convs in cardinality groups
        return conv2d(t, units, 1, layer_name("model", f"{path}.fc{i}".replace(".", "-")), data_format=df,
                      groups=cardinality, kernel_initializer=torch_conv_init())

    gap = fc(relu(net.norm(fc(gap, attn_chs, 1), f"{path}.bn1")), filters * radix, 2)
    weighted = [keras.layers.Multiply()([s, w]) for s, w in zip(splits, _radix_weights(gap, radix, cardinality, df))]
    return weighted[0] if radix == 1 else keras.layers.Add()(weighted)


def resnest_bottleneck(net, x, path, planes, stride, dilation, first_dilation, *, cardinality, base_width, radix, avd,
                       avd_first, **_):
    """timm's ``ResNestBottleneck`` up to ``bn3`` (timm's ResNet never passes ``is_first``: avd on strided blocks)."""
    group_width = int(planes * (base_width / 64.0)) * cardinality
    avd_stride = stride if avd and stride > 1 else 0
    stride = 1 if avd_stride else stride
    out = relu(net.norm(net.conv(x, group_width, 1, f"{path}.conv1"), f"{path}.bn1"))
    if avd_stride and avd_first:
        out = avg_pool(out, 3, avd_stride, 1, data_format=net.data_format)
    if radix >= 1:
        out = split_attention(net, out, group_width, f"{path}.conv2", stride=stride, dilation=first_dilation,
                              cardinality=cardinality, radix=radix)
    else:
        out = net.conv(out, group_width, 3, f"{path}.conv2", stride, first_dilation, first_dilation, cardinality)
        out = relu(net.norm(out, f"{path}.bn2"))
    if avd_stride and not avd_first:
        out = avg_pool(out, 3, avd_stride, 1, data_format=net.data_format)
    return net.norm(net.conv(out, planes * 4, 1, f"{path}.conv3"), f"{path}.bn3")


register_block("resnest_bottleneck", 4, resnest_bottleneck)
register_timm_models("resnest", RESNEST_MODELS, build_timm_resnet, feature_info)
