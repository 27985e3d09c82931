"""timm's "bring your own blocks" networks (``timm.models.byobnet``) as ``tu-`` encoders, from
``timm_configs.byobnet`` (each model's ``ByoModelCfg``): so far what gernet_s / gernet_m / gernet_l use.

A 3x3 stride-2 conv-norm-act stem, stages of one block type each (``basic``: kxk, kxk; ``bottle``: 1x1,
kxk, 1x1; mid width ``make_divisible(c * br)``, groups from the group size, ``gs`` 1 depthwise), 1x1
conv-norm shortcuts where the shape changes (``downsample='conv1x1'``), and the 1x1 ``final_conv``. The
features are timm's: the stem and every stage before a strided one, then ``final_conv`` (gernet: strides 2 ...
32). ``output_stride`` 8 / 16 dilates as timm's ``create_byob_stages`` does (a block's first kxk conv at
dilation 1 while the stage's dilation is 2, else 2). Layers are the features_only model's paths
(``stages_<i>``) under SMP's ``model.``; timm's checkpoints (``stages.<i>``) are renamed on loading.
"""

import keras

from backbones.layers import batch_norm, conv2d, layer_name, relu, torch_conv_init
from backbones.timm_configs.byobnet import BYOBNET_MODELS
from backbones.timm_efficientnet import make_divisible
from backbones.timm_universal import register_timm_models


def _conv_norm_act(x, filters, kernel_size, path, data_format, stride=1, dilation=1, groups=1, act=True):
    """timm's ``ConvNormAct`` (symmetric padding, BatchNorm, ReLU) at ``<path>.conv`` / ``<path>.bn``."""
    name = layer_name("model", path.replace(".", "-"))
    x = conv2d(x, filters, kernel_size, f"{name}-conv", data_format=data_format, stride=stride,
               padding=((stride - 1) + dilation * (kernel_size - 1)) // 2, dilation=dilation, groups=groups,
               use_bias=False, kernel_initializer=torch_conv_init())
    x = batch_norm(x, f"{name}-bn", data_format=data_format)
    return relu(x) if act else x


def _groups(group_size, channels):
    """timm's ``num_groups``: 1 for group size 0, else ``channels // group_size``."""
    return channels // group_size if group_size else 1


def _block(x, block, path, in_chs, out_chs, stride, dilation, data_format):
    """timm's BasicBlock (``basic``) / BottleneckBlock (``bottle``), its shortcut, the residual, ReLU."""
    mid = make_divisible(out_chs * block["br"])
    groups = _groups(block["gs"], mid)

    def cna(t, filters, kernel_size, name, **kwargs):
        return _conv_norm_act(t, filters, kernel_size, f"{path}.{name}", data_format, **kwargs)

    shortcut = x
    if in_chs != out_chs or stride != 1 or dilation[0] != dilation[1]:
        shortcut = cna(x, out_chs, 1, "shortcut", stride=stride, dilation=dilation[0], act=False)
    if block["type"] == "basic":
        out = cna(x, mid, 3, "conv1_kxk", stride=stride, dilation=dilation[0])
        out = cna(out, out_chs, 3, "conv2_kxk", dilation=dilation[1], groups=groups, act=False)
    else:
        out = cna(x, mid, 1, "conv1_1x1")
        out = cna(out, mid, 3, "conv2_kxk", stride=stride, dilation=dilation[0], groups=groups)
        out = cna(out, out_chs, 1, "conv3_1x1", act=False)
    return relu(keras.layers.Add()([out, shortcut]))


def build_timm_byobnet(x, *, depth, output_stride, data_format, stages, stem_chs, width_factor, num_features, **_):
    """[x, stem, the output before every strided stage ..., final_conv] up to ``depth`` (timm's features)."""
    features = [x]
    chs = int(round(stem_chs * width_factor))
    x = _conv_norm_act(x, chs, 3, "stem", data_format, stride=2)
    net_stride, dilation = 2, 1
    for i, stage in enumerate(stages):
        stride = stage["s"]
        if stride != 1:
            features.append(x)
            if len(features) == depth + 1:
                return features
        if net_stride >= output_stride and stride > 1:
            dilation, stride = dilation * stride, 1
        net_stride *= stride
        first_dilation = 1 if dilation in (1, 2) else 2
        out_chs = make_divisible(stage["c"] * width_factor)
        for b in range(stage["d"]):
            x = _block(x, stage, f"stages_{i}.{b}", chs, out_chs, stride if b == 0 else 1, (first_dilation, dilation), data_format)
            first_dilation, chs = dilation, out_chs
    if num_features:
        x = _conv_norm_act(x, int(round(width_factor * num_features)), 1, "final_conv", data_format)
    features.append(x)
    return features


def feature_info(params):
    """timm's ``feature_info`` (channels, reductions) of the model's features."""
    channels, reductions = [], []
    chs, net_stride = int(round(params["stem_chs"] * params["width_factor"])), 2
    for stage in params["stages"]:
        if stage["s"] != 1:
            channels.append(chs)
            reductions.append(net_stride)
        net_stride *= stage["s"]
        chs = make_divisible(stage["c"] * params["width_factor"])
    channels.append(int(round(params["width_factor"] * params["num_features"])) if params["num_features"] else chs)
    return channels, reductions + [net_stride]


register_timm_models("byobnet", BYOBNET_MODELS, build_timm_byobnet, feature_info, flattened=("stages",))
