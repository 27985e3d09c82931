"""timm's RegNet module (``timm.models.regnet``) as ``tu-`` encoders: every model it registers (36 in timm
1.0.31: RegNet-X / Y incl. the torchvision ``_tv`` widths, the GroupNorm ``regnety_040_sgn``, the
pre-activation RegNet-V and the RegNet-Z), built from ``timm_configs.regnet`` (each model's ``RegNetCfg``).

The per-stage widths, depths and group sizes are derived from the cfg here as timm does (``generate_regnet``
in float32, quantised widths, ``adjust_widths_groups_comp`` with either rounding). Blocks: Bottleneck
(conv-norm-act 1x1, grouped 3x3, SE on the block input's width, 1x1 conv-norm, residual, act unless
``linear_out``) or PreBottleneck (``preact``: norm-act before each conv, shortcut taken after the first,
no output act); shortcuts a 1x1 conv(-norm), an average pool (``downsample='avg'``) then 1x1, or none
(``downsample=None``: a stage's first block has no residual); BatchNorm or GroupNorm by group size;
ReLU or SiLU. ``output_stride`` 8 / 16 dilates as timm's RegStage does (a stage's first block keeps
dilation 1 when entering dilation 2, else 2). Layers are timm's module paths under SMP's ``model.``;
like timm's features_only model, nothing past ``depth`` (nor the ``final_conv`` head) is built.
"""

import keras
import numpy as np

from backbones.layers import activation, batch_norm, channels, conv2d, group_norm, layer_name, squeeze_excite, torch_conv_init
from backbones.layers.padding import pad
from backbones.layers.pooling import avg_pool_ceil
from backbones.timm_configs.regnet import REGNET_MODELS
from backbones.timm_efficientnet import make_divisible
from backbones.timm_universal import register_timm_models

QUANT = 8  # generate_regnet's width quantum


def stage_settings(blocks, w0, wa, wm, group_size, bottle_ratio=1.0, group_min_ratio=0.0, **_):
    """timm's ``(widths, depths, group sizes)`` of the four stages (``generate_regnet`` and
    ``adjust_widths_groups_comp``; float32 as timm's torch arithmetic)."""
    f32 = np.float32
    cont = np.arange(blocks, dtype=f32) * f32(wa) + f32(w0)
    exps = np.round(np.log(cont / f32(w0)) / f32(np.log(wm)))
    widths = (np.round((f32(w0) * np.power(f32(wm), exps)) / f32(QUANT)) * f32(QUANT)).astype(np.int32)
    stage_widths, depths = np.unique(widths, return_counts=True)
    bottlenecks = [int(int(w) * bottle_ratio) for w in stage_widths]
    groups = [min(group_size, b) for b in bottlenecks]
    if group_min_ratio:
        bottlenecks = [make_divisible(b, g) for b, g in zip(bottlenecks, groups)]
    else:
        bottlenecks = [int(round(b / g) * g) for b, g in zip(bottlenecks, groups)]
    return [int(b / bottle_ratio) for b in bottlenecks], [int(d) for d in depths], groups


class _Net:
    """The settings of one model while its layers are built (timm's RegNetCfg)."""

    def __init__(self, data_format, norm, act):
        self.data_format, self.norm_kind, self.act = data_format, norm, act

    def conv(self, x, filters, kernel_size, path, stride=1, dilation=1, groups=1):
        """A bias-free conv at timm path ``path`` with timm's symmetric padding."""
        padding = ((stride - 1) + dilation * (kernel_size - 1)) // 2
        return conv2d(x, filters, kernel_size, layer_name("model", path.replace(".", "-")), data_format=self.data_format,
                      stride=stride, padding=padding, dilation=dilation, groups=groups, use_bias=False,
                      kernel_initializer=torch_conv_init())

    def norm(self, x, path, act=True):
        """timm's BatchNormAct2d / GroupNormAct (the activation unless ``act`` is False)."""
        name = layer_name("model", path.replace(".", "-"))
        if self.norm_kind == "batchnorm":
            x = batch_norm(x, name, data_format=self.data_format)
        else:
            groups = channels(x, self.data_format) // self.norm_kind["group_size"]
            x = group_norm(x, groups, name, data_format=self.data_format)
        return activation(x, self.act) if act else x

    def conv_norm(self, x, filters, kernel_size, path, stride=1, dilation=1, groups=1, act=True):
        """timm's ConvNormAct (``<path>.conv``, ``<path>.bn``)."""
        x = self.conv(x, filters, kernel_size, f"{path}.conv", stride, dilation, groups)
        return self.norm(x, f"{path}.bn", act)


def _shortcut(net, x, path, kind, filters, stride, dilation, preact):
    """timm's ``create_shortcut`` for a block that changes width, stride or dilation (``<block>.downsample``)."""
    if kind is None:
        return None
    if kind == "avg":
        if dilation > 1:  # AvgPool2dSame(2, 1): zero pad bottom / right, zeros counted
            x = keras.layers.AveragePooling2D(2, 1, "valid", data_format=net.data_format)(pad(x, ((0, 1), (0, 1)), net.data_format))
        elif stride > 1:
            x = avg_pool_ceil(x, 2, stride, data_format=net.data_format)
        path, stride = f"{path}.1", 1
    if preact:
        return net.conv(x, filters, 1, path, stride)
    return net.conv_norm(x, filters, 1, path, stride, act=False)


def _block(net, x, path, in_chs, out_chs, stride, dilation, group_size, cfg):
    """Bottleneck / PreBottleneck; ``dilation`` is timm's ``(first, stage)`` pair."""
    preact = cfg["preact"]
    width = int(round(out_chs * cfg["bottle_ratio"]))
    groups = width // group_size
    if preact:
        x = net.norm(x, f"{path}.norm1")
    inputs = x
    if preact:
        x = net.conv(net.norm(net.conv(x, width, 1, f"{path}.conv1"), f"{path}.norm2"), width, 3, f"{path}.conv2", stride, dilation[0], groups)
    else:
        x = net.conv_norm(net.conv_norm(x, width, 1, f"{path}.conv1"), width, 3, f"{path}.conv2", stride, dilation[0], groups)
    if cfg["se_ratio"]:
        name = layer_name("model", f"{path}.se".replace(".", "-"))
        x = squeeze_excite(x, int(round(in_chs * cfg["se_ratio"])), f"{name}-fc1", f"{name}-fc2", data_format=net.data_format,
                           act=net.act, kernel_initializer=torch_conv_init())
    if preact:
        x = net.conv(net.norm(x, f"{path}.norm3"), out_chs, 1, f"{path}.conv3")
    else:
        x = net.conv_norm(x, out_chs, 1, f"{path}.conv3", act=False)
    if in_chs != out_chs or stride != 1 or dilation[0] != dilation[1]:
        shortcut = _shortcut(net, inputs, f"{path}.downsample", cfg["downsample"], out_chs, stride, dilation[0], preact)
    else:
        shortcut = inputs
    if shortcut is not None:
        x = keras.layers.Add()([x, shortcut])
    return x if preact or cfg["linear_out"] else activation(x, net.act)


def build_timm_regnet(x, *, depth, output_stride, data_format, **cfg):
    """[x, stem (stride 2), s1 (4), s2 (8), s3 (16), s4 (32)] up to ``depth``."""
    net = _Net(data_format, cfg["norm"], cfg["act"])
    features = [x]
    if cfg["preact"]:
        x = net.conv(x, cfg["stem_width"], 3, "stem", stride=2)
    else:
        x = net.conv_norm(x, cfg["stem_width"], 3, "stem", stride=2)
    features.append(x)
    in_chs, net_stride, dilation = cfg["stem_width"], 2, 1
    for stage, (out_chs, blocks, group_size) in enumerate(zip(*stage_settings(**cfg))):
        if len(features) == depth + 1:
            break
        if net_stride >= output_stride:
            dilation, stride = dilation * 2, 1
        else:
            stride, net_stride = 2, net_stride * 2
        first_dilation = 1 if dilation in (1, 2) else 2
        for b in range(blocks):
            x = _block(net, x, f"s{stage + 1}.b{b + 1}", in_chs, out_chs, stride if b == 0 else 1, (first_dilation, dilation),
                       group_size, cfg)
            in_chs, first_dilation = out_chs, dilation
        features.append(x)
    return features


def feature_info(params):
    """timm's ``feature_info``: channels and reductions of the stem and the four stages."""
    return [params["stem_width"]] + stage_settings(**params)[0], [2, 4, 8, 16, 32]


register_timm_models("regnet", REGNET_MODELS, build_timm_regnet, feature_info)
