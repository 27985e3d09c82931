"""Dual Path Networks (Ross Wightman's port, vendored by SMP as ``_dpn.py``), as SMP's DPNEncoder
uses them: ``last_linear`` dropped, features tapped after conv1_1's ReLU, after each of the
conv2/conv3/conv4 stages (the dual-path pair concatenated, then a ReLU) and after conv5_bn_ac.

Layer names are the torch module paths: ``features.conv1_1.{conv,bn}``, blocks
``features.convS_I`` with their ``c1x1_w_s1`` / ``c1x1_w_s2`` projections, ``c1x1_a``,
``c3x3_b`` and ``c1x1_c`` (``BnActConv2d``: ``.bn``, ``.conv``) or, in the b variant,
``c1x1_c.bn`` then two 1x1 convs ``c1x1_c1`` / ``c1x1_c2``; ``features.conv5_bn_ac.bn``.
Every BatchNorm has eps 0.001; convs are bias-free with torch's default initialisation.
"""

import keras

from backbones import registry
from backbones.layers import batch_norm, concat_channels, conv2d, layer_name, max_pool, relu, split_channels, torch_default_init
from backbones.resnet import _hub as smp_hub  # {weights: smp-hub/<name>.<weights> at a revision}

BN_EPS = 0.001

# SMP <= 0.5's pretrained_settings (pretrainedmodels' DPN table), the same for every DPN checkpoint.
PREPROCESSING = {
    "mean": [124 / 255, 117 / 255, 104 / 255],
    "std": [1 / (0.0167 * 255)] * 3,
    "input_range": [0, 1],
    "input_space": "RGB",
}


def _bn_relu(x, name, data_format):
    return relu(batch_norm(x, name, data_format=data_format, eps=BN_EPS))


def _conv(x, filters, kernel_size, name, data_format, stride=1, dilation=1, groups=1):
    """A bias-free ``nn.Conv2d`` padded (k // 2) * dilation, as built and as SMP's dilation sets it."""
    return conv2d(
        x, filters, kernel_size, name, data_format=data_format, stride=stride, padding=(kernel_size // 2) * dilation,
        dilation=dilation, groups=groups, use_bias=False, kernel_initializer=torch_default_init(),
    )


def _bn_act_conv(x, filters, kernel_size, prefix, data_format, **conv):
    """``BnActConv2d``: BatchNorm (``prefix.bn``), ReLU, conv (``prefix.conv``)."""
    return _conv(_bn_relu(x, layer_name(prefix, "bn"), data_format), filters, kernel_size, layer_name(prefix, "conv"), data_format, **conv)


def _dual_path_block(x, prefix, r, bw, inc, groups, block_type, b, stride, dilation, data_format):
    """``DualPathBlock(in, r, r, bw, inc, groups, block_type, b)`` on ``x``, a tensor or the
    (residual, dense) pair of the previous block; returns the new pair.

    ``block_type`` "proj" / "down" project the input (1x1, stride 1 / 2) into the residual
    (``bw`` channels) and dense (``2 * inc``) paths; "normal" takes the pair as they are.
    """
    x_in = concat_channels(x, data_format=data_format)
    if block_type == "normal":
        x_s1, x_s2 = x
    else:
        proj = layer_name(prefix, "c1x1_w_s1" if block_type == "proj" else "c1x1_w_s2")
        x_s = _bn_act_conv(x_in, bw + 2 * inc, 1, proj, data_format, stride=stride)
        x_s1, x_s2 = split_channels(x_s, [bw, 2 * inc], data_format=data_format)
    out = _bn_act_conv(x_in, r, 1, layer_name(prefix, "c1x1_a"), data_format)
    out = _bn_act_conv(out, r, 3, layer_name(prefix, "c3x3_b"), data_format, stride=stride, dilation=dilation, groups=groups)
    if b:
        out = _bn_relu(out, layer_name(prefix, "c1x1_c", "bn"), data_format)
        out1 = _conv(out, bw, 1, layer_name(prefix, "c1x1_c1"), data_format)
        out2 = _conv(out, inc, 1, layer_name(prefix, "c1x1_c2"), data_format)
    else:
        out = _bn_act_conv(out, bw + inc, 1, layer_name(prefix, "c1x1_c"), data_format)
        out1, out2 = split_channels(out, [bw, inc], data_format=data_format)
    resid = keras.layers.Add()([x_s1, out1])
    dense = concat_channels([x_s2, out2], data_format=data_format)
    return resid, dense


def stage_plan(k_sec, small, k_r, output_stride):
    """``(stage, blocks, bw, r, stride, dilation)`` of conv2..conv5, SMP's dilation applied.

    SMP's get_stages dilates conv4 (stride 16) and conv5 (stride 32) past ``output_stride``:
    every conv there gets stride 1, dilation stage // output_stride, padding (k // 2) * dilation.
    """
    bw_factor = 1 if small else 4
    for i, blocks in enumerate(k_sec):
        bw = 64 * 2**i * bw_factor
        r = (k_r * bw) // (64 * bw_factor)
        stage_stride = 2 ** (i + 2)
        stride, dilation = (1 if i == 0 else 2), 1
        if stage_stride > output_stride:
            stride, dilation = 1, stage_stride // output_stride
        yield i + 2, blocks, bw, r, stride, dilation


def build_dpn(x, *, depth, output_stride, data_format, num_init_features, k_r, groups, k_sec, inc_sec, small=False, b=False):
    """DPN features: [x, conv1_1 (before its pool), conv2, conv3, conv4 (each ReLU(cat(pair))), conv5_bn_ac]."""
    features = [x]
    kernel = 3 if small else 7
    x = _conv(x, num_init_features, kernel, "features-conv1_1-conv", data_format, stride=2)
    x = _bn_relu(x, "features-conv1_1-bn", data_format)
    features.append(x)
    x = max_pool(x, 3, 2, 1, data_format=data_format, nonnegative=True)
    for (stage, blocks, bw, r, stride, dilation), inc in zip(stage_plan(k_sec, small, k_r, output_stride), inc_sec):
        for i in range(1, blocks + 1):
            block_type = "normal" if i > 1 else ("proj" if stage == 2 else "down")
            x = _dual_path_block(
                x, layer_name("features", f"conv{stage}_{i}"), r, bw, inc, groups, block_type, b,
                stride if i == 1 else 1, dilation, data_format,
            )
        if stage < 5:
            features.append(relu(concat_channels(x, data_format=data_format)))
    features.append(_bn_relu(concat_channels(x, data_format=data_format), "features-conv5_bn_ac-bn", data_format))
    return features


# name -> (out_channels, params (SMP's architecture params), {weights: revision}).
DPN_ENCODERS = {
    "dpn68": (
        [3, 10, 144, 320, 704, 832],
        dict(small=True, num_init_features=10, k_r=128, groups=32, k_sec=(3, 4, 12, 3), inc_sec=(16, 32, 32, 64)),
        {"imagenet": "c209aefdeae6bc93937556629e974b44d4e58535"},
    ),
    "dpn68b": (
        [3, 10, 144, 320, 704, 832],
        dict(small=True, b=True, num_init_features=10, k_r=128, groups=32, k_sec=(3, 4, 12, 3), inc_sec=(16, 32, 32, 64)),
        {"imagenet+5k": "6c6615e77688e390ae0eaa81e26821fbd83cee4b"},
    ),
    "dpn92": (
        [3, 64, 336, 704, 1552, 2688],
        dict(num_init_features=64, k_r=96, groups=32, k_sec=(3, 4, 20, 3), inc_sec=(16, 32, 24, 128)),
        {"imagenet+5k": "d231f51ce4ad2c84ed5fcaf4ef0cfece6814a526"},
    ),
    "dpn98": (
        [3, 96, 336, 768, 1728, 2688],
        dict(num_init_features=96, k_r=160, groups=40, k_sec=(3, 6, 20, 3), inc_sec=(16, 32, 32, 128)),
        {"imagenet": "b2836c86216c1ddce980d832f7deaa4ca22babd3"},
    ),
    "dpn107": (
        [3, 128, 376, 1152, 2432, 2688],
        dict(num_init_features=128, k_r=200, groups=50, k_sec=(4, 8, 20, 3), inc_sec=(20, 64, 64, 128)),
        {"imagenet+5k": "dab4cd6b8b79de3db970f2dbff85359a8847db05"},
    ),
    "dpn131": (
        [3, 128, 352, 832, 1984, 2688],
        dict(num_init_features=128, k_r=160, groups=40, k_sec=(4, 8, 28, 3), inc_sec=(16, 32, 32, 128)),
        {"imagenet": "04bbb9f415ca2bb59f3d8227857967b74698515e"},
    ),
}


for _name, (_channels, _params, _weights) in DPN_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_dpn,
        out_channels=_channels,
        params=_params,
        pretrained_weights=smp_hub(_name, _weights),
        preprocessing={w: PREPROCESSING for w in _weights},
        first_conv="features.conv1_1.conv",
        classifier_keys=("last_linear.",),  # SMP's load_state_dict pops last_linear.weight / .bias
    )
