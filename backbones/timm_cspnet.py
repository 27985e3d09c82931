"""timm's CSPNet module (``timm.models.cspnet``) as ``tu-`` encoders: every model it registers (23 in timm
1.0.31: CSPResNet(X)t, CSPDarkNet, DarkNet, CS3DarkNet / -Focus / -SE / -EdgeNet), built from
``timm_configs.cspnet`` (timm's ``CspModelCfg`` of each model, generated once).

One builder covers what those configs vary: the stem (one or more convs, 6x6 "focus" conv, max-pool),
stages of three kinds (``csp``: CrossStage, blocks on one half of the expanded map and a transition conv
on each path; ``cs3``: CrossStage3, one transition; ``dark``: DarkStage, no split), blocks of three kinds
(``bottle``: 1x1-3x3-1x1 with activation after the residual add; ``dark``: 1x1-3x3; ``edge``: 3x3-1x1),
grouped / depthwise 3x3s, SE attention with the model's activation, avg-pool downsampling, linear
expansion (``cross_linear``) and ``down_growth``, leaky ReLU / SiLU. ``output_stride`` 8 / 16 dilates as
timm's ``create_csp_stages`` does. Feature taps are timm's ``feature_info``: the map before each stride-2
step and the last stage; DarkNets tap their stride-1 stem (SMP's VGG style: six features, no input).
Layers are the features_only model's module paths (``model.stem_conv1``, ``model.stages_0``, timm's
flattened Sequentials; timm's checkpoints, keyed by the full model, are renamed to them when loaded); like
it, nothing past ``depth`` is built. timm's configs set no ``aa_layer`` and only BatchNorm (the generator
asserts both).
"""

import math

import keras

from backbones.layers import activation, avg_pool, batch_norm, channels, concat_channels, conv2d, layer_name, max_pool
from backbones.layers import split_channels, squeeze_excite, torch_conv_init
from backbones.timm_configs.cspnet import CSPNET_MODELS
from backbones.timm_efficientnet import make_divisible
from backbones.timm_universal import feature_style, register_timm_models


class _Net:
    """The settings of one model while its layers are built."""

    def __init__(self, data_format, act):
        self.data_format, self.act = data_format, act

    def conv_norm_act(self, x, filters, kernel_size, path, stride=1, dilation=1, groups=1, padding=None, apply_act=True):
        """timm's ``ConvNormAct`` at ``path`` (``<path>.conv``, ``<path>.bn``; symmetric padding by default)."""
        if padding is None:
            padding = ((stride - 1) + dilation * (kernel_size - 1)) // 2
        name = layer_name("model", path.replace(".", "-"))
        x = conv2d(x, filters, kernel_size, f"{name}-conv", data_format=self.data_format, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, use_bias=False, kernel_initializer=torch_conv_init())
        x = batch_norm(x, f"{name}-bn", data_format=self.data_format)
        return activation(x, self.act) if apply_act else x

    def attention(self, x, path, attn, chs):
        """timm's ``SEModule(chs, act_layer=<the model's>)`` at ``path`` (fc1 / fc2), or nothing."""
        if attn is None:
            return x
        rd = make_divisible(chs * attn.get("rd_ratio", 1 / 16), attn.get("rd_divisor", 8), round_limit=0.0)
        name = layer_name("model", path.replace(".", "-"))
        return squeeze_excite(x, rd, f"{name}-fc1", f"{name}-fc2", data_format=self.data_format, act=self.act,
                              kernel_initializer=torch_conv_init())


def _block(net, x, kind, path, out_chs, dilation, bottle_ratio, groups, attn):
    """BottleneckBlock / DarkBlock / EdgeBlock: the residual branch plus the block's input."""
    mid = int(round(out_chs * bottle_ratio))
    if kind == "bottle":
        y = net.conv_norm_act(x, mid, 1, f"{path}.conv1")
        y = net.conv_norm_act(y, mid, 3, f"{path}.conv2", dilation=dilation, groups=groups)
        y = net.attention(y, f"{path}.attn2", attn, mid)
        y = net.conv_norm_act(y, out_chs, 1, f"{path}.conv3", apply_act=False)
        return activation(keras.layers.Add()([y, x]), net.act)
    if kind == "dark":
        y = net.attention(net.conv_norm_act(x, mid, 1, f"{path}.conv1"), f"{path}.attn", attn, mid)
        y = net.conv_norm_act(y, out_chs, 3, f"{path}.conv2", dilation=dilation, groups=groups)
    else:  # edge
        y = net.conv_norm_act(x, mid, 3, f"{path}.conv1", dilation=dilation, groups=groups)
        y = net.conv_norm_act(net.attention(y, f"{path}.attn", attn, mid), out_chs, 1, f"{path}.conv2")
    return keras.layers.Add()([y, x])


def _stage(net, x, path, s, stride, dilation, first_dilation):
    """CrossStage (``csp``), CrossStage3 (``cs3``) or DarkStage (``dark``) with settings ``s`` of one stage."""
    out_chs, groups, kind = s["out_chs"], s["groups"], s["stage_type"]
    if kind == "dark" or stride != 1 or first_dilation != dilation:
        if s["avg_down"]:
            if stride == 2:
                x = avg_pool(x, 2, 2, data_format=net.data_format)
            x = net.conv_norm_act(x, out_chs, 1, f"{path}.conv_down.1", groups=groups)
        else:
            down = out_chs if kind == "dark" or s["down_growth"] else channels(x, net.data_format)
            x = net.conv_norm_act(x, down, 3, f"{path}.conv_down", stride, first_dilation, groups)

    def blocks(y):
        for i in range(s["depth"]):
            y = _block(net, y, s["block_type"], f"{path}.blocks.{i}", int(round(out_chs * s["block_ratio"])), dilation,
                       s["bottle_ratio"], groups, s["attn"])
        return y

    if kind == "dark":
        return blocks(x)
    exp = int(round(out_chs * s["expand_ratio"]))
    x = net.conv_norm_act(x, exp, 1, f"{path}.conv_exp", apply_act=not s["cross_linear"])
    first, second = split_channels(x, [exp // 2, exp // 2], data_format=net.data_format)
    if kind == "csp":  # blocks on the second half, each path closed by a transition conv
        second = net.conv_norm_act(blocks(second), exp // 2, 1, f"{path}.conv_transition_b")
    else:  # cs3: blocks on the first half
        first = blocks(first)
    return net.conv_norm_act(concat_channels([first, second], data_format=net.data_format), out_chs, 1,
                             f"{path}.conv_transition")


def _stem_strides(stem):
    """timm's ``create_csp_stem`` conv strides: the first conv strided, the last too for a stride-4 stem without pool."""
    chs, stride, last = stem["out_chs"], stem["stride"], len(stem["out_chs"]) - 1
    return [2 if (i == 0 and stride > 1) or (i == last and stride > 2 and not stem["pool"]) else 1 for i in range(len(chs))]


def _stage_settings(stages):
    """One dict per stage from the table's per-stage lists (attention as ``{rd_ratio ...}`` or None)."""
    out = []
    for i in range(len(stages["depth"])):
        s = {k: v[i] for k, v in stages.items()}
        s["attn"] = None if s.pop("attn_layer") is None else dict(s["attn_kwargs"] or {})
        out.append(s)
    return out


def taps(stem, stages):
    """timm's ``feature_info`` (output_stride 32): ``[(module, channels, reduction)]``, the map before each
    stride-2 step (stem conv, stem pool, stage) and the last stage."""
    found, prev, reduction = [], None, 1
    for i, (chs, stride) in enumerate(zip(stem["out_chs"], _stem_strides(stem))):
        if stride > 1 and prev:
            found.append(prev)
        reduction *= stride
        prev = (f"stem_conv{i + 1}", chs, reduction)
    if stem["pool"]:
        found.append(prev)
        reduction *= 2
        prev = ("stem_pool", prev[1], reduction)
    for i, (chs, stride) in enumerate(zip(stages["out_chs"], stages["stride"])):
        if stride != 1:
            found.append(prev)
        reduction *= stride
        prev = (f"stages_{i}", chs, reduction)
    return found + [prev]


def build_timm_cspnet(x, *, depth, output_stride, data_format, stem, stages, act_layer):
    """SMP's features: [x, taps ...] (traditional) or the first ``depth + 1`` taps (VGG style)."""
    plan = taps(stem, stages)
    vgg = feature_style([r for _, _, r in plan]) == "vgg"
    wanted = [m for m, _, _ in plan[: depth + 1 if vgg else depth]]
    net, features = _Net(data_format, act_layer), [] if vgg else [x]

    def done(module, y):
        if module in wanted:
            features.append(y)
        return len(features) == len(wanted) + (0 if vgg else 1)

    for i, (chs, stride) in enumerate(zip(stem["out_chs"], _stem_strides(stem))):
        padding = stem["padding"] if i == 0 and stem["padding"] != "" else None
        x = net.conv_norm_act(x, chs, stem["kernel_size"], f"stem_conv{i + 1}", stride, padding=padding)
        if done(f"stem_conv{i + 1}", x):
            return features
    if stem["pool"]:
        x = max_pool(x, 3, 2, 1, data_format=data_format)
        if done("stem_pool", x):
            return features
    net_stride, dilation = math.prod(_stem_strides(stem)) * (2 if stem["pool"] else 1), 1
    for i, s in enumerate(_stage_settings(stages)):
        stride = s["stride"]
        if net_stride >= output_stride and stride > 1:
            dilation, stride = dilation * stride, 1
        net_stride *= stride
        x = _stage(net, x, f"stages_{i}", s, stride, dilation, 1 if dilation in (1, 2) else 2)
        if done(f"stages_{i}", x):
            return features
    return features


def feature_info(params):
    """timm's ``feature_info``: channels and reductions of every tap of the full model."""
    plan = taps(params["stem"], params["stages"])
    return [c for _, c, _ in plan], [r for _, _, r in plan]


register_timm_models("cspnet", CSPNET_MODELS, build_timm_cspnet, feature_info, flattened=("stem", "stages"))
