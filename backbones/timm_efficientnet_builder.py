"""timm's EfficientNet builder (``timm.models._efficientnet_builder`` / ``_efficientnet_blocks``) in Keras:
decoded block arguments in, the features of timm's ``EfficientNetFeatures`` out. timm's efficientnet and
mobilenetv3 modules (registered here and in ``backbones.timm_mobilenetv3``) and SMP's own
``timm-efficientnet-*`` encoders (``backbones.timm_efficientnet``) build their blocks here.

``plan`` is the builder's bookkeeping (stride -> dilation past ``output_stride``, channel rounding,
space-to-depth, SE widths, where features are taken); ``block`` builds one of timm's blocks: ``ds`` / ``dsa``
(DepthwiseSeparableConv), ``ir`` (InvertedResidual; CondConvResidual with ``num_experts``: the kit's CondConv2D), ``er`` (EdgeResidual), ``cn`` (ConvBnAct), with
MixedConv2d kernels (a list of kernel sizes: channels split across them), grouped convs (``group_size``),
squeeze-excite (timm's ``SqueezeExcite``), anti-aliasing (``blurpc``, ``avg``), TF "SAME" padding (``pad_type='same'``)
and BatchNorm / GroupNorm / LayerNorm / EvoNorm-S0; MobileNetV4's ``uir`` (UniversalInvertedResidual) and ``mqa``
(multi-query MobileAttention) block bodies live in ``backbones.timm_mobilenetv4_blocks``. Layer names are timm's module paths under ``prefix``.
"""

import dataclasses
from typing import Optional

import keras

from backbones.layers import (
    activation, batch_norm, channels, concat_channels, conv2d, drop_path, group_norm, layer_name, layer_norm_2d,
    split_channels, squeeze_excite, torch_conv_init,
)
from backbones.layers.padding import TF_SAME

# timm's SqueezeExcite as EfficientNet builds it: rounded reduced width, the block's activation, sigmoid gate,
# se_ratio relative to the block input (``se_from_exp=False``). A table's ``se_args`` override these (MobileNetV3:
# hard_sigmoid gate, ReLU, round_channels widths, from the expanded channels).
DEFAULT_SE = dict(gate="sigmoid", force_act=None, rd_round="round", from_exp=False)


# The conv that ends each block type (its output channels are the block's).
OUT_CONV = {"ds": "conv_pw", "dsa": "conv_pw", "ir": "conv_pwl", "er": "conv_pwl", "cn": "conv",
            "uir": "pw_proj.conv", "mqa": "attn.output.proj"}  # uir / mqa: MobileNetV4 (backbones.timm_mobilenetv4_blocks)


def make_divisible(value, divisor=8, min_value=None, round_limit=0.9):
    """timm's ``make_divisible``: the nearest multiple of ``divisor`` (at least ``min_value``), at most 10% below."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def round_channels(value, multiplier=1.0, divisor=8, channel_min=None, round_limit=0.9):
    """timm's ``round_channels`` (width scaling; multiplier 0 / None keeps the value)."""
    return make_divisible(value * multiplier, divisor, channel_min, round_limit) if multiplier else value


def num_groups(group_size, chs):
    """timm's ``num_groups``: 1 for a plain conv (group_size 0 / None), else ``chs // group_size``."""
    return chs // group_size if group_size else 1


@dataclasses.dataclass
class Block:
    """One block as timm's ``EfficientNetBuilder._make_block`` resolves it."""

    kind: str  # "ds", "dsa", "ir", "er", "cn", "uir", "mqa"
    path: str  # timm module path, e.g. "blocks.1.0"
    in_chs: int
    out_chs: int
    stride: int
    dilation: int
    act: str
    kernel: object = 3  # dw kernel (ds / ir / mqa), exp kernel (er), conv kernel (cn), dw_mid kernel (uir): an int or a MixedConv list
    exp_kernel: object = 1
    pw_kernel: object = 1
    exp_ratio: float = 1.0
    force_in_chs: int = 0
    group_size: Optional[int] = 1  # ds / ir: depthwise; er / cn: 0 (a plain conv)
    se_ratio: float = 0.0  # already relative to the SE's input channels
    skip: bool = False
    pw_act: bool = False
    s2d: int = 0
    drop_path_rate: float = 0.0
    options: dict = dataclasses.field(default_factory=dict)  # uir / mqa: timm_mobilenetv4_blocks.OPTIONS
    num_experts: int = 0  # ir: CondConvResidual (its convs CondConv2d with this many experts)


def _block_defaults(kind):
    return {"ir": 1, "ds": 1, "dsa": 1, "er": 0, "cn": 0, "uir": 1, "mqa": 1, "mha": 1}[kind]


def plan(arch, stem_chs, *, round_chs, act, output_stride=32, se=None, drop_path_rate=0.0):
    """timm's ``EfficientNetBuilder.__call__`` over decoded ``arch`` (stages of ``[repeats, block args]`` runs).

    Returns ``(stages, features)``: the ``Block``s of every stage, and timm's ``feature_info`` as
    ``(stage, block index or None for the stem's bn1, channels, reduction)``.
    """
    se = {**DEFAULT_SE, **(se or {})}
    stage_args = [[dict(args) for repeats, args in runs for _ in range(repeats)] for runs in arch]
    total = sum(len(s) for s in stage_args)
    in_chs, index, current_stride, current_dilation, space2depth = stem_chs, 0, 2, 1, 0
    features, stages = [], []
    first = stage_args[0][0]
    if first["stride"] > 1 or first.get("s2d", False):
        features.append((0, None, stem_chs, current_stride))
    for stage, args_list in enumerate(stage_args):
        blocks = []
        for b, args in enumerate(args_list):
            last_block = b + 1 == len(args_list)
            stride = args["stride"] if b == 0 else 1
            exp_ratio = args.get("exp_ratio", 1.0)
            s2d = 0
            if not space2depth and args.get("s2d", False):
                space2depth, current_stride = 1, current_stride * 2
            if space2depth > 0:
                if space2depth == 2 and stride == 2:
                    stride, exp_ratio, space2depth = 1, exp_ratio / 4, 0
                else:
                    s2d = space2depth
            extract = False
            if last_block:
                nxt = stage + 1
                extract = nxt >= len(stage_args) or (stage_args[nxt][0]["stride"] > 1 and not space2depth)
            next_dilation = current_dilation
            if stride > 1:
                if current_stride * stride > output_stride:
                    next_dilation, stride = current_dilation * stride, 1
                else:
                    current_stride *= stride
            dilation, current_dilation = current_dilation, next_dilation
            kind = args["block_type"]
            out_chs = round_channels(args["out_chs"], **round_chs) * (4 if s2d else 1)
            se_ratio = args.get("se_ratio", 0.0)
            if se_ratio and not se["from_exp"]:
                se_ratio /= exp_ratio if kind in ("ir", "er") else 1.0
            if se_ratio and s2d == 1:
                se_ratio /= 4
            kernel = args.get("kernel_size") if kind == "cn" else args.get("exp_kernel_size" if kind == "er" else "dw_kernel_size")
            if kind == "uir":
                kernel = args.get("dw_kernel_size_mid")
            noskip = args.get("noskip", False) or kind == "dsa"
            if args.get("num_experts") and kind != "ir":
                raise NotImplementedError(f"CondConv (num_experts) in a {kind!r} block: timm builds it only in 'ir'.")
            block = Block(
                kind=kind, path=f"blocks.{stage}.{b}", in_chs=in_chs, out_chs=out_chs, stride=stride, dilation=dilation,
                act=args.get("act_layer") or act, kernel=kernel,
                exp_kernel=args.get("exp_kernel_size", 1) if kind == "ir" else 1,
                pw_kernel=args.get("pw_kernel_size", 1), exp_ratio=exp_ratio,
                force_in_chs=round_channels(args["force_in_chs"], **round_chs) if args.get("force_in_chs") else 0,
                group_size=args.get("group_size", _block_defaults(kind)), se_ratio=se_ratio,
                skip=args.get("skip", False) if kind == "cn" else not noskip, pw_act=kind == "dsa", s2d=s2d,
                drop_path_rate=drop_path_rate * index / total, options=_mnv4_options(kind, args), num_experts=args.get("num_experts", 0),
            )
            blocks.append(block)
            if space2depth == 1:
                space2depth = 2
            if extract:
                features.append((stage + 1, b, out_chs, current_stride))
            in_chs, index = out_chs, index + 1
        stages.append(blocks)
    return stages, features


def _mnv4_options(kind, args):
    from backbones.timm_mobilenetv4_blocks import OPTIONS

    return {k: args[k] for k in OPTIONS.get(kind, ()) if k in args}


@keras.saving.register_keras_serializable(package="keras_seg")
class EvoNormS0(keras.layers.Layer):
    """timm's ``EvoNorm2dS0(C, group_size=...)``: ``x * sigmoid(v x) / group_std(x)`` (``apply_act``), then
    ``* weight + bias``; group_std is the biased std over each group's channels and pixels, plus ``eps``."""

    def __init__(self, groups, eps=1e-5, apply_act=True, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.groups, self.eps, self.apply_act, self.data_format = int(groups), float(eps), bool(apply_act), data_format

    def build(self, input_shape):
        c = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        self.weight = self.add_weight(shape=(c,), initializer="ones", name="weight")
        self.bias = self.add_weight(shape=(c,), initializer="zeros", name="bias")
        self.v = self.add_weight(shape=(c,), initializer="ones", name="v") if self.apply_act else None

    def call(self, x):
        from keras import ops

        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        if self.apply_act:
            shape = ops.shape(x)
            grouped = ops.reshape(x, (shape[0], -1, self.groups, x.shape[-1] // self.groups))
            mean = ops.mean(grouped, axis=(1, 3), keepdims=True)
            std = ops.sqrt(ops.mean(ops.square(grouped - mean), axis=(1, 3), keepdims=True) + self.eps)
            std = ops.reshape(ops.broadcast_to(std, ops.shape(grouped)), shape)
            x = x * ops.sigmoid(x * self.v) / std
        x = x * self.weight + self.bias
        return ops.transpose(x, (0, 3, 1, 2)) if self.data_format == "channels_first" else x

    def smp_params(self, prefix):
        from backbones.layers.norm import torch_params

        return torch_params(prefix, weight=self.weight, bias=self.bias, **({"v": self.v} if self.apply_act else {}))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "eps": self.eps, "apply_act": self.apply_act,
                "data_format": self.data_format}


class Net:
    """One model's settings while its layers are built (timm's EfficientNet constructor arguments)."""

    def __init__(self, data_format, *, prefix="model", pad_type="", norm=None, aa=None, se=None, widths=None, se_layer=None,
                 layer_scale=None):
        self.data_format, self.prefix, self.pad_type = data_format, prefix, pad_type
        self.layer_scale = layer_scale  # MobileNetV4 hybrids' layer_scale_init_value (uir / mqa LayerScale2d)
        self.norm_args = norm or {"kind": "batchnorm", "eps": 1e-5}
        self.aa, self.se, self.widths = aa, {**DEFAULT_SE, **(se or {})}, widths or {}
        self.se_layer = se_layer

    def name(self, path):
        return layer_name(self.prefix, path.replace(".", "-"))

    def padding(self, kernel, stride, dilation, pad_type=None):
        """timm's ``get_padding_value``: symmetric ``((s - 1) + d (k - 1)) // 2``; for 'same', TF "SAME"
        computed at run time unless it is static (stride 1, even total)."""
        pad_type = self.pad_type if pad_type is None else pad_type
        if pad_type == "same" and not (stride == 1 and (dilation * (kernel - 1)) % 2 == 0):
            return TF_SAME
        return ((stride - 1) + dilation * (kernel - 1)) // 2

    def conv(self, x, filters, kernel, path, stride=1, dilation=1, groups=1, depthwise=False, pad_type=None):
        """timm's ``create_conv2d`` (bias-free): a conv, or a MixedConv2d for a list of kernels (channels split
        over them, the first split taking the remainder, convs ``<path>.<i>``); a pruned model's own widths."""
        if isinstance(kernel, list):
            n = len(kernel)
            in_chs = channels(x, self.data_format)
            splits = [in_chs // n] * n
            splits[0] += in_chs - sum(splits)
            outs = [filters // n] * n
            outs[0] += filters - sum(outs)
            parts = split_channels(x, splits, data_format=self.data_format) if n > 1 else [x]
            parts = [self.conv(p, o, k, f"{path}.{i}", stride, dilation, depthwise=depthwise, pad_type=pad_type)
                     for i, (p, o, k) in enumerate(zip(parts, outs, kernel))]
            return concat_channels(parts, data_format=self.data_format) if n > 1 else parts[0]
        filters = self.widths.get(path, filters)
        if depthwise:
            groups = channels(x, self.data_format)
        padding = self.padding(kernel, stride, dilation, pad_type)
        return conv2d(x, filters, kernel, self.name(path), data_format=self.data_format, stride=stride, padding=padding,
                      dilation=dilation if kernel > 1 else 1, groups=groups, use_bias=False,
                      kernel_initializer=torch_conv_init())

    def norm_act(self, x, path, act=None):
        """timm's norm + activation layer (BatchNormAct2d, GroupNormAct, LayerNormAct2d) at ``path``."""
        kind, eps, name = self.norm_args["kind"], self.norm_args["eps"], self.name(path)
        if kind == "batchnorm":
            x = batch_norm(x, name, data_format=self.data_format, eps=eps)
        elif kind == "groupnorm":
            chs = channels(x, self.data_format)
            groups = chs // self.norm_args["group_size"] if self.norm_args.get("group_size") else self.norm_args.get("num_groups", 32)
            x = group_norm(x, groups, name, data_format=self.data_format, eps=eps)
        elif kind == "layernorm":
            x = layer_norm_2d(x, name, self.data_format, eps=eps)
        elif kind == "evonorm_s0":  # its own non-linearity where an activation is asked for, none otherwise
            chs = channels(x, self.data_format)
            return EvoNormS0(chs // self.norm_args["group_size"], eps, act is not None, self.data_format, name=name)(x)
        else:
            raise NotImplementedError(f"norm layer {kind!r} is not ported")
        return activation(x, act)

    def conv_norm_act(self, x, filters, kernel, conv_path, norm_path, act, **conv_kwargs):
        return self.norm_act(self.conv(x, filters, kernel, conv_path, **conv_kwargs), norm_path, act)

    def anti_alias(self, x, stride):
        """timm's ``create_aa('blurpc', stride)``: BlurPool2d with zero padding; ``'avg'``: nn.AvgPool2d(stride)."""
        from backbones.layers.pooling import avg_pool, blur_pool

        if self.aa == "avg":
            return avg_pool(x, stride, stride, data_format=self.data_format)
        return blur_pool(x, stride, data_format=self.data_format, pad_mode="constant")

    def squeeze_excite(self, x, path, se_ratio, act):
        """timm's SqueezeExcite: ``rd_round_fn(chs * rd_ratio)`` reduced channels (a pruned model's own); or
        timm's GlobalContext for ``se_layer='gc'`` (``make_divisible(chs * rd_ratio, 1, round_limit=0)``)."""
        chs = channels(x, self.data_format)
        if self.se_layer == "gc":
            from backbones.layers.attention import global_context

            return global_context(x, make_divisible(chs * se_ratio, 1, round_limit=0.0), self.name(path),
                                  data_format=self.data_format, act=act, kernel_initializer=torch_conv_init())
        rd = (round(chs * se_ratio) if self.se["rd_round"] == "round"
              else round_channels(chs * se_ratio, **self.se.get("rd_round_args", {})))
        rd = self.widths.get(f"{path}.conv_reduce", rd)
        return squeeze_excite(x, rd, self.name(f"{path}.conv_reduce"), self.name(f"{path}.conv_expand"),
                              data_format=self.data_format, act=self.se["force_act"] or act, gate=self.se["gate"],
                              kernel_initializer=torch_conv_init())


def _space_to_depth(net, x, blk):
    """The conv_s2d (2x2 / 2, TF "SAME") and bn_s2d that open a space-to-depth region; the dw kernel halves."""
    x = net.conv_norm_act(x, blk.in_chs * 4, 2, f"{blk.path}.conv_s2d", f"{blk.path}.bn_s2d", blk.act, stride=2,
                          pad_type="same")
    kernel = (blk.kernel + 1) // 2
    return x, kernel, "same" if kernel == 2 else None


def _depthwise(net, x, blk, chs, kernel, stride, pad_type, norm):
    """A block's ``conv_dw`` (depthwise, or ``group_size`` groups; MixedConv for a kernel list) and its norm + act."""
    x = net.conv(x, chs, kernel, f"{blk.path}.conv_dw", stride, blk.dilation, num_groups(blk.group_size, chs),
                 depthwise=blk.group_size == 1, pad_type=pad_type)
    return net.norm_act(x, f"{blk.path}.{norm}", blk.act)


def _aa_se(net, x, blk, use_aa):
    """Anti-aliasing after a block's strided conv (run at stride 1), then its squeeze-excite."""
    if use_aa:
        x = net.anti_alias(x, blk.stride)
    return net.squeeze_excite(x, f"{blk.path}.se", blk.se_ratio, blk.act) if blk.se_ratio else x


def _cond_conv(net, x, routing, filters, kernel, path, num_experts, stride=1, dilation=1, groups=1):
    """timm's ``create_conv2d(..., num_experts=E)``: a bias-free CondConv2d, timm's padding (TF "SAME" for
    'same'); its init ``_init_weight_goog``'s: N(0, 2 / fan_out) per expert, fan_out ``kh * kw * out``."""
    from backbones.layers import cond_conv2d

    init = keras.initializers.RandomNormal(0.0, (2.0 / (kernel * kernel * filters)) ** 0.5)
    return cond_conv2d(x, routing, filters, kernel, net.name(path), num_experts=num_experts, data_format=net.data_format,
                       stride=stride, padding=net.padding(kernel, stride, dilation), dilation=dilation if kernel > 1 else 1,
                       groups=groups, kernel_initializer=init)


def _cond_conv_residual(net, x, blk):
    """timm's CondConvResidual: routing weights ``sigmoid(routing_fn(mean over H, W of the block input))``
    mix the experts of conv_pw / conv_dw / conv_pwl (CondConv2d); otherwise an InvertedResidual (SE, norms;
    timm's forward runs no anti-aliasing or space-to-depth here, and none of its CondConv models has them)."""
    from backbones.layers import Dense, global_avg_pool, torch_default_bias_init, torch_default_init

    if isinstance(blk.kernel, list) or blk.s2d:
        raise NotImplementedError("CondConv with MixedConv kernels or space-to-depth (timm builds neither)")
    p, e, fmt = blk.path, blk.num_experts, net.data_format
    routing = Dense(e, kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(blk.in_chs),
                    name=net.name(f"{p}.routing_fn"))(global_avg_pool(x, data_format=fmt, keepdims=False))
    routing = activation(routing, "sigmoid")
    mid = make_divisible(blk.in_chs * blk.exp_ratio)
    x = net.norm_act(_cond_conv(net, x, routing, mid, blk.exp_kernel, f"{p}.conv_pw", e), f"{p}.bn1", blk.act)
    x = _cond_conv(net, x, routing, mid, blk.kernel, f"{p}.conv_dw", e, blk.stride, blk.dilation,
                   num_groups(blk.group_size, mid))
    x = net.norm_act(x, f"{p}.bn2", blk.act)
    if blk.se_ratio:
        x = net.squeeze_excite(x, f"{p}.se", blk.se_ratio, blk.act)
    x = _cond_conv(net, x, routing, blk.out_chs, blk.pw_kernel, f"{p}.conv_pwl", e)
    return net.norm_act(x, f"{p}.bn3", None)


def block(net, x, blk):
    """One of timm's EfficientNet blocks (``blk`` from ``plan``) on ``x``."""
    p, shortcut, act = blk.path, x, blk.act
    use_aa = net.aa is not None and blk.stride > 1
    stride = 1 if use_aa else blk.stride
    in_chs, kernel, dw_pad = blk.in_chs, blk.kernel, None
    if blk.s2d == 1:
        x, kernel, dw_pad = _space_to_depth(net, x, blk)
        in_chs, use_aa, stride = in_chs * 4, False, blk.stride
    if blk.num_experts:
        x = _cond_conv_residual(net, x, blk)
    elif blk.kind in ("ds", "dsa"):
        x = _aa_se(net, _depthwise(net, x, blk, in_chs, kernel, stride, dw_pad, "bn1"), blk, use_aa)
        x = net.conv_norm_act(x, blk.out_chs, blk.pw_kernel, f"{p}.conv_pw", f"{p}.bn2", act if blk.pw_act else None)
    elif blk.kind == "ir":
        x = net.conv_norm_act(x, make_divisible(in_chs * blk.exp_ratio), blk.exp_kernel, f"{p}.conv_pw", f"{p}.bn1", act)
        x = _depthwise(net, x, blk, channels(x, net.data_format), kernel, stride, dw_pad, "bn2")
        x = net.conv_norm_act(_aa_se(net, x, blk, use_aa), blk.out_chs, blk.pw_kernel, f"{p}.conv_pwl", f"{p}.bn3", None)
    elif blk.kind == "er":
        mid = make_divisible((blk.force_in_chs or in_chs) * blk.exp_ratio)
        x = net.conv_norm_act(x, mid, kernel, f"{p}.conv_exp", f"{p}.bn1", act, stride=stride, dilation=blk.dilation,
                              groups=num_groups(blk.group_size, mid))
        x = net.conv_norm_act(_aa_se(net, x, blk, use_aa), blk.out_chs, blk.pw_kernel, f"{p}.conv_pwl", f"{p}.bn2", None)
    elif blk.kind in ("uir", "mqa", "mha"):
        from backbones.timm_mobilenetv4_blocks import mobilenetv4_block

        x = mobilenetv4_block(net, x, blk)
    elif blk.kind == "cn":
        x = net.conv_norm_act(x, blk.out_chs, kernel, f"{p}.conv", f"{p}.bn1", act, stride=stride, dilation=blk.dilation,
                              groups=num_groups(blk.group_size, in_chs))
        x = _aa_se(net, x, blk, use_aa)
    else:
        raise NotImplementedError(f"block type {blk.kind!r} is not ported")
    if blk.skip and blk.stride == 1 and blk.in_chs == blk.out_chs:
        x = keras.layers.Add()([drop_path(x, blk.drop_path_rate, name=net.name(f"{p}.drop_path")), shortcut])
    return x


def stem_channels(params):
    return params["stem_size"] if params.get("fix_stem") else round_channels(params["stem_size"], **params["round_chs"])


def model_plan(params, output_stride=32):
    """``plan`` of a table entry's ``params``."""
    return plan(params["arch"], stem_channels(params), round_chs=params["round_chs"], act=params["act"],
                output_stride=output_stride, se=params.get("se_args"))


def build_efficientnet_features(x, *, depth, output_stride, data_format, arch, stem_size, stem_kernel_size=3,
                                fix_stem=False, round_chs=None, pad_type="", act="relu", norm=None, aa=None, se=None,
                                se_args=None, widths=None, layer_scale_init_value=None):
    """timm's ``EfficientNetFeatures``: [x, the five features of its feature_info], then the last block's output
    (every block is built whatever the depth, as timm builds them)."""
    params = dict(arch=arch, stem_size=stem_size, fix_stem=fix_stem, round_chs=round_chs or {}, act=act, se_args=se_args)
    stages, features = model_plan(params, output_stride)
    net = Net(data_format, pad_type=pad_type, norm=norm, aa=aa, se=se_args, widths=widths, se_layer=se,
              layer_scale=layer_scale_init_value)
    taps = {(stage, b) for stage, b, _, _ in features}
    outputs = [x]
    x = net.conv_norm_act(x, stem_channels(params), stem_kernel_size, "conv_stem", "bn1", act, stride=2)
    if (0, None) in taps:
        outputs.append(x)
    for stage, blocks in enumerate(stages):
        for b, blk in enumerate(blocks):
            x = block(net, x, blk)
            if (stage + 1, b) in taps:
                outputs.append(x)
    del depth  # the Encoder keeps depth + 1 outputs; the rest stay dormant
    return outputs + ([] if outputs[-1] is x else [x])


def feature_info(params):
    """timm's ``feature_info`` (channels, reductions) of a table entry (a pruned model's own widths)."""
    stages, features = model_plan(params)
    widths = params.get("widths") or {}
    chs = []
    for stage, b, c, _ in features:
        last = "conv_stem" if b is None else f"{stages[stage - 1][b].path}.{OUT_CONV[stages[stage - 1][b].kind]}"
        chs.append(widths.get(last, c))
    return chs, [r for *_, r in features]



def unported(params):
    """Why timm builds a model of the table in a way not ported here (None: it is ported)."""
    if params.get("se") not in (None, "gc"):
        return f"se_layer {params['se']!r} (timm's GlobalContext attention)"
    return None


def register_efficientnet_module():
    """``tu-<name>`` for every model of timm's efficientnet module whose blocks are ported (see ``unported``)."""
    from backbones.timm_configs.efficientnet import EFFICIENTNET_MODELS
    from backbones.timm_universal import register_timm_models

    table = {n: e for n, e in EFFICIENTNET_MODELS.items() if unported(e["params"]) is None}
    register_timm_models("efficientnet", table, build_efficientnet_features, feature_info)


register_efficientnet_module()
