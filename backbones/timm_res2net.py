"""timm's Res2Net module (``timm.models.res2net``) as ``tu-`` encoders: every model it registers (9 in
timm 1.0.31), timm's ResNet (``backbones.timm_resnet``: stems, shortcuts, dilation) with its Bottle2neck
block, from ``timm_configs.res2net``.

Bottle2neck: a 1x1 conv to ``width * scale`` channels cut into ``scale`` pieces; each but the last runs a
3x3 conv (``convs.i`` / ``bns.i``, ReLU) on itself plus the previous piece's output (on itself alone in a
stage's first block, which also strides all of them); the last piece passes as is, or through a 3x3 average
pool (stride of the block, zero padding counted) in a stage's first block; concatenated, a 1x1 conv.
"""

import math

import keras

from backbones.layers import avg_pool, concat_channels, relu, split_channels
from backbones.timm_configs.res2net import RES2NET_MODELS
from backbones.timm_resnet import build_timm_resnet, feature_info, register_block
from backbones.timm_universal import register_timm_models


def bottle2neck(net, x, path, planes, stride, dilation, first_dilation, *, downsample, cardinality, base_width, scale,
                **_):
    """timm's ``Bottle2neck`` up to ``bn3`` (every 3x3 conv at the block's ``first_dilation``, as timm's)."""
    is_first = stride > 1 or downsample
    width = int(math.floor(planes * (base_width / 64.0))) * cardinality
    out = relu(net.norm(net.conv(x, width * scale, 1, f"{path}.conv1"), f"{path}.bn1"))
    pieces = split_channels(out, [width] * scale, data_format=net.data_format)
    outs = []
    for i in range(max(1, scale - 1)):
        sp = pieces[i] if i == 0 or is_first else keras.layers.Add()([sp, pieces[i]])
        sp = net.conv(sp, width, 3, f"{path}.convs.{i}", stride, first_dilation, first_dilation, cardinality)
        sp = relu(net.norm(sp, f"{path}.bns.{i}"))
        outs.append(sp)
    if scale > 1:
        last = pieces[-1]
        outs.append(avg_pool(last, 3, stride, 1, data_format=net.data_format) if is_first else last)
    out = concat_channels(outs, data_format=net.data_format)
    return net.norm(net.conv(out, planes * 4, 1, f"{path}.conv3"), f"{path}.bn3")


register_block("bottle2neck", 4, bottle2neck)
register_timm_models("res2net", RES2NET_MODELS, build_timm_resnet, feature_info)
