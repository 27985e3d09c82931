"""timm's cspnet module as native ``tu-`` encoders (backbones.timm_cspnet) against SMP's TimmUniversalEncoder.

All backends: features of tu-cs3darknet_focus_s (focus stem, cs3 stages, SiLU) and tu-darknet17 (VGG style:
the stride-1 stem tap first, dark stages, leaky ReLU) at depth 3, and a dilated (output_stride 8, depth 4)
tu-cspresnet50 (csp stages, bottle blocks, max-pool stem, a stride-1 first stage), one block per stage.
Torch backend: a sample covering every stem, stage kind (csp / cs3 / dark), block kind (bottle / dark / edge),
grouped and depthwise 3x3s, SE (1/16 and 0.25, the model's activation inside), avg-pool downsampling,
down_growth and cross_linear (heavy members cut to one block per stage on both sides through timm's own
``stages`` config); output_stride 16 / 8 on cs3 and dark stages; depth 1 (parity) and 1..4 (layouts) of
both feature styles; for every one of the 23 names the state_dict keys / shapes, out_channels and feature_info
of SMP's encoder (timm on the meta device). Pretrained loading reads an offline hub cache written from timm's
own model (full-model keys, which the features_only model flattens), in_channels 1 / 4 by timm's rule. An SMP
Unet on the VGG-style tu-darknet17 ports and round-trips through save_pretrained.
"""

import dataclasses
import os
import sys

import keras
import pytest
import segmentation_models_pytorch as smp
import torch
from timm.models import cspnet as timm_cspnet

import backbones
from backbones import timm_cspnet as ours_cspnet
from backbones.registry import ENCODERS
from backbones.timm_configs.cspnet import CSPNET_MODELS
from tests import test_encoder_timm_resnet as timm_resnet_tests
from tests.encoder_conformance import assert_timm_registry_matches, assert_features_match, layout
from tests.parity import BACKEND, assert_parity, assert_state_dicts_identical, image, smp_model

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")


def _cut_specs(name, blocks):
    """timm kwargs and our spec's params with ``blocks`` blocks in every stage (None: the model as is)."""
    if blocks is None:
        return {}, None
    stages = timm_cspnet.model_cfgs[name[3:]].stages
    depth = [blocks] * len(stages.depth)
    return {"stages": dataclasses.replace(stages, depth=tuple(depth))}, {"stages": {**ENCODERS[name].params["stages"], "depth": depth}}


def assert_matches_smp(name, size=(32, 32), data_format="channels_last", blocks=None, **kwargs):
    """Features of ``name`` equal SMP's TimmUniversalEncoder's (the resnet tests' check), both cut to ``blocks``
    blocks per stage when given (timm's ``stages`` config; our spec's param)."""
    timm_kwargs, params = _cut_specs(name, blocks)
    timm_resnet_tests.assert_matches_smp(name, size, data_format, variant=(timm_kwargs, params) if params else None, **kwargs)


@pytest.mark.parametrize("name, data_format, depth", [
    ("tu-cs3darknet_focus_s", "channels_last", 3), ("tu-darknet17", "channels_first", 3),
])
def test_features_match_smp(name, data_format, depth):
    """One block per stage (darknet17 has one), depth 3 (CI time on TF / JAX, whose compile time grows with the
    graph; every stage on torch: the sample, the layouts and scripts/timm_sweep.py)."""
    assert_matches_smp(name, (48, 32), data_format, blocks=1, depth=depth)


def test_dilated_features_match_smp():
    """output_stride 8 at depth 4: stage 2 dilated 2, its conv_down at stride 1 (dilation 4 on torch below)."""
    assert_matches_smp("tu-cspresnet50", (40, 32), blocks=1, depth=4, output_stride=8)


# name -> (depth, what it covers beyond the all-backend tests and the dilation cases); one block per stage,
# depth 4 leaves out the widest stage where it repeats the one before.
TORCH_SAMPLE = {
    "tu-cspresnet50d": (4, "three-conv stem, its last conv the stem tap, then the max-pool"),
    "tu-cspresnext50": (4, "grouped 3x3s (32) in blocks and conv_down, block_ratio 0.5"),
    "tu-cspdarknet53": (4, "csp stages with dark blocks, down_growth, per-stage ratios, VGG style"),
    "tu-sedarknet21": (4, "SE with leaky ReLU in dark blocks (its five default taps, SMP asks six: the layouts)"),
    "tu-cs3sedarknet_xdw": (4, "depthwise 3x3s (groups = channels) in bottle blocks and conv_down, SE on attn2"),
    "tu-cs3se_edgenet_x": (4, "edge blocks with SE rd_ratio 0.25 and SiLU"),
}


@pytest.mark.parametrize("name", sorted(TORCH_SAMPLE))
@torch_only
def test_sample_matches_smp(name):
    assert_matches_smp(name, blocks=1, depth=TORCH_SAMPLE[name][0])


@pytest.mark.parametrize("name, output_stride, depth", [
    ("tu-cs3darknet_s", 8, 5), ("tu-cs3darknet_focus_s", 16, 5), ("tu-darknetaa53", 8, 4),
])
@torch_only
def test_dilation_matches_smp(name, output_stride, depth):
    """timm's create_csp_stages dilation on cs3 stages (dilation 2 and 4, first_dilation 1 and 2) and dark stages
    of the VGG style (the avg-pool downsampling skipped at stride 1)."""
    assert_matches_smp(name, (48, 32), blocks=1, output_stride=output_stride, depth=depth)


@pytest.mark.parametrize("name", ["tu-cspresnet50", "tu-darknet17"])
@torch_only
def test_depth_1(name):
    """timm's features_only model ends at the last feature taken (cspresnet50: the stem conv before its max-pool;
    VGG style: depth + 1 taps, no input): the state_dict loads strictly. Depths 2..4: the layouts below, and
    depth 3 / 4 parity in the cases above."""
    assert_matches_smp(name, blocks=1, depth=1)


@pytest.mark.parametrize("name", ["tu-cspresnet50", "tu-darknet17"])
@torch_only
def test_depth_layouts(name):
    for depth in (1, 2, 3, 4):
        assert_layout_matches_smp(name, depth=depth)


def _blocks(name):
    """Blocks per stage the layout check builds: all of small models, one of the others (the sweep,
    scripts/timm_sweep.py, checks every name at full depth)."""
    return None if sum(CSPNET_MODELS[name[3:]]["params"]["stages"]["depth"]) <= 8 else 1


def assert_layout_matches_smp(name, **kwargs):
    """SMP's tu- encoder's state_dict keys and shapes (timm's features_only model, meta device) and out_channels,
    both cut as ``_blocks`` says; returns SMP's encoder."""
    timm_kwargs, params = _cut_specs(name, _blocks(name))
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None, **timm_kwargs, **kwargs)
    if params:
        ENCODERS[f"{name}-cut"] = dataclasses.replace(ENCODERS[name], name=f"{name}-cut", params={**ENCODERS[name].params, **params})
    with keras.device("meta"):
        try:
            encoder = backbones.get_encoder(f"{name}-cut" if params else name, **kwargs)
        finally:
            ENCODERS.pop(f"{name}-cut", None)
    ours, theirs = layout(encoder), {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs
    assert encoder.out_channels == list(reference.out_channels)
    return reference


@pytest.mark.parametrize("name", sorted(CSPNET_MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name):
    """Every name: the layout and out_channels of SMP's encoder, and timm's feature_info (channels and
    reductions of every tap: SMP's feature style, traditional or VGG) of the model: at depth 5 SMP's
    features_only model takes every tap (six for the DarkNets, sedarknet21's default five included)."""
    info = assert_layout_matches_smp(f"tu-{name}").model.feature_info
    assert ours_cspnet.feature_info(ENCODERS[f"tu-{name}"].params) == (info.channels(), info.reduction())


@torch_only
def test_registry_matches_timm():
    """Every name and tag: the hub repository, timm's default tag, the first conv (as the features_only
    model names it) and preprocessing equal to what SMP's get_preprocessing_params reads from timm; the
    generated table is what the generator derives from timm now."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from timm_tables import cspnet as generator

    for name in CSPNET_MODELS:
        assert generator.cspnet_params(name) == CSPNET_MODELS[name]["params"], name
    assert_timm_registry_matches(CSPNET_MODELS, flattened=("stem", "stages"))



@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """encoder_weights loads timm's checkpoint (full-model keys: stem.conv1, stages.0 ...) of the default tag from
    an offline cache through the real download code; classifier dropped, the focus stem's 6x6 first conv adapted
    by timm's adapt_input_conv for 1 and 4 channels; depths 4 / 2 drop the stages past them. SMP reads the same cache."""
    timm_resnet_tests.write_timm_checkpoint("cs3darknet_focus_s.ra4_e3600_r256_in1k", tmp_path, monkeypatch)
    for in_channels, depth in ((1, 4), (4, 2)):
        reference = smp.encoders.get_encoder("tu-cs3darknet_focus_s", in_channels=in_channels, depth=depth, weights=True).eval()
        encoder = backbones.get_encoder("tu-cs3darknet_focus_s", in_channels=in_channels, depth=depth, weights=True)
        assert_features_match(reference, encoder, image((1, in_channels, 32, 32)), "channels_last")


@torch_only
def test_vgg_style_unet_round_trips(tmp_path):
    """An SMP Unet on tu-darknet17 (VGG style: the decoder's last skip is the encoder's own stride-1 feature) at
    depth 4 ports with SMP's outputs; saved back with save_pretrained, SMP loads it bit for bit."""
    reference = smp_model("Unet", encoder_name="tu-darknet17", classes=2, encoder_depth=4, decoder_channels=(32, 16, 16, 8))
    model = assert_parity(reference, image((1, 3, 32, 32)), "channels_first")
    model.save_pretrained(tmp_path / "for_smp")
    assert_state_dicts_identical(smp.from_pretrained(str(tmp_path / "for_smp")).state_dict(), reference.state_dict())
