"""backbones/timm_configs/efficientnet.py: timm's efficientnet module as backbones.timm_efficientnet_builder's
settings (the decoded, depth-scaled block arguments each entrypoint passes, and the model's constructor options)."""

import functools

import timm
import torch
from timm.layers import EvoNorm2dS0, GroupNormAct, LayerNormAct2d
from timm.models import efficientnet as timm_efficientnet

from timm_tables import INFERENCE_NEUTRAL, captured_args, conv_widths, tag_entries

CONST = "EFFICIENTNET_MODELS"
ACTS = {torch.nn.ReLU: "relu", torch.nn.ReLU6: "relu6", torch.nn.SiLU: "swish", torch.nn.Hardswish: "hard_swish",
        torch.nn.Mish: "mish", torch.nn.Hardsigmoid: "hard_sigmoid", torch.nn.Sigmoid: "sigmoid"}
# round_channels's defaults (timm's _efficientnet_builder.round_channels).
ROUND_DEFAULTS = dict(multiplier=1.0, divisor=8, channel_min=None, round_limit=0.9)


def act_name(act):
    """A block / model activation as a key of the kit's ACTIVATIONS (None: the model's default)."""
    if act is None or isinstance(act, str):
        return act
    return ACTS[act]


def norm_params(norm):
    """``{"kind", "eps", ["group_size"]}`` of a ``norm_layer`` (a class or partial)."""
    keywords = {}
    if isinstance(norm, functools.partial):
        norm, keywords = norm.func, dict(norm.keywords)
    if norm in (None, torch.nn.BatchNorm2d):
        kind, eps = "batchnorm", keywords.pop("eps", 1e-5)
        keywords.pop("momentum", None)  # training only
    elif norm is GroupNormAct:
        kind, eps = "groupnorm", keywords.pop("eps", 1e-5)
    elif norm is LayerNormAct2d:
        kind, eps = "layernorm", keywords.pop("eps", 1e-5)
    elif norm is EvoNorm2dS0:
        kind, eps = "evonorm_s0", keywords.pop("eps", 1e-5)
    else:
        raise ValueError(f"unknown norm layer {norm}")
    return {"kind": kind, "eps": float(eps), **keywords}


def _runs(stage):
    """A stage's block dicts as ``[repeats, block]`` runs of equal consecutive blocks."""
    runs = []
    for block in stage:
        if runs and runs[-1][1] == block:
            runs[-1][0] += 1
        else:
            runs.append([1, block])
    return runs


# Block arguments at decode_arch_def's defaults, left out of the table (the builder assumes them).
BLOCK_DEFAULTS = dict(act_layer=None, exp_kernel_size=1, pw_kernel_size=1, se_ratio=0.0, noskip=False, s2d=False,
                      force_in_chs=0, pw_act=False, skip=False)


def block_params(block):
    """One decoded block's arguments, JSON-ready, without those at their defaults."""
    block = dict(block, act_layer=act_name(block.get("act_layer")))
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in block.items() if BLOCK_DEFAULTS.get(k, ...) != v}


def round_params(fn):
    """round_channels's keywords of ``round_chs_fn`` (a partial of it)."""
    if fn is None:
        return dict(ROUND_DEFAULTS)
    assert isinstance(fn, functools.partial) and fn.func is timm_efficientnet.round_channels, fn
    return {**ROUND_DEFAULTS, **fn.keywords}


def se_params(se, from_exp):
    """The builder's ``se_args`` of a ``partial(SqueezeExcite, ...)`` se_layer and the builder's ``se_from_exp``."""
    keywords = dict(se.keywords) if isinstance(se, functools.partial) else {}
    rd_round = keywords.pop("rd_round_fn", None)
    args = dict(gate=act_name(keywords.pop("gate_layer", "sigmoid")), force_act=act_name(keywords.pop("force_act_layer", None)),
                rd_round="round" if rd_round is None else "round_channels", from_exp=from_exp)
    if isinstance(rd_round, functools.partial):
        args["rd_round_args"] = round_params(rd_round)
    assert not keywords, keywords
    return args


def effnet_params(kwargs, default_act="relu", se_from_exp=None, stem_size=32):
    """backbones.timm_efficientnet_builder's settings from the constructor arguments ``kwargs``; ``se_from_exp``:
    the model class's default (MobileNetV3's True), None where the model keeps EfficientNet's SE settings;
    ``stem_size``: the class's default (MobileNetV3's 16)."""
    kwargs = dict(kwargs)
    arch = [_runs([block_params(b) for b in stage]) for stage in kwargs.pop("block_args")]
    se = kwargs.pop("se_layer", None)
    se_from_exp = kwargs.pop("se_from_exp", se_from_exp)
    se_args = None
    if isinstance(se, functools.partial) and se.func is timm_efficientnet.SqueezeExcite or se_from_exp is not None:
        se_args, se = se_params(se, bool(se_from_exp)), None
    aa = kwargs.pop("aa_layer", None)
    params = dict(
        arch=arch, stem_size=kwargs.pop("stem_size", stem_size), stem_kernel_size=kwargs.pop("stem_kernel_size", 3),
        fix_stem=kwargs.pop("fix_stem", False), round_chs=round_params(kwargs.pop("round_chs_fn", None)),
        pad_type=kwargs.pop("pad_type", ""), act=act_name(kwargs.pop("act_layer", None)) or default_act,
        norm=norm_params(kwargs.pop("norm_layer", None)), aa=aa, se=se,
    )
    if se_args is not None:
        params["se_args"] = se_args
    assert se in (None, "gc"), se
    assert aa in (None, "blurpc"), aa
    pruned = kwargs.pop("pruned", False)
    for k in ("num_features", "head_bias"):  # the classifier head: not in timm's features_only model
        kwargs.pop(k, None)
    for k in INFERENCE_NEUTRAL:
        kwargs.pop(k, None)
    assert not kwargs, kwargs
    return params, pruned


def table():
    table = {}
    for name in timm.list_models(module="efficientnet"):
        params, pruned = effnet_params(captured_args(name, timm_efficientnet, "_create_effnet"))
        if pruned:
            params["widths"] = conv_widths(name)
        tags, default = tag_entries(name)
        table[name] = dict(params=params, tags=tags, default_tag=default)
    return table
