"""Apple's MobileOne (S0-S4), as SMP's MobileOne encoder builds it, and its re-parameterisation.

Every ``MobileOneBlock`` is built in SMP's train-time form (``inference_mode=False``): a
BatchNorm skip branch (``rbr_skip``, when input and output widths match and the block's
stride was 1), ``num_conv_branches`` conv-BN branches (``rbr_conv``), a 1x1 conv-BN branch
(``rbr_scale``, for 3x3 blocks), summed, then SMP's SEBlock (S4) and a ReLU.
``reparameterize_model`` folds the branches of every block into one biased conv
(``reparam_conv``) exactly as SMP's ``reparameterize_model`` does; models built inside
``reparameterized()`` get the single-branch form (SMP's ``inference_mode=True``).
"""

import contextlib
import contextvars
import re

import keras
import numpy as np

from backbones import registry
from backbones.layers import batch_norm, channels, conv2d, layer_name, relu, squeeze_excite, torch_default_init
from backbones.resnet import IMAGENET_PREPROCESSING
from backbones.resnet import _hub as smp_hub  # {weights: smp-hub/<name>.<weights> at a revision}

BN_EPS = 1e-5  # torch's BatchNorm2d default, which every MobileOne branch uses
SE_RATIO = 0.0625  # SMP's SEBlock rd_ratio; the reduced width is int(channels * rd_ratio)
STAGE_WIDTHS = (64, 128, 256, 512)  # stage1..stage4 widths before the width multipliers

_REPARAMETERIZED = contextvars.ContextVar("keras_seg_mobileone_reparameterized", default=False)


@contextlib.contextmanager
def reparameterized():
    """Build MobileOne encoders single-branch (one ``reparam_conv`` per block) inside this context.

    ``reparameterize_model`` uses it; so does loading a saved re-parameterised model:
    ``with reparameterized(): keras.saving.load_model(path)``.
    """
    token = _REPARAMETERIZED.set(True)
    try:
        yield
    finally:
        _REPARAMETERIZED.reset(token)


def _conv(x, filters, kernel_size, name, data_format, stride, dilation, groups, use_bias):
    """torch ``nn.Conv2d`` with MobileOne's padding ``(k // 2) * dilation`` and torch's default init."""
    return conv2d(
        x, filters, kernel_size, name, data_format=data_format, stride=stride, padding=(kernel_size // 2) * dilation,
        dilation=dilation, groups=groups, use_bias=use_bias, kernel_initializer=torch_default_init(depthwise=groups > 1),
    )


def _conv_bn(x, filters, kernel_size, prefix, data_format, stride, dilation, groups):
    """SMP's ``MobileOneBlock._conv_bn``: a bias-free conv (``conv``) then BatchNorm (``bn``)."""
    x = _conv(x, filters, kernel_size, f"{prefix}-conv", data_format, stride, dilation, groups, use_bias=False)
    return batch_norm(x, f"{prefix}-bn", data_format=data_format, eps=BN_EPS)


def _branches(x, prefix, filters, kernel_size, stride, dilation, groups, skip, num_conv_branches, data_format):
    """The train-time branches, summed in SMP's order: scale + skip, then each conv branch."""
    outs = []
    if kernel_size > 1:
        outs.append(_conv_bn(x, filters, 1, f"{prefix}-rbr_scale", data_format, stride, 1, groups))
    if skip:
        outs.append(batch_norm(x, f"{prefix}-rbr_skip", data_format=data_format, eps=BN_EPS))
    for i in range(num_conv_branches):
        outs.append(_conv_bn(x, filters, kernel_size, layer_name(prefix, "rbr_conv", i), data_format, stride, dilation, groups))
    return keras.layers.Add()(outs) if len(outs) > 1 else outs[0]


def mobileone_block(
    x, prefix, filters, kernel_size, *, data_format, stride=1, dilation=1, groups=1, skip=False, use_se=False,
    num_conv_branches=1, inference_mode=False,
):
    """SMP's ``MobileOneBlock``: branches (or ``reparam_conv``), SEBlock when ``use_se``, ReLU.

    ``skip`` is SMP's construction-time rule (equal widths and stride 1 before any dilation).
    """
    if inference_mode:
        x = _conv(x, filters, kernel_size, f"{prefix}-reparam_conv", data_format, stride, dilation, groups, use_bias=True)
    else:
        x = _branches(x, prefix, filters, kernel_size, stride, dilation, groups, skip, num_conv_branches, data_format)
    if use_se:
        x = squeeze_excite(
            x, int(filters * SE_RATIO), f"{prefix}-se-reduce", f"{prefix}-se-expand", data_format=data_format,
            act="relu", gate="sigmoid", kernel_initializer=torch_default_init(),
        )
    return relu(x)


def _stage(x, index, planes, num_blocks, num_se_blocks, dilation, data_format, **block_kwargs):
    """``stage{index}``: per block a 3x3 depthwise then a 1x1 pointwise MobileOneBlock; the
    first depthwise block has stride 2 (stride 1 and ``dilation`` once SMP dilates the stage)."""
    for b in range(num_blocks):
        in_planes = channels(x, data_format)
        stride = 2 if b == 0 and dilation == 1 else 1
        use_se = b >= num_blocks - num_se_blocks
        x = mobileone_block(
            x, layer_name(f"stage{index}", 2 * b), in_planes, 3, data_format=data_format, stride=stride, dilation=dilation,
            groups=in_planes, skip=b > 0, use_se=use_se, **block_kwargs,
        )
        x = mobileone_block(
            x, layer_name(f"stage{index}", 2 * b + 1), planes, 1, data_format=data_format, skip=in_planes == planes,
            use_se=use_se, **block_kwargs,
        )
    return x


def build_mobileone(
    x, *, depth, output_stride, data_format, width_multipliers, num_blocks_per_stage=(2, 8, 10, 1), use_se=False,
    num_conv_branches=1, inference_mode=False,
):
    """SMP's MobileOne: returns [x, stage0, stage1, stage2, stage3, stage4] outputs.

    SMP dilates only stage3 (stride 16) and stage4 (stride 32): every conv in a stage whose
    stride exceeds ``output_stride`` gets stride 1, dilation ``stride // output_stride`` and
    padding ``(k // 2) * dilation``; the branches are those of the undilated block.
    """
    inference_mode = inference_mode or _REPARAMETERIZED.get()
    in_planes = min(64, int(64 * width_multipliers[0]))
    features = [x]
    x = mobileone_block(x, "stage0", in_planes, 3, data_format=data_format, stride=2, inference_mode=inference_mode)
    features.append(x)
    se_blocks = (0, 0, num_blocks_per_stage[2] // 2, num_blocks_per_stage[3]) if use_se else (0, 0, 0, 0)
    for i in range(4):
        stage_stride = 2 ** (i + 2)
        dilation = stage_stride // output_stride if i >= 2 and stage_stride > output_stride else 1
        x = _stage(
            x, i + 1, int(STAGE_WIDTHS[i] * width_multipliers[i]), num_blocks_per_stage[i], se_blocks[i], dilation,
            data_format, num_conv_branches=num_conv_branches, inference_mode=inference_mode,
        )
        features.append(x)
    return features


# -- pretrained weights ------------------------------------------------------------------------

FIRST_CONVS = ("stage0.rbr_conv.0.conv", "stage0.rbr_scale.conv")  # the convs SMP's set_in_channels patches


def load_mobileone_weights(encoder, weights):
    """SMP's smp-hub checkpoint ``weights``; for ``in_channels != 3`` both stage0 convs that read
    the image are adapted by SMP's first-conv rule (``set_in_channels`` patches both)."""
    from backbones.encoder import load_torch_weights
    from weight_ports import hub
    from weight_ports.first_conv import adapt_first_conv
    from weight_ports.readers import read_state_dict

    spec = encoder.spec
    entry = registry.weights_entry(spec.name, weights)
    path = hub.download_file(entry["repo_id"], "model.safetensors", revision=entry.get("revision"), what=f"encoder {spec.name!r} weights {weights!r}")
    state = read_state_dict(path)
    if encoder.in_channels != 3:
        for conv in FIRST_CONVS:
            if conv != spec.first_conv and f"{conv}.weight" in state:  # spec.first_conv: load_torch_weights adapts it
                state[f"{conv}.weight"] = adapt_first_conv(state[f"{conv}.weight"], encoder.in_channels)
    return load_torch_weights(encoder, state)


# -- re-parameterisation ---------------------------------------------------------------------------

_BLOCK_KEY = re.compile(r"^(.*)\.rbr_conv\.0\.conv\.weight$")


def _fuse_bn(state, bn, kernel):
    """SMP's ``_fuse_bn_tensor``: ``kernel`` scaled by gamma / std and the folded bias."""
    std = np.sqrt(state[f"{bn}.running_var"] + np.float32(BN_EPS))
    gamma, beta, mean = state[f"{bn}.weight"], state[f"{bn}.bias"], state[f"{bn}.running_mean"]
    return kernel * (gamma / std).reshape(-1, 1, 1, 1), beta - mean * gamma / std


def _identity_kernel(width, input_dim, kernel_size):
    """SMP's ``id_tensor``: the skip branch as a (grouped) conv kernel with a centred 1."""
    kernel = np.zeros((width, input_dim, kernel_size, kernel_size), np.float32)
    kernel[np.arange(width), np.arange(width) % input_dim, kernel_size // 2, kernel_size // 2] = 1
    return kernel


def fold_block(state, prefix):
    """SMP's ``MobileOneBlock._get_kernel_bias`` for the block at ``prefix`` of torch ``state``:
    the ``reparam_conv`` kernel and bias (conv branches, then scale, then skip)."""
    conv0 = state[f"{prefix}.rbr_conv.0.conv.weight"]
    kernel_size, input_dim = conv0.shape[2], conv0.shape[1]
    kernel, bias = 0, 0
    i = 0
    while f"{prefix}.rbr_conv.{i}.conv.weight" in state:
        k, b = _fuse_bn(state, f"{prefix}.rbr_conv.{i}.bn", state[f"{prefix}.rbr_conv.{i}.conv.weight"])
        kernel, bias, i = kernel + k, bias + b, i + 1
    extra_kernel, extra_bias = 0, 0
    if f"{prefix}.rbr_scale.conv.weight" in state:
        k, extra_bias = _fuse_bn(state, f"{prefix}.rbr_scale.bn", state[f"{prefix}.rbr_scale.conv.weight"])
        pad = kernel_size // 2
        extra_kernel = np.pad(k, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    skip_kernel, skip_bias = 0, 0
    if f"{prefix}.rbr_skip.weight" in state:
        identity = _identity_kernel(state[f"{prefix}.rbr_skip.weight"].shape[0], input_dim, kernel_size)
        skip_kernel, skip_bias = _fuse_bn(state, f"{prefix}.rbr_skip", identity)
    return kernel + extra_kernel + skip_kernel, bias + extra_bias + skip_bias


def reparameterize_state_dict(state):
    """A torch-layout state_dict with every MobileOne block's branches folded into
    ``<block>.reparam_conv.weight`` / ``.bias`` (the keys of SMP's re-parameterised model)."""
    state = {k: np.asarray(v) for k, v in state.items()}
    prefixes = [m.group(1) for m in map(_BLOCK_KEY.match, state) if m]
    folded = {}
    for prefix in prefixes:
        kernel, bias = fold_block(state, prefix)
        folded[f"{prefix}.reparam_conv.weight"] = kernel.astype(np.float32)
        folded[f"{prefix}.reparam_conv.bias"] = bias.astype(np.float32)
    branch_keys = tuple(f"{p}.rbr_" for p in prefixes)
    kept = {k: v for k, v in state.items() if not (branch_keys and k.startswith(branch_keys))}
    return {**kept, **folded}


def reparameterize_model(model):
    """SMP's ``reparameterize_model`` for keras-seg: a new model of the same class and config
    (a MobileOne ``Encoder`` or a model holding one) whose MobileOne blocks are single
    ``reparam_conv`` layers, with the branches folded in; ``model`` is left unchanged.

    Use it for inference and export: the folded model computes the same outputs in
    inference mode (BatchNorm statistics folded in), not the train-time branches. Its
    config records no ``encoder_weights``; load a ``.keras`` save of it inside
    ``reparameterized()``.
    """
    from weight_ports.translate import load_state_dict, state_dict

    folded = reparameterize_state_dict(state_dict(model))
    config = model.get_config()
    if "encoder_weights" in config:
        config["encoder_weights"] = None  # the folded weights replace them
    with reparameterized():
        new = type(model).from_config(config)
    load_state_dict(new, folded, strict=True)
    return new


# -- registry -----------------------------------------------------------------------------------------

_MOBILEONE = dict(inference_mode=False)  # SMP's default: the train-time branches

MOBILEONE_ENCODERS = {  # name: (out_channels, params, smp-hub revision of the imagenet weights)
    "mobileone_s0": ([3, 48, 48, 128, 256, 1024], dict(width_multipliers=(0.75, 1.0, 1.0, 2.0), num_conv_branches=4), "f52815cf0ad29278a9860c9cd5fabf19f904bedf"),
    "mobileone_s1": ([3, 64, 96, 192, 512, 1280], dict(width_multipliers=(1.5, 1.5, 2.0, 2.5)), "5707a98852b762cd8e0c43b5c8c729cd28496677"),
    "mobileone_s2": ([3, 64, 96, 256, 640, 2048], dict(width_multipliers=(1.5, 2.0, 2.5, 4.0)), "ddc3db8fa40d271902c7a8c95cee6691f617d551"),
    "mobileone_s3": ([3, 64, 128, 320, 768, 2048], dict(width_multipliers=(2.0, 2.5, 3.0, 4.0)), "da89b84a91b7400c366c358bfbf8dd0b2fa4dde2"),
    "mobileone_s4": ([3, 64, 192, 448, 896, 2048], dict(width_multipliers=(3.0, 3.5, 3.5, 4.0), use_se=True), "16197c55d599076b6aae67a83d3b3f70c31b097c"),
}

for _name, (_channels, _params, _revision) in MOBILEONE_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_mobileone,
        out_channels=_channels,
        params={**_params, **_MOBILEONE},
        pretrained_weights=smp_hub(_name, {"imagenet": _revision}),
        preprocessing={"imagenet": IMAGENET_PREPROCESSING},  # SMP <= 0.5's table; timm's apple_in1k cfgs agree
        first_conv=FIRST_CONVS[0],
        classifier_keys=("linear.",),
        load_weights=load_mobileone_weights,
    )
