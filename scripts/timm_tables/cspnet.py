"""backbones/timm_configs/cspnet.py: timm's cspnet module as backbones.timm_cspnet's settings.

Each entrypoint calls ``_create_cspnet(name)`` with timm's ``model_cfgs[name]`` (a ``CspModelCfg``); the
table holds that config as plain data: the stem (``CspStemCfg``), the per-stage lists of ``CspStagesCfg``
(padded to one entry per stage, as timm's ``__post_init__`` pads them), the activation, norm and aa layer.
"""

import dataclasses

import timm
from timm.layers import SEModule, get_attn
from timm.models import cspnet as timm_cspnet

from timm_tables import INFERENCE_NEUTRAL, captured_args, tag_entries

CONST = "CSPNET_MODELS"
STAGE_FIELDS = (
    "depth", "out_chs", "stride", "groups", "block_ratio", "bottle_ratio", "expand_ratio", "avg_down", "attn_layer",
    "attn_kwargs", "stage_type", "block_type", "cross_linear", "down_growth",
)


def _listed(value):
    return list(value) if isinstance(value, (tuple, list)) else [value]


def cspnet_params(name):
    """backbones.timm_cspnet's settings of ``name`` (timm's ``model_cfgs[name]``, what its entrypoint builds)."""
    kwargs = captured_args(name, timm_cspnet, "_create_cspnet")
    assert not set(kwargs) - set(INFERENCE_NEUTRAL), kwargs
    cfg = timm_cspnet.model_cfgs[name]
    stages = dataclasses.asdict(cfg.stages)
    assert set(stages) == set(STAGE_FIELDS), sorted(stages)
    for attn in stages["attn_layer"]:
        assert attn is None or get_attn(attn) is SEModule, attn
    assert cfg.norm_layer == "batchnorm" and cfg.aa_layer is None, (cfg.norm_layer, cfg.aa_layer)
    stem = dataclasses.asdict(cfg.stem)
    return dict(
        stem=dict(out_chs=_listed(stem["out_chs"]), kernel_size=stem["kernel_size"], stride=stem["stride"],
                  padding=stem["padding"], pool=stem["pool"] or ""),
        stages={k: [dict(v) if isinstance(v, dict) else v for v in stages[k]] for k in STAGE_FIELDS},
        act_layer=cfg.act_layer,
    )


def flattened(path):
    """timm's features_only module path (``FeatureListNet(flatten_sequential=True)``: the stem and
    stage Sequentials' children at the top, ``stem_conv1``, ``stages_0``) of a full-model path."""
    head, _, rest = path.partition(".")
    if head in ("stem", "stages") and rest:
        child, _, rest = rest.partition(".")
        return f"{head}_{child}" + (f".{rest}" if rest else "")
    return path


def table():
    table = {}
    for name in timm.list_models(module="cspnet"):
        tags, default = tag_entries(name)
        for entry in tags.values():  # the encoder's own module path (features_only), as SMP's state_dict keys it
            entry["first_conv"] = flattened(entry["first_conv"])
        table[name] = dict(params=cspnet_params(name), tags=tags, default_tag=default)
    return table

