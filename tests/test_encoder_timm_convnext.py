"""timm's convnext module as native ``tu-`` encoders (backbones.timm_convnext) against SMP's TimmUniversalEncoder.

SMP treats ConvNeXt as transformer-style (first feature at stride 4): out_channels ``[3, 0, ...]`` and its
0-channel stride-2 dummy. References have every 1-D parameter randomised (norm weights / biases, the layer-scale
``gamma`` timm starts at 1e-6, ConvNeXt-V2's GRN that starts at zero), or the blocks would be near identities.
All backends: tu-test_convnext (Linear MLP on channels-last maps, tanh GELU, eps 1e-5, gamma), tu-convnext_zepto_rms_ols
(1x1-conv MLP, SimpleNorm, 'overlap_act' stem) cut to one block per stage with GRN added, at output_stride 8.
Torch backend: a sample covering every stem, norm (LayerNorm, RmsNorm2d, SimpleNorm2d), MLP form with and
without GRN in both data formats, exact GELU / SiLU, per-stage kernel sizes (heavy members cut to one block per
stage on both sides through timm's own ``depths`` argument, or stems / GRN swapped into tu-test_convnext2 on both
sides), output_stride 16 / 8, depths 1 and 3 (timm's features_only truncation: depth 1 keeps the first stem conv
only), an SMP Unet ported and saved back, and for every one of the 31 names the
state_dict keys / shapes and out_channels of SMP's encoder (timm on the meta device). Pretrained loading reads
an offline hub cache written from timm's own model (full-model ``stem.0`` / ``stages.0`` keys, which the
features_only model flattens), in_channels 4 by timm's rule.
"""

import dataclasses
import os
import sys

import keras
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from safetensors.torch import save_file
from timm.models import convnext as timm_convnext

import backbones
from backbones.registry import ENCODERS
from backbones.timm_configs.convnext import CONVNEXT_MODELS
from tests.encoder_conformance import assert_timm_registry_matches, assert_features_match, layout, port_smp_encoder, smp_encoder
from tests.parity import (
    BACKEND, assert_state_dicts_identical, image, offline_hub_snapshot, relative_error, run_keras, run_smp, smp_model, to_keras,
)

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")
ONE_BLOCK = [1, 1, 1, 1]


def randomize(module, seed=0):
    """Every 1-D parameter off its init (in place): weights / gammas in [0.5, 1), biases in [-0.2, 0.2)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1:
                r = torch.rand(p.shape, generator=gen)
                p.copy_(r * 0.4 - 0.2 if name.endswith("bias") else r * 0.5 + 0.5)
    return module


def _ours(name, params):
    """The registered name, or ``<name>-cut`` with ``params`` over its spec's (the caller pops it)."""
    if not params:
        return name
    spec = ENCODERS[name]
    ENCODERS[f"{name}-cut"] = dataclasses.replace(spec, name=f"{name}-cut", params={**spec.params, **params})
    return f"{name}-cut"


def assert_matches_smp(name, size=(32, 32), data_format="channels_last", depths=None, variant=None, **kwargs):
    """Features of ``name`` equal SMP's TimmUniversalEncoder's (timm random weights, 1-D parameters randomised),
    both cut to ``depths`` blocks per stage when given (timm's ``depths`` argument; our spec's param);
    ``variant`` is ``(timm kwargs, our params)`` changing both alike (e.g. another stem)."""
    timm_kwargs, params = variant or ({}, {})
    if depths:
        timm_kwargs, params = {**timm_kwargs, "depths": tuple(depths)}, {**params, "depths": list(depths)}
    reference = randomize(smp_encoder(name, weights=None, **timm_kwargs, **kwargs))
    try:
        encoder = port_smp_encoder(reference, _ours(name, params), data_format, **kwargs)
        assert encoder.out_channels == list(reference.out_channels)
        assert encoder.output_stride == reference.output_stride
        assert_features_match(reference, encoder, image((2, 3, *size)), data_format)
    finally:
        ENCODERS.pop(f"{name}-cut", None)


def _both(**kwargs):
    """A variant changing timm's constructor argument and our param alike."""
    return kwargs, kwargs


@pytest.mark.parametrize("name, data_format, depths, variant, output_stride", [
    ("tu-test_convnext", "channels_first", None, None, 32),
    ("tu-convnext_zepto_rms_ols", "channels_last", ONE_BLOCK, _both(use_grn=True), 8),
])
def test_features_match_smp(name, data_format, depths, variant, output_stride):
    """The kit's ChannelScale (gamma), RmsNorm (SimpleNorm2d), GlobalResponseNorm (on NCHW maps) and dilated depthwise
    convs on every backend: tu-test_convnext as is, tu-convnext_zepto_rms_ols one block per stage with GRN (timm's
    ``use_grn``) added, at output_stride 8 (stages 2 / 3 dilated 2 / 4, their downsample a 2x2 stride-1 conv with
    timm's 'same' padding: Conv2dSame's bottom / right pixel at dilation 1, symmetric at dilation 2)."""
    assert_matches_smp(name, (64, 48), data_format, depths, variant, output_stride=output_stride)


# case -> (name, blocks per stage or None for all, data format, variant, what it covers). Covered elsewhere: exact GELU,
# SimpleNorm2d and GRN on NCHW maps (test_features_match_smp), the patch stem with LayerNorm2d (test_dilation_matches_smp).
TORCH_SAMPLE = {
    "overlap_tiered": ("tu-test_convnext2", None, "channels_first", _both(stem_type="overlap_tiered"),
                       "convnext_*_ols's stem (make_divisible(dims[0] / 2))"),
    "overlap": ("tu-test_convnext2", None, "channels_last", _both(stem_type="overlap"), "convnext_nano_ols's stem"),
    "atto_rms": ("tu-convnext_atto_rms", ONE_BLOCK, "channels_first", None, "RmsNorm2d"),
    "grn_linear": ("tu-test_convnext2", None, "channels_first", _both(use_grn=True),
                   "GRN on channels-last maps (convnextv2_tiny ... huge's Linear MLP)"),
    "test3": ("tu-test_convnext3", None, "channels_last", None, "kernel sizes (7, 5, 5, 3), SiLU"),
}


@pytest.mark.parametrize("case", sorted(TORCH_SAMPLE))
@torch_only
def test_sample_matches_smp(case):
    name, depths, data_format, variant, _ = TORCH_SAMPLE[case]
    assert_matches_smp(name, data_format=data_format, depths=depths, variant=variant)


@pytest.mark.parametrize("name, output_stride, data_format, depths", [
    ("tu-test_convnext3", 16, "channels_last", None), ("tu-convnext_atto", 8, "channels_first", ONE_BLOCK),
    ("tu-test_convnext2", 8, "channels_last", None),
])
@torch_only
def test_dilation_matches_smp(name, output_stride, data_format, depths):
    """Stage 3 dilated 2 (output_stride 16, Linear MLP); stages 2 / 3 dilated 2 / 4 (8: 1x1-conv MLP, LayerNorm2d;
    Linear MLP)."""
    assert_matches_smp(name, (48, 32), data_format, depths, output_stride=output_stride)


@pytest.mark.parametrize("depth", [1, 3])
@torch_only
def test_depths(depth):
    """timm's features_only model ends at the last feature taken (depth 1: the stem's first conv, unused):
    the state_dict loads strictly at every depth."""
    assert_matches_smp("tu-test_convnext2", depth=depth)


def _cut(name):
    """Blocks per stage the layout check builds: all of the test models (test_convnext: 1, 2, 4, 2), one per stage
    of the others (a stage repeats one block; every block of every model is in the sweep, scripts/timm_sweep.py)."""
    return None if sum(CONVNEXT_MODELS[name]["params"]["depths"]) <= 9 else ONE_BLOCK


@pytest.mark.parametrize("name", sorted(CONVNEXT_MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name):
    """Every name: SMP's tu- encoder's state_dict keys and shapes (timm's features_only model, meta device)
    and out_channels, models cut by ``_cut`` on both sides."""
    depths = _cut(name)
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(f"tu-{name}", weights=None, **({"depths": tuple(depths)} if depths else {}))
    ours = _ours(f"tu-{name}", {"depths": depths} if depths else None)
    try:
        with keras.device("meta"):
            shapes = layout(backbones.get_encoder(ours))
    finally:
        ENCODERS.pop(f"tu-{name}-cut", None)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert sorted(set(shapes) ^ set(theirs)) == []
    assert shapes == theirs
    assert list(ENCODERS[f"tu-{name}"].out_channels) == list(reference.out_channels)


@torch_only
def test_registry_matches_timm():
    """Every name and tag: hub repository, timm's default tag, the first conv (as the features_only model
    names it), preprocessing equal to SMP's get_preprocessing_params; the table is what the generator derives now."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from timm_tables import captured_args
    from timm_tables import convnext as generator

    for name in ("convnext_atto_rms", "convnext_zepto_rms_ols", "convnextv2_tiny", "convnext_xxlarge", "test_convnext3"):
        assert generator.convnext_params(captured_args(name, timm_convnext, "_create_convnext")) == CONVNEXT_MODELS[name]["params"]
    assert_timm_registry_matches(CONVNEXT_MODELS, flattened=("stem", "stages"))


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """encoder_weights loads timm's checkpoint of the default tag from an offline cache through the real download
    code: full-model keys flattened as the features_only model names them, head dropped, stem_0 adapted by timm's
    adapt_input_conv for 4 channels (its 1-channel branch: test_encoder_timm_resnet), depth 3 drops stages 2 / 3.
    SMP reads the same cache."""
    torch.manual_seed(3)
    model = randomize(timm.create_model("test_convnext2"), seed=3)
    snapshot = offline_hub_snapshot(tmp_path, monkeypatch, "timm/test_convnext2.r160_in1k")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"), metadata={"format": "pt"})
    assert ENCODERS["tu-test_convnext2"].pretrained_tag == "r160_in1k"
    reference = smp.encoders.get_encoder("tu-test_convnext2", in_channels=4, depth=3, weights=True).eval()
    encoder = backbones.get_encoder("tu-test_convnext2", in_channels=4, depth=3, weights=True)
    assert_features_match(reference, encoder, image((1, 4, 32, 32)), "channels_last")


@torch_only
def test_unet_round_trip(tmp_path):
    """An SMP Unet on a tu- ConvNeXt (the 0-channel stride-2 skip of transformer-style encoders) ported through
    SMP's save_pretrained has SMP's outputs; written back, SMP loads it bit for bit."""
    reference = smp_model("Unet", encoder_name="tu-test_convnext2", classes=2, decoder_channels=(32, 16, 16, 8, 8))
    randomize(reference.encoder)
    model = to_keras(reference, "channels_first")
    x = image((1, 3, 32, 32))
    expected, actual = run_smp(reference, x)[0], run_keras(model, x, "channels_first")[0]
    assert actual.shape == expected.shape == (1, 2, 32, 32) and relative_error(actual, expected) < 1e-4
    model.save_pretrained(tmp_path / "for_smp")
    assert_state_dicts_identical(smp.from_pretrained(str(tmp_path / "for_smp")).state_dict(), reference.state_dict())
