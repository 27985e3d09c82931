"""timm's VisionTransformers (``tu-vit_*``, DPT's encoders) against SMP's TimmViTEncoder and timm.

Forward parity (features and prefix tokens) on every backend and both data formats for a DINOv2-style
ViT with registers, LayerScale and position embeddings only on the patches, at an input size that
makes timm resample the embedding (``dynamic_img_size``); a plain class-token ViT on the torch
backend. The position-embedding resampling matrices against torch's own ``F.interpolate`` (every
backend: they are keras.ops). Registry against timm's own tables (every name and tag), state_dict
layouts, SMP's argument checks and messages, pretrained weights through the real download code from
an offline hub cache the test writes (timm's load-time resampling and in_channels rule included),
and other architectures refusing ViT names with SMP's error.
"""

import re

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import TimmViTEncoder

import backbones
import keras_seg
from backbones import registry
from backbones.pos_embed import bicubic_matrix, resample_abs_pos_embed
from backbones.vit import VIT_ARCHS, ViTEncoder, get_vit_encoder, vit_encoder_names
from keras_seg.data.preprocessing import get_preprocessing_params
from tests.encoder_conformance import SMP_CLASSES
from tests.parity import BACKEND, image, infer, offline_hub_snapshot, relative_error, to_format, to_nchw
from weight_ports.translate import load_state_dict, state_dict

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: checked on the torch backend")


def randomize_vit(module, seed=0):
    """Give the tensors timm initialises to constants or near-zero (class / register tokens at 1e-6,
    LayerScale gammas at 1e-5, LayerNorms at 1 / 0) values that matter, in place."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("cls_token", "reg_token", "gamma")) or (p.ndim == 1 and "norm" in name):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + (1.0 if name.endswith("norm1.weight") else 0.0))
    return module


def smp_vit(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return randomize_vit(TimmViTEncoder(name, pretrained=False, **kwargs).eval(), seed)


def port(reference, name, data_format, depth=4, output_indices=None, **kwargs):
    encoder = get_vit_encoder(f"tu-{name}", depth=depth, output_indices=output_indices, data_format=data_format, **kwargs)
    load_state_dict(encoder, {k: v.numpy() for k, v in reference.state_dict().items()})
    return encoder


def assert_vit_match(reference, encoder, x_nchw, data_format, tol=1e-4):
    """Features (NCHW) and prefix tokens of ``encoder`` equal SMP's within ``tol`` of their scale."""
    with torch.inference_mode():
        features, prefix = reference(torch.from_numpy(x_nchw))
    expected = [f.numpy() for f in features] + [p.numpy() for p in prefix if p is not None]
    outputs = infer(encoder, to_format(x_nchw, data_format))
    n = len(features)
    actual = [to_nchw(f, data_format) for f in outputs[:n]] + [keras.ops.convert_to_numpy(p) for p in outputs[n:]]
    assert len(actual) == len(expected)
    errors = []
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, (a.shape, e.shape)
        errors.append(relative_error(a, e))
    assert max(errors) < tol, f"{errors} on {BACKEND}/{data_format}"
    return max(errors)


# name, SMP's TimmViTEncoder arguments (depth, output_indices and timm kwargs), input (H, W)
PARITY = {
    # registers + class token, LayerScale, no_embed_class, patch 14; 2x2 -> 3x4 position grid (dynamic)
    "reg4_dinov2_dynamic": ("vit_small_patch14_reg4_dinov2", dict(depth=3, output_indices=[-1, 2, 7], img_size=28, dynamic_img_size=True), (42, 56)),
    # CLIP: pre-norm (no patch-embed bias), LayerNorm eps 1e-5; QuickGELU; a register but no class token; SigLIP's tanh GELU
    "clip_pre_norm": ("vit_xsmall_patch16_clip_224", dict(img_size=32), (32, 32)),
    "clip_quickgelu": ("vit_base_patch32_clip_quickgelu_224", dict(depth=2, img_size=64), (64, 64)),
    "reg1_no_class_token": ("vit_wee_patch16_reg1_gap_256", dict(img_size=32), (32, 32)),
    "siglip_gelu_tanh": ("vit_base_patch32_siglip_gap_256", dict(depth=2, img_size=64), (64, 64)),
    # 4x4 -> 2x3: the antialiased (downscaling) kernel
    "tiny_dynamic_down": ("vit_tiny_patch16_224", dict(depth=2, img_size=64, dynamic_img_size=True), (32, 48)),
}
ALL_BACKENDS = ("reg4_dinov2_dynamic",)


@pytest.mark.parametrize("case", sorted(PARITY))
def test_features_match_smp(case, data_format):
    if case not in ALL_BACKENDS and (BACKEND != "torch" or data_format == "channels_last"):
        pytest.skip("torch backend, channels_first only (CI time); the all-backend case covers both layouts")
    name, kwargs, size = PARITY[case]
    reference = smp_vit(name, **kwargs)
    encoder = port(reference, name, data_format, **kwargs)
    assert encoder.out_channels == reference.out_channels and encoder.output_strides == reference.output_strides
    assert encoder.output_stride == reference.output_stride and encoder.has_prefix_tokens == reference.has_prefix_tokens
    assert assert_vit_match(reference, encoder, image((1, 3, *size)), data_format) < 1e-4


@pytest.mark.parametrize("antialias", [True, False])
def test_resampling_is_torch_bicubic(antialias):
    """The resampling matrices reproduce torch's F.interpolate(bicubic, align_corners=False) on a
    random grid, up and down, and timm's resample_abs_pos_embed with its prefix tokens."""
    rng = np.random.RandomState(0)
    sizes = [((4, 4), (2, 3)), ((2, 2), (3, 5)), ((5, 3), (11, 2)), ((14, 14), (4, 4)), ((3, 3), (3, 3))]
    for (h, w), (new_h, new_w) in sizes if BACKEND == "torch" else sizes[:2]:  # eager JAX compiles every new shape
        grid = rng.randn(1, 6, h, w).astype("float32")
        expected = F.interpolate(torch.from_numpy(grid), size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=antialias).numpy()
        rows, cols = (np.asarray(bicubic_matrix(a, b, antialias)) for a, b in ((h, new_h), (w, new_w)))
        actual = np.einsum("hi,wj,cij->chw", rows, cols, grid[0])[None]
        np.testing.assert_allclose(actual, expected, atol=2e-6)
    pos = rng.randn(1, 2 + 16, 8).astype("float32")
    expected = timm.layers.resample_abs_pos_embed(torch.from_numpy(pos), (3, 5), (4, 4), num_prefix_tokens=2, antialias=antialias)
    actual = resample_abs_pos_embed(pos, (3, 5), (4, 4), 2, antialias)
    np.testing.assert_allclose(np.asarray(actual), expected.numpy(), atol=2e-6)


STRUCTURE_KEYS = ("qkv_bias", "class_token", "no_embed_class", "pre_norm", "final_norm", "fc_norm", "norm_eps", "act_layer",
                  "dynamic_img_size")


@torch_only
def test_registry_matches_timm():
    """Every ViT name: every pretrained tag's hub repository, input size, classes and mean / std are timm's,
    the bare name loads timm's default tag, preprocessing is what SMP's get_preprocessing_params reads
    from timm; the settings of one architecture per kind of structure (the smallest) are those of the
    model timm builds (meta device; all of them were when the table was generated)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "generate_vit_configs.py")
    spec = importlib.util.spec_from_file_location("generate_vit_configs", path)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    names = vit_encoder_names()
    assert len(names) == len(VIT_ARCHS) >= 20 and "tu-vit_base_patch16_224" in names and "tu-vit_small_patch14_reg4_dinov2" in names
    kinds = {}
    for arch, table in sorted(VIT_ARCHS.items(), key=lambda kv: kv[1]["params"]["embed_dim"] * kv[1]["params"]["depth"]):
        p = table["params"]
        kinds.setdefault(tuple(p[k] for k in STRUCTURE_KEYS) + (p["init_values"] is not None, p["reg_tokens"] > 0), arch)
    for arch in kinds.values():
        with torch.device("meta"):
            model = timm.create_model(arch)
        assert generator.unsupported(model) is None, arch
        assert generator.arch_params(model) == VIT_ARCHS[arch]["params"], arch
    for arch, table in VIT_ARCHS.items():
        ours = registry.get_spec(f"tu-{arch}")
        assert ours.pretrained_tag == timm.models.get_pretrained_cfg(arch).tag
        assert sorted(ours.pretrained_weights) == sorted(n.split(".", 1)[1] for n in timm.models.get_arch_pretrained_cfgs(arch))
        for tag, entry in ours.pretrained_weights.items():
            cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}")
            tagged = registry.get_spec(f"tu-{arch}.{tag}")
            assert tagged.pretrained_tag == tag
            if cfg.num_classes is not None and cfg.num_classes >= 0:  # timm's _update_default_model_kwargs
                assert tagged.params["num_classes"] == cfg.num_classes, (arch, tag)
            if cfg.fixed_input_size:
                assert tuple(tagged.params["img_size"]) == tuple(cfg.input_size[-2:]), (arch, tag)
            hub = (cfg.hf_hub_id or "") + (f"{arch}.{tag}" if (cfg.hf_hub_id or "").endswith("/") else "")
            assert entry["repo_id"] == (hub if hub.startswith("timm/") and not cfg.hf_hub_filename else None), (arch, tag)
            if entry["repo_id"]:
                assert get_preprocessing_params(f"tu-{arch}.{tag}") == smp.encoders.get_preprocessing_params(f"tu-{arch}.{tag}")


# One architecture per structure: class token (patch 16 / 8 / 32; 21k classes), no qkv bias (as
# vit_base_patch16_224_miil), LayerScale, registers, CLIP's pre-norm, a pooled head's fc_norm.
LAYOUTS = {
    "tiny_in21k": ("vit_tiny_patch16_224.augreg_in21k", {}), "tiny_no_qkv_bias": ("vit_tiny_patch16_224", dict(qkv_bias=False)),
    "dinov2": ("vit_small_patch14_dinov2", {}), "reg4_dinov2": ("vit_small_patch14_reg4_dinov2", {}),
    "patch8": ("vit_small_patch8_224", {}), "patch32": ("vit_small_patch32_224", {}),
    "clip_pre_norm": ("vit_xsmall_patch16_clip_224", {}), "gap_fc_norm": ("vit_wee_patch16_reg1_gap_256", {}),
}


@torch_only
@pytest.mark.parametrize("case", sorted(LAYOUTS))
def test_state_dict_layout_matches_smp(case):
    """Keys and shapes of SMP's TimmViTEncoder (classifier and final norm included), built on the meta device."""
    name, kwargs = LAYOUTS[case]
    with torch.device("meta"):
        reference = TimmViTEncoder(name, pretrained=False, img_size=32, **kwargs)
    ours = get_vit_encoder(f"tu-{name}", img_size=32, **kwargs)
    assert {k: tuple(v.shape) for k, v in state_dict(ours).items()} == {k: tuple(v.shape) for k, v in reference.state_dict().items()}


def _smp_error(fn):
    try:
        with torch.device("meta"):  # the errors do not depend on weights
            fn()
    except Exception as e:  # noqa: BLE001  (whatever SMP raises is the reference)
        return e
    raise AssertionError("SMP accepted it")


@torch_only
@pytest.mark.parametrize(
    "kwargs",
    [dict(depth=0), dict(depth=13), dict(depth=3, output_indices=[1, 2]), dict(depth=2, output_indices=[3, 12]),
     dict(depth=2, output_indices=[-13, 0]), dict(depth=1, output_indices=5), dict(output_stride=16)],
    ids=["depth0", "depth13", "indices_length", "index_high", "index_low", "indices_type", "output_stride"],
)
def test_argument_errors_are_smps(kwargs):
    expected = _smp_error(lambda: TimmViTEncoder("vit_tiny_patch16_224", pretrained=False, img_size=32, **kwargs))
    with pytest.raises(type(expected)) as raised:
        ViTEncoder("tu-vit_tiny_patch16_224", img_size=32, **kwargs)
    assert str(raised.value) == str(expected)


@torch_only
def test_uniform_indices_and_other_architectures_refuse():
    encoder = ViTEncoder("tu-vit_tiny_patch16_224", depth=3, img_size=32)
    assert encoder.output_indices == TimmViTEncoder("vit_tiny_patch16_224", pretrained=False, depth=3, img_size=32)._output_indices
    for key, cls in SMP_CLASSES.items():  # every other architecture: SMP's TimmUniversalEncoder error
        expected = _smp_error(lambda: getattr(smp, cls)("tu-vit_tiny_patch16_224", encoder_weights=None))
        for name in ("tu-vit_tiny_patch16_224", "tu-vit_tiny_patch16_224.augreg_in21k"):
            with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}"):
                keras_seg.create_model(key, encoder_name=name, encoder_weights=None)
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}"):
        backbones.get_encoder("tu-vit_tiny_patch16_224")
    with pytest.raises(ValueError, match=r"Invalid pretrained tag \(nope\) for vit_tiny_patch16_224"):
        ViTEncoder("tu-vit_tiny_patch16_224.nope")
    with pytest.raises(ValueError, match="not a ViT encoder"):
        ViTEncoder("resnet18")
    with pytest.raises(TypeError, match="Unsupported timm arguments"):
        ViTEncoder("tu-vit_tiny_patch16_224", qk_norm=True)


def write_timm_checkpoint(name, cache, monkeypatch, seed=3):
    """timm's own model ``name`` (random weights, randomised constants) as its hub repository's
    model.safetensors in an offline Hugging Face cache; returns the state_dict."""
    torch.manual_seed(seed)
    model = randomize_vit(timm.create_model(name), seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    snapshot = offline_hub_snapshot(cache, monkeypatch, f"timm/{name}")
    save_file(state, str(snapshot / "model.safetensors"), metadata={"format": "pt"})
    return state


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """``weights`` reads timm's checkpoint (224 px: 14 x 14 positions) through the real download code from an
    offline cache; at img_size 32 the position embedding is resampled at load as timm does, and the
    first conv adapted to in_channels by timm's rule (4 channels here; SMP's rule, shared with every
    family, is tested with the translator). SMP's TimmViTEncoder(pretrained=True) reads the same cache."""
    name = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    write_timm_checkpoint(name, tmp_path, monkeypatch)
    for in_channels in (3, 4):
        reference = TimmViTEncoder(name, pretrained=True, in_channels=in_channels, img_size=32).eval()
        encoder = get_vit_encoder(f"tu-{name}", in_channels=in_channels, weights=True, img_size=32, data_format="channels_first")
        assert_vit_match(reference, encoder, image((1, in_channels, 32, 32)), "channels_first")
    # DPT's encoder_weights (SMP: pretrained=encoder_weights is not None, its default "imagenet") loads the same
    dpt = keras_seg.DPT(f"tu-{name}", img_size=32, decoder_intermediate_channels=(8, 8, 8, 8), decoder_fusion_channels=8)
    smp_dpt = smp.DPT(f"tu-{name}", img_size=32)
    for key in ("encoder.model.patch_embed.proj.weight", "encoder.model.blocks.11.mlp.fc2.weight"):
        np.testing.assert_array_equal(dpt.torch_state_dict()[key], smp_dpt.state_dict()[key].numpy())
    key = "encoder.model.pos_embed"  # resampled 14 x 14 -> 2 x 2 at load: float32 rounding apart
    np.testing.assert_allclose(dpt.torch_state_dict()[key], smp_dpt.state_dict()[key].numpy(), rtol=0, atol=1e-7)
    bare = registry.get_spec("tu-vit_tiny_patch16_224")  # the default tag: the same repository
    assert bare.pretrained_weights[bare.pretrained_tag]["repo_id"] == f"timm/{name}"
    with pytest.raises(ValueError, match="No pretrained weights exist for vit_small_patch16_36x1_224.untrained"):
        get_vit_encoder("tu-vit_small_patch16_36x1_224", weights=True, img_size=32)
