"""timm's ConvNeXt module (``timm.models.convnext``) as ``tu-`` encoders: every model it registers (31 in
timm 1.0.31: ConvNeXt atto ... xxlarge, the ``_ols`` / ``_rms`` / ``_hnf`` variants, ConvNeXt-V2 with GRN, timm's
test models), built from ``timm_configs.convnext`` (timm's constructor arguments, generated once).

One builder covers what those models vary: stems ('patch' k x k / k conv, 'overlap' / 'overlap_tiered' /
'overlap_act' two 3x3/2 convs), per-stage depthwise kernel sizes, the MLP as 1x1 convs on NCHW maps
(``conv_mlp``) or Linears on channels-last maps, GELU (torch's exact erf form) / tanh GELU / SiLU, the
layer-scale ``gamma`` (``ls_init_value`` None: none), ConvNeXt-V2's GlobalResponseNorm in the MLP, LayerNorm,
RmsNorm or SimpleNorm (``_rms`` models) with their eps, and bias-free convs. ``output_stride`` 8 / 16 dilates as
timm does (the stage's stride-2 downsample conv becomes a 2x2 stride-1 conv with timm's "same" padding, its
blocks' depthwise convs dilated). Layers are the module paths of timm's features_only model under SMP's
``model.`` (``stem_0``, ``stages_1.blocks.0.conv_dw``: timm flattens ``stem`` and ``stages``); as that model,
nothing past ``depth`` is built (depth 1 keeps the first stem conv only). The classifier head (and
``head_norm_first``'s ``norm_pre``) follows the last feature, so it is not part of any encoder.
"""


import keras

from backbones.layers import activation, conv2d, depthwise_conv2d, layer_name, layer_norm, layer_norm_2d, linear
from backbones.layers import move_channels_back, move_channels_last, trunc_normal_init
from backbones.layers.channel_ops import channel_scale
from backbones.layers.norm import RmsNorm, global_response_norm, rms_norm_2d
from backbones.timm_configs.convnext import CONVNEXT_MODELS
from backbones.timm_efficientnet import make_divisible
from backbones.timm_resnet import _allow_deep_graph
from backbones.timm_universal import register_timm_models

MLP_RATIO = 4
FLATTENED = ("stem", "stages")  # timm's nn.Sequential children the features_only model names <seq>_<i>


class _Net:
    """The settings of one model while its layers are built (timm's ConvNeXt constructor arguments)."""

    def __init__(self, data_format, norm, eps, act, conv_bias):
        self.data_format, self.norm_kind, self.eps, self.act, self.conv_bias = data_format, norm, eps, act, conv_bias

    def name(self, path):
        return layer_name("model", path.replace(".", "-"))

    def conv(self, x, filters, kernel_size, path, stride=1, padding=0, dilation=1, use_bias=None):
        return conv2d(x, filters, kernel_size, self.name(path), data_format=self.data_format, stride=stride,
                      padding=padding, dilation=dilation, use_bias=self.conv_bias if use_bias is None else use_bias,
                      kernel_initializer=trunc_normal_init())

    def norm(self, x, path, channels_last=False):
        """timm's ``norm_layer`` (NCHW maps) or ``norm_layer_cl`` (``channels_last``: the map moved channels-last)."""
        name = self.name(path)
        if self.norm_kind == "layernorm":
            return layer_norm(x, name, eps=self.eps) if channels_last else layer_norm_2d(x, name, self.data_format, eps=self.eps)
        variance = self.norm_kind == "simplenorm"
        if channels_last:
            return RmsNorm(-1, self.eps, variance, name=name)(x)
        return rms_norm_2d(x, name, data_format=self.data_format, eps=self.eps, variance=variance)


def _same_padding(kernel_size, dilation):
    """timm's ``padding='same'`` of a stride-1 conv: static when even, else Conv2dSame's extra pixel bottom / right."""
    total = dilation * (kernel_size - 1)
    return ((total // 2, total - total // 2),) * 2


def _stem(net, x, stem_type, patch_size, width):
    """``stem``: a patch conv + norm, or two 3x3/2 convs (an activation between for 'overlap_act') + norm;
    returns (first conv's output, stem output, stride)."""
    if stem_type == "patch":
        first = net.conv(x, width, patch_size, "stem_0", patch_size)
        return first, net.norm(first, "stem_1"), patch_size
    mid = make_divisible(width // 2) if "tiered" in stem_type else width
    first = x = net.conv(x, mid, 3, "stem_0", 2, 1)
    index = 1
    if "act" in stem_type:
        x, index = activation(x, net.act), 2
    x = net.conv(x, width, 3, f"stem_{index}", 2, 1)
    return first, net.norm(x, f"stem_{index + 1}"), 4


def _block(net, x, path, kernel_size, dilation, conv_mlp, use_grn, ls_init_value):
    """ConvNeXtBlock: depthwise conv, norm, MLP (fc1, act, [GRN], fc2), layer scale, residual."""
    channels = x.shape[1 if net.data_format == "channels_first" else -1]
    hidden = int(MLP_RATIO * channels)
    y = depthwise_conv2d(x, kernel_size, net.name(f"{path}.conv_dw"), data_format=net.data_format,
                         padding=dilation * (kernel_size - 1) // 2, dilation=dilation, use_bias=net.conv_bias,
                         depthwise_initializer=trunc_normal_init())
    if conv_mlp:
        y = net.norm(y, f"{path}.norm")
        y = activation(net.conv(y, hidden, 1, f"{path}.mlp.fc1", use_bias=True), net.act)
        if use_grn:
            y = global_response_norm(y, net.name(f"{path}.mlp.grn"), data_format=net.data_format)
        y = net.conv(y, channels, 1, f"{path}.mlp.fc2", use_bias=True)
    else:  # timm permutes to NHWC: LayerNorm and Linears over the last axis
        y = net.norm(move_channels_last(y, net.data_format), f"{path}.norm", channels_last=True)
        y = activation(linear(y, hidden, net.name(f"{path}.mlp.fc1")), net.act)
        if use_grn:
            y = global_response_norm(y, net.name(f"{path}.mlp.grn"), data_format="channels_last")
        y = move_channels_back(linear(y, channels, net.name(f"{path}.mlp.fc2")), net.data_format)
    if ls_init_value is not None:
        y = channel_scale(y, net.name(path), data_format=net.data_format, init_value=ls_init_value)
    return keras.layers.Add()([y, x])


def _stage_strides(stem_stride, output_stride):
    """timm's ConvNeXt stage loop: per stage (stride, first dilation, dilation, reduction after it)."""
    curr, dilation, out = stem_stride, 1, []
    for i in range(4):
        stride = 2 if curr == 2 or i > 0 else 1
        if curr >= output_stride and stride > 1:
            dilation, stride = dilation * stride, 1
        curr *= stride
        out.append((stride, 1 if dilation in (1, 2) else 2, dilation, curr))
    return out


def build_timm_convnext(x, *, depth, output_stride, data_format, depths, dims, kernel_sizes, ls_init_value, stem_type,
                        patch_size, conv_mlp, conv_bias, use_grn, act, norm, norm_eps):
    """[x, None (no stride-2 feature), stages_0 (4), stages_1 (8), stages_2 (16), stages_3 (32)] up to ``depth``."""
    _allow_deep_graph(sum(depths))
    net = _Net(data_format, norm, norm_eps, act, conv_bias)
    features = [x, None]
    first, x, stem_stride = _stem(net, x, stem_type, patch_size, dims[0])
    if depth == 1:  # timm's features_only model with no feature taken keeps its first module only
        return features + [first]
    prev = dims[0]
    for i, (stride, first_dilation, dilation, _) in enumerate(_stage_strides(stem_stride, output_stride)):
        if prev != dims[i] or stride > 1 or first_dilation != dilation:
            kernel = 2 if stride > 1 or first_dilation != dilation else 1
            x = net.norm(x, f"stages_{i}.downsample.0")
            padding = _same_padding(kernel, first_dilation) if dilation > 1 else 0
            x = net.conv(x, dims[i], kernel, f"stages_{i}.downsample.1", stride, padding, first_dilation)
        for b in range(depths[i]):
            x = _block(net, x, f"stages_{i}.blocks.{b}", kernel_sizes[i], dilation, conv_mlp, use_grn, ls_init_value)
        prev = dims[i]
        features.append(x)
        if len(features) == depth + 1:
            break
    return features


def feature_info(params):
    """timm's ``feature_info``: channels and reductions of the four stages."""
    stem_stride = params["patch_size"] if params["stem_type"] == "patch" else 4
    return list(params["dims"]), [s[-1] for s in _stage_strides(stem_stride, 32)]


register_timm_models("convnext", CONVNEXT_MODELS, build_timm_convnext, feature_info, flattened=FLATTENED)
