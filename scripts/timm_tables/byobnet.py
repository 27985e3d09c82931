"""backbones/timm_configs/byobnet.py: timm's byobnet models that backbones.timm_byobnet builds (its
``ByoModelCfg`` per model: stem, stages of one ``ByoBlockCfg`` each, final conv), so far gernet_s/m/l."""

import dataclasses

from timm.models import byobnet as timm_byobnet

from timm_tables import captured_args, tag_entries

CONST = "BYOBNET_MODELS"
MODELS = ("gernet_s", "gernet_m", "gernet_l")  # the byobnet models ported (what their configs use, below)
BLOCK_TYPES = ("basic", "bottle")
# ByoModelCfg fields the builder reads; every other field must keep its default (asserted).
MODEL_FIELDS = ("stem_type", "stem_pool", "stem_chs", "width_factor", "num_features", "downsample")
SUPPORTED = dict(stem_type=("3x3",), stem_pool=(None, ""), downsample=("conv1x1",))


def _block(cfg):
    assert cfg.type in BLOCK_TYPES and not cfg.attn_layer and not cfg.self_attn_layer and not cfg.block_kwargs, cfg
    assert cfg.attn_kwargs is None and cfg.self_attn_kwargs is None and isinstance(cfg.gs, (int, type(None))), cfg
    return dict(type=cfg.type, d=cfg.d, c=cfg.c, s=cfg.s, gs=cfg.gs or 0, br=cfg.br)


def byob_params(cfg):
    """backbones.timm_byobnet's settings from a ``ByoModelCfg`` (only what the builder supports)."""
    defaults = timm_byobnet.ByoModelCfg(blocks=())
    for field in dataclasses.fields(cfg):
        if field.name not in MODEL_FIELDS + ("blocks", "zero_init_last", "head_type", "head_hidden_size"):
            assert getattr(cfg, field.name) == getattr(defaults, field.name), (field.name, getattr(cfg, field.name))
    for field, values in SUPPORTED.items():
        assert getattr(cfg, field) in values, (field, getattr(cfg, field))
    assert all(isinstance(stage, timm_byobnet.ByoBlockCfg) for stage in cfg.blocks), "one block config per stage"
    params = {field: getattr(cfg, field) for field in MODEL_FIELDS}
    params["stem_pool"] = params["stem_pool"] or ""
    return dict(params, stages=[_block(stage) for stage in cfg.blocks])


def table():
    table = {}
    for name in MODELS:
        assert captured_args(name, timm_byobnet, "_create_byobnet") == {}, name  # the model config as is
        tags, default = tag_entries(name)
        table[name] = dict(params=byob_params(timm_byobnet.model_cfgs[name]), tags=tags, default_tag=default)
    return table
