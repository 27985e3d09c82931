"""timm's ResNet module (``timm.models.resnet``) as ``tu-`` encoders: every model it registers (81 in
timm 1.0.31), built from ``timm_configs.resnet`` (timm's constructor arguments, generated once).

One builder covers what those models vary: BasicBlock / Bottleneck per stage (cardinality, base width,
``block_reduce_first``; other timm modules' ResNets add their block classes with ``register_block``), stems ('' 7x7, 'deep' / 'deep_tiered' three 3x3 convs, ``replace_stem_pool``),
shortcuts (1x1 or ``down_kernel_size`` conv, or ``avg_down``: 2x2 average pool then 1x1 conv), attention
after the last norm of a block (SE with timm's rounding, ECA), anti-aliasing (``aa``: 2x2 average pool or
BlurPool after the strided conv, which then runs at stride 1), GroupNorm instead of BatchNorm, and a
pruned model's own conv widths. ``output_stride`` 8 / 16 dilates as timm's ``make_blocks`` does (stride 1,
the dilation multiplied; a block's first conv keeps the previous dilation). Layers are timm's module
paths under SMP's ``model.``; like timm's features_only model, nothing past ``depth`` is built.
"""

import math
import sys
from typing import Callable, NamedTuple

import keras

from backbones.layers import batch_norm, conv2d, group_norm, layer_name, max_pool, relu, squeeze_excite, torch_conv_init
from backbones.layers.attention import efficient_channel_attention
from backbones.layers.pooling import avg_pool_ceil, blur_pool
from backbones.layers.padding import pad
from backbones.timm_configs.resnet import RESNET_MODELS
from backbones.timm_efficientnet import make_divisible
from backbones.timm_universal import register_timm_models

GROUP_NORM_GROUPS = 32  # timm's GroupNorm default (resnet50_gn)


class _Net:
    """The settings of one model while its layers are built (timm's ResNet constructor arguments)."""

    def __init__(self, data_format, norm, aa, attn, widths):
        self.data_format, self.norm_kind, self.aa, self.attn, self.widths = data_format, norm, aa, attn, widths or {}

    def conv(self, x, filters, kernel_size, path, stride=1, padding=0, dilation=1, groups=1):
        """A bias-free conv at timm path ``path`` (a pruned model's own width), kaiming fan_out as timm inits."""
        filters = self.widths.get(path, filters)
        return conv2d(x, filters, kernel_size, layer_name("model", path.replace(".", "-")), data_format=self.data_format,
                      stride=stride, padding=padding, dilation=dilation, groups=groups, use_bias=False,
                      kernel_initializer=torch_conv_init())

    def norm(self, x, path):
        name = layer_name("model", path.replace(".", "-"))
        if self.norm_kind == "groupnorm":
            return group_norm(x, GROUP_NORM_GROUPS, name, data_format=self.data_format)
        return batch_norm(x, name, data_format=self.data_format)

    def anti_alias(self, x, stride):
        """timm's ``create_aa(aa_layer, stride=stride)``: AvgPool2d(stride) or BlurPool2d(stride)."""
        if self.aa == "avg":
            return x if stride == 1 else avg_pool_ceil(x, stride, stride, data_format=self.data_format)
        return blur_pool(x, stride, data_format=self.data_format)

    def attention(self, x, path, channels):
        """The block's ``se`` module (timm's ``create_attn(attn_layer, outplanes)``)."""
        if self.attn is None:
            return x
        kind = self.attn["kind"]
        name = layer_name("model", path.replace(".", "-"))
        if kind == "eca":
            from backbones.layers.attention import eca_kernel_size

            return efficient_channel_attention(x, f"{name}-conv", data_format=self.data_format, kernel_size=eca_kernel_size(channels))
        rd = make_divisible(channels * self.attn.get("rd_ratio", 1 / 16), self.attn.get("rd_divisor", 8), round_limit=0.0)
        return squeeze_excite(x, rd, f"{name}-fc1", f"{name}-fc2", data_format=self.data_format,
                              kernel_initializer=torch_conv_init())


def _stem(net, x, stem_type, stem_width):
    """conv1 (7x7/2, or three 3x3 convs for 'deep' / 'deep_tiered'), bn1, act1; returns (x, channels)."""
    if "deep" in stem_type:
        chs = (3 * (stem_width // 4), stem_width) if "tiered" in stem_type else (stem_width, stem_width)
        x = relu(net.norm(net.conv(x, chs[0], 3, "conv1.0", 2, 1), "conv1.1"))
        x = relu(net.norm(net.conv(x, chs[1], 3, "conv1.3", 1, 1), "conv1.4"))
        inplanes = stem_width * 2
        x = net.conv(x, inplanes, 3, "conv1.6", 1, 1)
    else:
        inplanes = 64
        x = net.conv(x, inplanes, 7, "conv1", 2, 3)
    x = relu(net.norm(x, "bn1"))
    return x, net.widths.get("conv1.6" if "deep" in stem_type else "conv1", inplanes)


def _stem_pool(net, x, inplanes, replace_stem_pool):
    """timm's ``maxpool``: a 3x3/2 max-pool, a strided conv block, or their anti-aliased forms."""
    if replace_stem_pool:
        x = net.conv(x, inplanes, 3, "maxpool.0", 1 if net.aa else 2, 1)
        if net.aa:
            x = net.anti_alias(x, 2)
        return relu(net.norm(x, "maxpool.2" if net.aa else "maxpool.1"))
    if net.aa == "avg":
        return avg_pool_ceil(x, 2, 2, data_format=net.data_format)  # timm: nn.AvgPool2d(2)
    if net.aa == "blur":
        return net.anti_alias(max_pool(x, 3, 1, 1, data_format=net.data_format, nonnegative=True), 2)
    return max_pool(x, 3, 2, 1, data_format=net.data_format, nonnegative=True)


def _downsample(net, x, path, filters, kernel_size, stride, dilation, first_dilation, avg_down):
    """timm's ``downsample_avg`` / ``downsample_conv`` at ``<block>.downsample``."""
    if avg_down:
        if stride != 1 or dilation != 1:
            if stride == 1 or dilation > 1:  # AvgPool2dSame(2, 1): zero pad bottom / right, zeros counted
                x = keras.layers.AveragePooling2D(2, 1, "valid", data_format=net.data_format)(
                    pad(x, ((0, 1), (0, 1)), net.data_format)
                )
            else:
                x = avg_pool_ceil(x, 2, stride, data_format=net.data_format)
        return net.norm(net.conv(x, filters, 1, f"{path}.1"), f"{path}.2")
    kernel_size = 1 if stride == 1 and dilation == 1 else kernel_size
    first_dilation = first_dilation if kernel_size > 1 else 1
    padding = ((stride - 1) + first_dilation * (kernel_size - 1)) // 2
    x = net.conv(x, filters, kernel_size, f"{path}.0", stride, padding, first_dilation)
    return net.norm(x, f"{path}.1")


def _aa_stride(net, stride, dilation, first_dilation):
    """(conv stride, anti-aliasing or not): the strided conv runs at stride 1 before timm's aa layer."""
    use_aa = net.aa is not None and (stride == 2 or first_dilation != dilation)
    return (1 if use_aa else stride), use_aa


def _basic(net, x, path, planes, stride, dilation, first_dilation, *, reduce_first, **_):
    conv_stride, use_aa = _aa_stride(net, stride, dilation, first_dilation)
    out = relu(net.norm(net.conv(x, planes // reduce_first, 3, f"{path}.conv1", conv_stride, first_dilation, first_dilation), f"{path}.bn1"))
    if use_aa:
        out = net.anti_alias(out, stride)
    return net.norm(net.conv(out, planes, 3, f"{path}.conv2", 1, dilation, dilation), f"{path}.bn2")


def _bottleneck(net, x, path, planes, stride, dilation, first_dilation, *, cardinality, base_width, reduce_first, **_):
    conv_stride, use_aa = _aa_stride(net, stride, dilation, first_dilation)
    width = int(math.floor(planes * (base_width / 64)) * cardinality)
    out = relu(net.norm(net.conv(x, width // reduce_first, 1, f"{path}.conv1"), f"{path}.bn1"))
    out = net.conv(out, width, 3, f"{path}.conv2", conv_stride, first_dilation, first_dilation, cardinality)
    out = relu(net.norm(out, f"{path}.bn2"))
    if use_aa:
        out = net.anti_alias(out, stride)
    return net.norm(net.conv(out, planes * 4, 1, f"{path}.conv3"), f"{path}.bn3")


class BlockKind(NamedTuple):
    """A timm block class of ResNet's stages: its expansion, its residual branch (``branch(net, x, path,
    planes, stride, dilation, first_dilation, *, downsample, cardinality, base_width, reduce_first,
    **block_args)``, up to the last norm) and the path of its last conv (a pruned model's feature width)."""

    expansion: int
    branch: Callable
    last_conv: str = "conv3"


# block kind -> BlockKind; timm's res2net / resnest modules add theirs (register_block).
BLOCKS = {"basic": BlockKind(1, _basic, "conv2"), "bottleneck": BlockKind(4, _bottleneck)}


def register_block(kind, expansion, branch, last_conv="conv3"):
    """Another block class for ``build_timm_resnet``'s stages (``blocks`` entries ``kind``)."""
    BLOCKS[kind] = BlockKind(expansion, branch, last_conv)


def _block(net, x, kind, path, planes, stride, dilation, first_dilation, shortcut, block_kwargs):
    """One block: its kind's residual branch, attention after its last norm, the residual, ReLU."""
    out = BLOCKS[kind].branch(net, x, path, planes, stride, dilation, first_dilation, downsample=shortcut is not None,
                              **block_kwargs)
    out = net.attention(out, f"{path}.se", planes * BLOCKS[kind].expansion)
    return relu(keras.layers.Add()([out, x if shortcut is None else shortcut]))


def _allow_deep_graph(blocks):
    """Keras maps a functional graph recursively, a Python frame per layer on the longest path (about 25 per
    block here): resnetrs420's 139 blocks need more than Python's default recursion limit of 1000."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 40 * blocks + 2000))


def build_timm_resnet(x, *, depth, output_stride, data_format, blocks, layers, channels, cardinality, base_width,
                      stem_width, stem_type, replace_stem_pool, block_reduce_first, down_kernel_size, avg_down,
                      norm, aa, attn, widths=None, block_args=None):
    """[x, act1 (stride 2), layer1 (4), layer2 (8), layer3 (16), layer4 (32)] up to ``depth``."""
    _allow_deep_graph(sum(layers))
    net = _Net(data_format, norm, aa, attn, widths)
    block_kwargs = dict(cardinality=cardinality, base_width=base_width, reduce_first=block_reduce_first, **(block_args or {}))
    features = [x]
    x, inplanes = _stem(net, x, stem_type, stem_width)
    features.append(x)
    if depth == 1:
        return features
    x = _stem_pool(net, x, inplanes, replace_stem_pool)
    net_stride, dilation, prev_dilation = 4, 1, 1
    for stage, (kind, planes, repeats) in enumerate(zip(blocks, channels, layers)):
        stride = 1 if stage == 0 else 2
        if net_stride >= output_stride:
            dilation, stride = dilation * stride, 1
        else:
            net_stride *= stride
        outplanes = planes * BLOCKS[kind].expansion
        for b in range(repeats):
            path = f"layer{stage + 1}.{b}"
            shortcut = None
            if b == 0 and (stride != 1 or inplanes != outplanes):
                shortcut = _downsample(net, x, f"{path}.downsample", outplanes, down_kernel_size, stride, dilation,
                                       prev_dilation, avg_down)
            x = _block(net, x, kind, path, planes, stride if b == 0 else 1, dilation, prev_dilation, shortcut, block_kwargs)
            prev_dilation, inplanes = dilation, outplanes
        features.append(x)
        if len(features) == depth + 1:
            break
    return features


def feature_info(params):
    """timm's ``feature_info``: channels and reductions of act1 and the four stages."""
    widths = params.get("widths") or {}
    stem = widths.get("conv1.6" if "deep" in params["stem_type"] else "conv1", params["stem_width"] * 2 if "deep" in params["stem_type"] else 64)
    channels = [stem]
    for stage, (kind, planes, repeats) in enumerate(zip(params["blocks"], params["channels"], params["layers"])):
        last = f"layer{stage + 1}.{repeats - 1}.{BLOCKS[kind].last_conv}"
        channels.append(widths.get(last, planes * BLOCKS[kind].expansion))
    return channels, [2, 4, 8, 16, 32]


register_timm_models("resnet", RESNET_MODELS, build_timm_resnet, feature_info)
