"""backbones/timm_configs/resnet.py: timm's resnet module as backbones.timm_resnet's settings."""

import functools
import inspect

import timm
import torch
from timm.layers import BlurPool2d, EcaModule, SEModule
from timm.models import resnet as timm_resnet

from timm_tables import INFERENCE_NEUTRAL, captured_args, conv_widths, tag_entries

CONST = "RESNET_MODELS"
# timm block class -> (backbones.timm_resnet block kind, the block_args it takes as the table's ``block_args``);
# the res2net / resnest generators add their classes.
BLOCKS = {timm_resnet.BasicBlock: ("basic", ()), timm_resnet.Bottleneck: ("bottleneck", ())}


def _attention(attn):
    """``{"kind": "se" | "eca", **keywords}`` of a block's ``attn_layer`` (a name, class or partial)."""
    if attn is None:
        return None
    keywords = {}
    if isinstance(attn, functools.partial):
        attn, keywords = attn.func, dict(attn.keywords)
    if isinstance(attn, str):
        attn = timm.layers.get_attn(attn)
    kind = {SEModule: "se", EcaModule: "eca"}[attn]
    return {"kind": kind, **keywords}


def _anti_alias(aa):
    if aa is None:
        return None
    return {torch.nn.AvgPool2d: "avg", BlurPool2d: "blur"}[aa]


def resnet_params(kwargs):
    """backbones.timm_resnet's settings from the ResNet constructor arguments ``kwargs``."""
    kwargs = dict(kwargs)
    block = kwargs.pop("block")
    layers = list(kwargs.pop("layers"))
    block = list(block) if isinstance(block, (list, tuple)) else [block] * len(layers)
    blocks = [BLOCKS[b][0] for b in block]
    block_args = dict(kwargs.pop("block_args", None) or {})
    attn = _attention(block_args.pop("attn_layer", None))
    own = {k: block_args.pop(k, inspect.signature(b).parameters[k].default) for b in set(block) for k in BLOCKS[b][1]}
    assert not block_args, block_args
    norm = kwargs.pop("norm_layer", "batchnorm")
    assert norm in ("batchnorm", "groupnorm"), norm
    assert kwargs.pop("act_layer", torch.nn.ReLU) in (torch.nn.ReLU, "relu")
    params = dict(
        blocks=blocks, layers=layers, channels=list(kwargs.pop("channels", (64, 128, 256, 512))),
        cardinality=kwargs.pop("cardinality", 1), base_width=kwargs.pop("base_width", 64),
        stem_width=kwargs.pop("stem_width", 64), stem_type=kwargs.pop("stem_type", ""),
        replace_stem_pool=kwargs.pop("replace_stem_pool", False), block_reduce_first=kwargs.pop("block_reduce_first", 1),
        down_kernel_size=kwargs.pop("down_kernel_size", 1), avg_down=kwargs.pop("avg_down", False),
        norm=norm, aa=_anti_alias(kwargs.pop("aa_layer", None)), attn=attn,
    )
    if own:
        params["block_args"] = own
    pruned = kwargs.pop("pruned", False)
    for k in INFERENCE_NEUTRAL:
        kwargs.pop(k, None)
    assert not kwargs, kwargs
    return params, pruned


def resnet_table(module, timm_module, creator):
    """The table of every model of timm's ``module`` (ResNets built by ``timm_module.<creator>``)."""
    table = {}
    for name in timm.list_models(module=module):
        params, pruned = resnet_params(captured_args(name, timm_module, creator))
        if pruned:
            params["widths"] = conv_widths(name)
        tags, default = tag_entries(name)
        table[name] = dict(params=params, tags=tags, default_tag=default)
    return table


def table():
    return resnet_table("resnet", timm_resnet, "_create_resnet")
