"""SMP's Mix Transformer encoders (``mit_b0`` ... ``mit_b5``, SegFormer's MiT, SMP's
``encoders/mix_transformer.py``).

Four stages, each ``patch_embed{i}`` (an overlapping conv, 7x7/4 then 3x3/2, padding k // 2, and
a LayerNorm over the channels), ``block{i}`` (transformer blocks: efficient self-attention whose
keys and values come from an ``sr``-strided conv + LayerNorm when ``sr_ratio > 1``, and a Mix-FFN
``fc1`` -> 3x3 depthwise ``dwconv`` -> exact GELU -> ``fc2``, both residual with drop-path) and a
final ``norm{i}``. Layer names are the torch module paths. The stride-2 feature is SMP's 0-channel
dummy (``Encoder`` makes it: ``out_channels[1] == 0``).

Blocks run on channels_last maps ``(B, H, W, C)`` (a Linear is a Dense on the channels); each
stage's output is moved to the model's data format. LayerNorm eps: 1e-6 where SMP passes its
``norm_layer`` (block norms, stage norms), torch's 1e-5 where it does not (patch embeds, the
attention's ``sr`` norm).

Dilation as SMP's ``make_dilated`` does it through ``get_stages`` (stage 3 is the stride-16 one,
stage 4 the stride-32 one): every conv of a dilated stage (patch embed, ``sr``, ``dwconv``) gets
stride 1, dilation ``rate`` and padding ``(k // 2) * rate``, which also changes how many
key/value tokens a dilated ``sr`` conv leaves.
"""

import keras
import numpy as np

from backbones import registry
from backbones.layers import (
    activation,
    conv2d,
    depthwise_conv2d,
    dot_product_attention,
    drop_path,
    layer_name,
    layer_norm,
    linear,
    move_channels_back,
    move_channels_last,
    split_channels,
    torch_conv_init,
)
from backbones.resnet import IMAGENET_PREPROCESSING

NORM_EPS = 1e-6  # SMP's norm_layer=partial(LayerNorm, eps=1e-6)
TORCH_LN_EPS = 1e-5  # nn.LayerNorm's default: OverlapPatchEmbed.norm, Attention.norm
PATCH_EMBEDS = ((7, 4), (3, 2), (3, 2), (3, 2))  # (kernel, stride) of patch_embed1..4
STAGE_STRIDES = (4, 8, 16, 32)
DROP_PATH_RATE = 0.1  # every SMP row; linearly increasing over all blocks
MLP_RATIO = 4


def conv_init():
    """MiT's conv init: normal(0, sqrt(2 / fan_out)), fan_out = kh * kw * out / groups (Keras's
    fan_out of a conv and of a depthwise kernel alike); biases zero."""
    return torch_conv_init("fan_out")


def dilated(kernel, stride, padding, rate):
    """``(stride, padding, dilation)`` of a MiT conv after ``replace_strides_with_dilation(rate)``
    (unchanged for rate 1)."""
    return (stride, padding, 1) if rate == 1 else (1, (kernel // 2) * rate, rate)


def stage_rates(output_stride):
    """Dilation rate of each stage: SMP dilates the stages whose stride exceeds ``output_stride``."""
    return [s // output_stride if s > output_stride else 1 for s in STAGE_STRIDES]


def drop_path_rates(depths, rate=DROP_PATH_RATE):
    """SMP's stochastic depth decay: ``torch.linspace(0, rate, sum(depths))`` over all blocks."""
    return [float(r) for r in np.linspace(0.0, rate, sum(depths), dtype=np.float32)]


def attention(x, dim, heads, sr_ratio, rate, prefix):
    """Efficient self-attention of a channels_last map: queries from every token, keys and values
    from the ``sr``-reduced map (a k = stride = ``sr_ratio`` conv + LayerNorm) when ``sr_ratio > 1``."""
    q = linear(x, dim, f"{prefix}-q")
    if sr_ratio > 1:
        stride, padding, dilation = dilated(sr_ratio, sr_ratio, 0, rate)
        x = conv2d(
            x, dim, sr_ratio, f"{prefix}-sr", data_format="channels_last", stride=stride, padding=padding,
            dilation=dilation, kernel_initializer=conv_init(),
        )
        x = layer_norm(x, f"{prefix}-norm", eps=TORCH_LN_EPS)
    k, v = split_channels(linear(x, 2 * dim, f"{prefix}-kv"), [dim, dim], data_format="channels_last")
    return linear(dot_product_attention(q, k, v, heads), dim, f"{prefix}-proj")


def mix_ffn(x, dim, rate, prefix):
    """Mlp: fc1 -> DWConv (3x3 depthwise, bias) -> exact GELU -> fc2."""
    hidden = dim * MLP_RATIO
    x = linear(x, hidden, f"{prefix}-fc1")
    stride, padding, dilation = dilated(3, 1, 1, rate)
    x = depthwise_conv2d(
        x, 3, f"{prefix}-dwconv-dwconv", data_format="channels_last", stride=stride, padding=padding, dilation=dilation,
        use_bias=True, depthwise_initializer=conv_init(),
    )
    return linear(activation(x, "gelu"), dim, f"{prefix}-fc2")


def block(x, dim, heads, sr_ratio, rate, drop_rate, prefix):
    """Block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x)))."""
    y = attention(layer_norm(x, f"{prefix}-norm1", eps=NORM_EPS), dim, heads, sr_ratio, rate, f"{prefix}-attn")
    x = keras.layers.Add()([x, drop_path(y, drop_rate, name=f"{prefix}-attn_drop_path")])
    y = mix_ffn(layer_norm(x, f"{prefix}-norm2", eps=NORM_EPS), dim, rate, f"{prefix}-mlp")
    return keras.layers.Add()([x, drop_path(y, drop_rate, name=f"{prefix}-mlp_drop_path")])


def build_mit(x, *, depth, output_stride, data_format, embed_dims, num_heads, depths, sr_ratios):
    """SMP's MixVisionTransformerEncoder: ``[x, None, stage1, ..., stage4]`` (strides 1, 2, 4 ... 32);
    ``None`` is the missing stride-2 feature. Every stage is built (deeper ones left dormant)."""
    features = [x, None]
    rates, drops = stage_rates(output_stride), drop_path_rates(depths)
    cur = 0
    for i, ((kernel, stride), dim, heads, n, sr_ratio, rate) in enumerate(zip(PATCH_EMBEDS, embed_dims, num_heads, depths, sr_ratios, rates)):
        s = i + 1
        stride, padding, dilation = dilated(kernel, stride, kernel // 2, rate)
        x = conv2d(
            x, dim, kernel, layer_name(f"patch_embed{s}", "proj"), data_format=data_format, stride=stride, padding=padding,
            dilation=dilation, kernel_initializer=conv_init(),
        )
        x = layer_norm(move_channels_last(x, data_format), layer_name(f"patch_embed{s}", "norm"), eps=TORCH_LN_EPS)
        for j in range(n):
            x = block(x, dim, heads, sr_ratio, rate, drops[cur + j], layer_name(f"block{s}", j))
        cur += n
        x = move_channels_back(layer_norm(x, f"norm{s}", eps=NORM_EPS), data_format)
        features.append(x)
    return features


_B0 = dict(embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2])
_WIDE = [64, 128, 320, 512]
# name: (SMP's params that differ between rows, smp-hub revision of "imagenet").
MIT_ENCODERS = {
    "mit_b0": (_B0, "9ce53d104d92d75aabb00aae70677aaab67e7c84"),
    "mit_b1": (dict(embed_dims=_WIDE, depths=[2, 2, 2, 2]), "a04bf4f13a549bce677cf79b04852e7510782817"),
    "mit_b2": (dict(embed_dims=_WIDE, depths=[3, 4, 6, 3]), "868ab6f13871dcf8c3d9f90ee4519403475b65ef"),
    "mit_b3": (dict(embed_dims=_WIDE, depths=[3, 4, 18, 3]), "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda"),
    "mit_b4": (dict(embed_dims=_WIDE, depths=[3, 8, 27, 3]), "3a3454e900a4b4f11dd60eeb59101a9a1a36b017"),
    "mit_b5": (dict(embed_dims=_WIDE, depths=[3, 6, 40, 3]), "ced04d96c586b6297fd59a7a1e244fc78fdb6531"),
}

for _name, (_params, _revision) in MIT_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_mit,
        out_channels=[3, 0] + list(_params["embed_dims"]),
        params=dict(num_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], **_params),
        pretrained_weights={"imagenet": dict(repo_id=f"smp-hub/{_name}.imagenet", revision=_revision)},
        preprocessing={"imagenet": IMAGENET_PREPROCESSING},  # the smp-hub repos' config.json: ImageNet mean/std
        first_conv="patch_embed1.proj",  # SMP's patch_first_conv: the first Conv2d with 3 inputs
        stride2_feature=False,
        classifier_keys=("head.",),  # MixVisionTransformerEncoder.load_state_dict pops head.weight / head.bias
    )
