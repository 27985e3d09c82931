"""What every timm table generator shares (scripts/generate_timm_configs.py runs them): the constructor
arguments an entrypoint passes, a model's conv widths, its pretrained tags. One module here per ported
timm module (``timm_tables.<module>``), each with ``CONST`` (the table's name in
``backbones/timm_configs/<module>.py``) and ``table()``.
"""

import timm
import torch

# timm constructor arguments that change nothing at inference (or only the classifier).
INFERENCE_NEUTRAL = ("num_classes", "drop_rate", "drop_path_rate", "drop_block_rate", "zero_init_last", "global_pool")


def captured_args(name, module, creator):
    """The constructor arguments ``name``'s entrypoint passes to ``module.<creator>``."""
    seen = {}

    def record(variant, pretrained=False, **kwargs):
        seen.update(kwargs)
        raise StopIteration

    original = getattr(module, creator)
    setattr(module, creator, record)
    try:
        timm.models.model_entrypoint(name)()
    except StopIteration:
        pass
    finally:
        setattr(module, creator, original)
    return seen


def conv_widths(name):
    """``{conv module path: out_channels}`` of the model timm builds (pruned models' own widths)."""
    with torch.device("meta"):
        model = timm.create_model(name)
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def tag_entries(name):
    """``{tag: {repo_id, input_size, mean, std, first_conv}}`` of every tag timm lists (its "untrained"
    ones with repo_id None) and the default tag."""
    tags = {}
    for full, cfg in timm.models.get_arch_pretrained_cfgs(name).items():
        tag = full.split(".", 1)[1]
        hub = cfg.hf_hub_id
        if hub and hub.endswith("/"):
            hub = hub + full
        if not (hub or "").startswith("timm/") or cfg.hf_hub_filename:
            hub = None  # not a timm-format model.safetensors repository
        tags[tag] = dict(
            repo_id=hub, input_size=list(cfg.input_size), mean=[float(v) for v in cfg.mean],
            std=[float(v) for v in cfg.std], first_conv=cfg.first_conv,
        )
    return tags, timm.models.get_pretrained_cfg(name).tag
