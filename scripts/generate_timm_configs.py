"""Write backbones/timm_configs/<module>.py from timm's model registry (a developer tool, run once
when timm changes: ``.venv/bin/python scripts/generate_timm_configs.py``).

For every model a ported timm module registers (``timm.list_models(module=...)``), the constructor
arguments its entrypoint passes (captured, not guessed: the entrypoint runs with ``_create_<module>``
replaced by a recorder) in a JSON-ready form, the widths of a pruned model's convs (timm adapts those
from a file), and every pretrained tag timm lists (hub repository, input size, mean / std, first conv).
timm is needed here only; keras-seg reads the generated tables.
"""

import functools
import os
import pprint

import timm
import torch
from timm.layers import BlurPool2d, EcaModule, SEModule
from timm.models import resnet as timm_resnet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.path.join(ROOT, "backbones", "timm_configs")
BLOCKS = {timm_resnet.BasicBlock: "basic", timm_resnet.Bottleneck: "bottleneck"}
# ResNet constructor arguments that change nothing at inference (or only the classifier).
INFERENCE_NEUTRAL = ("num_classes", "drop_rate", "drop_path_rate", "drop_block_rate", "zero_init_last", "global_pool")


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
    blocks = [BLOCKS[b] for b in block] if isinstance(block, (list, tuple)) else [BLOCKS[block]] * len(layers)
    block_args = dict(kwargs.pop("block_args", None) or {})
    attn = _attention(block_args.pop("attn_layer", None))
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
    pruned = kwargs.pop("pruned", False)
    for k in INFERENCE_NEUTRAL:
        kwargs.pop(k, None)
    assert not kwargs, kwargs
    return params, pruned


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


def resnet_table():
    table = {}
    for name in timm.list_models(module="resnet"):
        params, pruned = resnet_params(captured_args(name, timm_resnet, "_create_resnet"))
        if pruned:
            params["widths"] = conv_widths(name)
        tags, default = tag_entries(name)
        table[name] = dict(params=params, tags=tags, default_tag=default)
    return table


HEADER = '''"""timm's {module} models that backbones.timm_{module} builds, generated from timm {version} by
scripts/generate_timm_configs.py (do not edit by hand).

{const}: ``{{name: {{'params': the builder's settings (timm's constructor arguments), 'default_tag': the
tag of the bare name (timm's; 'untrained' ones have no weights), 'tags': {{tag: {{'repo_id', 'input_size', 'mean', 'std',
'first_conv'}}}}}}}}``.
"""

TIMM_VERSION = {version!r}

'''


def write(module, const, table):
    path = os.path.join(TARGET_DIR, f"{module}.py")
    text = HEADER.format(module=module, const=const, version=timm.__version__)
    text += f"{const} = " + pprint.pformat(table, width=120, sort_dicts=True) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    print(f"{path}: {len(table)} models")


def main():
    write("resnet", "RESNET_MODELS", resnet_table())


if __name__ == "__main__":
    main()
