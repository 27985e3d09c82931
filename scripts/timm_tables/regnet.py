"""backbones/timm_configs/regnet.py: timm's regnet module as backbones.timm_regnet's settings.

Each model's ``RegNetCfg`` (``timm.models.regnet.model_cfgs``) as a JSON-ready dict (``depth`` as ``blocks``,
``act_layer`` / ``norm_layer`` as ``act`` / ``norm``); the per-stage widths,
depths and group sizes timm derives from it (``generate_regnet``) are computed by the builder.
"""

import dataclasses
import functools

import timm
from timm.layers import GroupNormAct
from timm.models import regnet as timm_regnet

from timm_tables import INFERENCE_NEUTRAL, captured_args, tag_entries

CONST = "REGNET_MODELS"


def _norm(norm):
    """'batchnorm', or ``{"kind": "groupnorm", "group_size": n}`` for timm's ``partial(GroupNormAct, group_size=n)``."""
    if norm == "batchnorm":
        return norm
    assert isinstance(norm, functools.partial) and norm.func is GroupNormAct and set(norm.keywords) == {"group_size"}, norm
    return {"kind": "groupnorm", "group_size": norm.keywords["group_size"]}


def regnet_params(cfg):
    """backbones.timm_regnet's settings from a ``RegNetCfg``."""
    params = dataclasses.asdict(cfg)
    params["norm"] = _norm(params.pop("norm_layer"))
    params["act"] = params.pop("act_layer")
    params["blocks"] = params.pop("depth")  # the builder's ``depth`` is the encoder's (features taken)
    assert params["act"] in ("relu", "silu"), params["act"]
    assert params["downsample"] in ("conv1x1", "avg", None), params["downsample"]
    return params


def table():
    table = {}
    for name in timm.list_models(module="regnet"):
        kwargs = captured_args(name, timm_regnet, "_create_regnet")
        assert set(kwargs) <= set(INFERENCE_NEUTRAL), kwargs
        tags, default = tag_entries(name)
        table[name] = dict(params=regnet_params(timm_regnet.model_cfgs[name]), tags=tags, default_tag=default)
    return table
