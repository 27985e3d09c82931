"""Write backbones/vit_configs.py from timm's vision_transformer registry (a developer tool, run once
when timm changes: ``.venv/bin/python scripts/generate_vit_configs.py``).

Every ``vit_*`` architecture of ``timm.models.vision_transformer`` built only from the pieces
``backbones.vit`` implements (pre-norm ``Block``s of ``Attention`` + ``Mlp`` with GELU or QuickGELU,
LayerScale, LayerNorm, class / register tokens, a learned position embedding, no attention pooling)
is kept with its constructor settings (read from the model timm builds, on the meta device) and
every pretrained tag timm lists for it (hub repository, input size, classes, mean / std).
timm is needed here only; keras-seg reads the generated table.
"""

import os
import pprint

import torch
import timm
from timm.layers import Attention, DropPath, GELUTanh, LayerNorm, LayerScale, Mlp, PatchEmbed, QuickGELU
from timm.models import vision_transformer as vt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "backbones", "vit_configs.py")
SUPPORTED = (vt.VisionTransformer, PatchEmbed, torch.nn.Conv2d, torch.nn.Identity, torch.nn.Dropout, torch.nn.Sequential,
             vt.Block, Attention, LayerNorm, torch.nn.Linear, torch.nn.GELU, GELUTanh, QuickGELU, Mlp, LayerScale, DropPath)


# Families whose timm checkpoints need more than checkpoint_filter_fn's bicubic position-embedding resampling
# (RADIO: bilinear resampling of a 128 x 128 grid; TIPSv2: converted from a multimodal checkpoint at load).
EXCLUDED = ("radio", "tipsv2")


def unsupported(model):
    """Why ``model`` is outside what backbones.vit builds (None when it is inside)."""
    kinds = {type(m) for m in model.modules()}
    if not all(k in SUPPORTED for k in kinds):
        return f"modules {sorted(k.__name__ for k in kinds if k not in SUPPORTED)}"
    if model.pos_embed is None or model.attn_pool is not None:
        return "no learned position embedding / attention pooling"
    block = model.blocks[0]
    if not isinstance(block.attn.q_norm, torch.nn.Identity) or not isinstance(block.attn.norm, torch.nn.Identity):
        return "qk / scale norm"
    if block.attn.gate is not None or block.attn.head_dim * block.attn.num_heads != model.embed_dim:
        return "gated attention / head dim"
    if not isinstance(model.patch_embed.norm, torch.nn.Identity) or model.patch_embed.dynamic_img_pad:
        return "patch-embed norm / padding"
    if not isinstance(block.mlp.norm, torch.nn.Identity) or block.mlp.fc2.bias is None or block.attn.proj.bias is None:
        return "mlp norm / projection without bias"
    if len(set(model.patch_embed.patch_size)) != 1:
        return "non-square patches"
    return None


def _activation(act):
    """backbones.vit's name of the Mlp activation: exact GELU, tanh-approximated GELU or QuickGELU."""
    if isinstance(act, QuickGELU):
        return "quick_gelu"
    if isinstance(act, GELUTanh) or getattr(act, "approximate", "none") == "tanh":
        return "gelu_tanh"
    return "gelu"


def arch_params(model):
    """The settings backbones.vit builds from (timm's constructor arguments, as built)."""
    block = model.blocks[0]
    hidden = block.mlp.fc1.out_features
    ratio = hidden / model.embed_dim
    assert int(model.embed_dim * ratio) == hidden
    ls = block.ls1
    return dict(
        patch_size=model.patch_embed.patch_size[0],
        embed_dim=model.embed_dim,
        depth=len(model.blocks),
        num_heads=block.attn.num_heads,
        mlp_ratio=ratio,
        qkv_bias=block.attn.qkv.bias is not None,
        init_values=ls.init_values if isinstance(ls, LayerScale) else None,
        class_token=model.cls_token is not None,
        reg_tokens=model.num_reg_tokens,
        no_embed_class=model.no_embed_class,
        pre_norm=not isinstance(model.norm_pre, torch.nn.Identity),
        final_norm=not isinstance(model.norm, torch.nn.Identity),
        fc_norm=not isinstance(model.fc_norm, torch.nn.Identity),
        norm_eps=block.norm1.eps,
        act_layer=_activation(block.mlp.act),
        dynamic_img_size=bool(model.dynamic_img_size),
        img_size=list(model.patch_embed.img_size),
        num_classes=model.num_classes,
    )


def _structure(params):
    return {k: v for k, v in params.items() if k not in ("img_size", "num_classes")}


def tag_entry(name, cfg, model):
    """What differs between the tags of one architecture: weights, input size, classes, preprocessing."""
    hub = cfg.hf_hub_id
    if hub and hub.endswith("/"):
        hub = hub + name
    if not (hub or "").startswith("timm/") or cfg.hf_hub_filename:
        hub = None  # not a timm-format model.safetensors repository (e.g. an open_clip checkpoint)
    return dict(
        repo_id=hub or None,
        params=dict(img_size=list(model.patch_embed.img_size), num_classes=model.num_classes),
        input_size=list(cfg.input_size),
        fixed_input_size=bool(cfg.fixed_input_size),
        mean=[float(v) for v in cfg.mean],
        std=[float(v) for v in cfg.std],
    )


def main():
    archs, skipped = {}, {}
    for arch in timm.list_models("vit_*", module="vision_transformer"):
        if any(e in arch for e in EXCLUDED):
            skipped[arch] = "checkpoint conversion beyond checkpoint_filter_fn's resampling"
            continue
        with torch.device("meta"):
            model = timm.create_model(arch)
        reason = unsupported(model)
        if reason:
            skipped[arch] = reason
            continue
        params = arch_params(model)
        tags = {}
        default = timm.models.get_pretrained_cfg(arch).tag
        for name, cfg in timm.models.get_arch_pretrained_cfgs(arch).items():
            tag = name.split(".", 1)[1]
            with torch.device("meta"):
                tagged = timm.create_model(name)
            if unsupported(tagged) or _structure(arch_params(tagged)) != _structure(params):
                skipped[name] = "a tag with another structure"
                continue
            tags[tag] = tag_entry(name, cfg, tagged)
        archs[arch] = dict(params=params, default_tag=default if default in tags else None, tags=tags)
    text = (
        '"""timm\'s VisionTransformer architectures and pretrained tags that backbones.vit builds, generated from\n'
        f'timm {timm.__version__} by scripts/generate_vit_configs.py (do not edit by hand).\n\n'
        "VIT_ARCHS: ``{arch: {'params': constructor settings, 'default_tag': the tag of the bare name,\n"
        "'tags': {tag: {'repo_id', 'params' (img_size, num_classes), 'input_size', 'fixed_input_size',\n"
        "'mean', 'std'}}}}``.\n"
        '"""\n\n'
        f"TIMM_VERSION = {timm.__version__!r}\n\n"
        f"VIT_ARCHS = {pprint.pformat(archs, width=120, sort_dicts=True)}\n"
    )
    with open(TARGET, "w") as f:
        f.write(text)
    print(f"{len(archs)} architectures, {sum(len(a['tags']) for a in archs.values())} tags -> {TARGET}")
    for name, reason in sorted(skipped.items()):
        print(f"skipped {name}: {reason}")


if __name__ == "__main__":
    main()
