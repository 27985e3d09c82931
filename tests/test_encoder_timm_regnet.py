"""timm's regnet module as native ``tu-`` encoders (backbones.timm_regnet) against SMP's TimmUniversalEncoder.

All backends: features of a cut tu-regnetx_002 (RegNet-X, grouped bottlenecks; channels_last) and a dilated
(output_stride 8) tu-regnety_002 with regnetv_064's options (pre-activation, SiLU, SE, average-pool shortcuts,
timm's AvgPool2dSame once dilated; channels_first).
Torch backend: plain regnety_002 and a full-depth regnetx_002 (channels_first), a sample covering every cfg option (GroupNorm + SiLU, pre-activation with 1x1 shortcuts,
RegNet-Z's bottle ratio 4 without first-block shortcuts and linear outputs, torchvision width rounding),
models cut to six blocks of their own stage widths and / or given another model's options (``cut_model``:
timm's own ``model_cfgs`` entry replaced on the SMP side, the same params on ours), output_stride 16 / 8,
depths 1..4, the deprecated ``timm-regnet*`` names, and for every one of the 36 names the per-stage widths /
depths / groups timm derives, the state_dict keys / shapes and out_channels of SMP's encoder (timm on the
meta device). Pretrained loading reads an offline hub cache written from timm's own model, in_channels 1 / 4
by timm's rule.
"""

import dataclasses
import functools
import os
import sys

import keras
import pytest
import segmentation_models_pytorch as smp
import torch
from timm.layers import GroupNormAct
from timm.models import regnet as timm_regnet

import backbones
from backbones import registry
from backbones.registry import ENCODERS
from backbones.timm_configs.regnet import REGNET_MODELS
from backbones.timm_regnet import feature_info, stage_settings
from tests.encoder_conformance import assert_timm_registry_matches, assert_features_match, layout, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image
from tests.test_encoder_timm_resnet import write_timm_checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
from timm_tables import regnet as generator  # noqa: E402

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")
# name -> the width slope ``wa`` of a six-block cut of the model (timm's ``depth`` 6): stages of 1, 1, 2, 2 blocks
# with the model's own stage widths and group sizes (test_stage_settings_are_timms), at a fraction of the build time.
CUT_WA = {
    'regnetv_040': 156.5, 'regnetv_064': 189.5, 'regnetx_002': 53.0, 'regnetx_004': 56.0, 'regnetx_004_tv': 56.0,
    'regnetx_006': 78.5, 'regnetx_008': 96.0, 'regnetx_016': 132.0, 'regnetx_032': 145.5, 'regnetx_040': 197.0,
    'regnetx_064': 238.0, 'regnetx_080': 262.0, 'regnetx_120': 321.5, 'regnetx_160': 291.5, 'regnetx_320': 373.0,
    'regnety_002': 53.0, 'regnety_004': 64.0, 'regnety_006': 86.5, 'regnety_008': 111.0, 'regnety_008_tv': 111.0,
    'regnety_016': 125.5, 'regnety_032': 211.0, 'regnety_040': 156.5, 'regnety_040_sgn': 156.5, 'regnety_064': 189.5,
    'regnety_080': 293.0, 'regnety_080_tv': 293.0, 'regnety_120': 321.5, 'regnety_1280': 1035.5, 'regnety_160': 434.5,
    'regnety_2560': 1469.5, 'regnety_320': 533.0, 'regnety_640': 697.5, 'regnetz_005': 36.0, 'regnetz_040': 77.0,
    'regnetz_040_h': 77.0,
}
CUT_DEPTHS = [1, 1, 2, 2]


def cut_model(name, monkeypatch, cut=True, **fields):
    """Register ``tu-<name>-cut``: timm's ``model_cfgs`` entry of ``name`` (SMP's side, ``tu-<name>``) and our
    params alike with RegNetCfg ``fields`` replaced, and (``cut``) six blocks of the model's own stage widths."""
    if cut:
        fields = {"depth": 6, "wa": CUT_WA[name], **fields}
    cfg = dataclasses.replace(timm_regnet.model_cfgs[name], **fields)
    monkeypatch.setitem(timm_regnet.model_cfgs, name, cfg)
    params = generator.regnet_params(cfg)
    out_channels = [3] + feature_info(params)[0]
    spec = dataclasses.replace(ENCODERS[f"tu-{name}"], name=f"tu-{name}-cut", params=params, out_channels=out_channels)
    monkeypatch.setitem(ENCODERS, spec.name, spec)
    return spec.name


def assert_matches_smp(name, monkeypatch=None, size=(48, 32), data_format="channels_last", cut=False, fields=None, **kwargs):
    """Features of ``name`` equal SMP's TimmUniversalEncoder's (timm random weights, BatchNorms randomised),
    both cut to six blocks and / or with other RegNetCfg ``fields`` (``cut_model``)."""
    ours = cut_model(name[len("tu-"):], monkeypatch, cut, **(fields or {})) if cut or fields else name
    reference = smp_encoder(name, weights=None, **kwargs)
    encoder = port_smp_encoder(reference, ours, data_format, **kwargs)
    assert encoder.out_channels == list(reference.out_channels)
    assert encoder.output_stride == reference.output_stride
    assert_features_match(reference, encoder, image((2, 3, *size)), data_format)


@pytest.mark.parametrize("name, data_format, cut", [
    ("tu-regnetx_002", "channels_last", True), pytest.param("tu-regnety_002", "channels_first", True, marks=torch_only),
    pytest.param("tu-regnetx_002", "channels_first", False, marks=torch_only),  # full depth: 1, 1, 4, 7 blocks
])
def test_features_match_smp(name, data_format, cut, monkeypatch):
    assert_matches_smp(name, monkeypatch, data_format=data_format, cut=cut)


PREACT_AVG = dict(preact=True, act_layer="silu", downsample="avg")  # regnetv_064's options
GROUP_NORM = dict(act_layer="silu", norm_layer=functools.partial(GroupNormAct, group_size=8))  # regnety_040_sgn's, by 8


def test_dilated_preact_matches_smp(monkeypatch):
    """output_stride 8 on a pre-activation RegNet-V with avg-pool shortcuts (regnetv_064's options: SiLU, SE; on
    a cut regnety_002): s3 / s4 dilated 2 / 4, s4's first shortcut timm's AvgPool2dSame, b1 of s3 at dilation 1
    as timm's RegStage keeps it."""
    assert_matches_smp("tu-regnety_002", monkeypatch, (40, 32), "channels_first", cut=True, fields=PREACT_AVG, output_stride=8)


# (name, RegNetCfg fields) cut to six blocks -> what it covers. regnety_040_sgn's and regnetv_040's options on
# the narrow regnety_002 (the wide models themselves: layouts here, parity in scripts/timm_sweep.py).
TORCH_SAMPLE = {
    "tu-regnety_002": (GROUP_NORM, "GroupNorm by group size, SiLU, SE (regnety_040_sgn)"),
    "tu-regnetx_002": (dict(preact=True, act_layer="silu"), "pre-activation, 1x1 conv shortcuts, bare stem (regnetv_040)"),
    "tu-regnetz_005": (None, "bottle ratio 4, no shortcut on a stage's first block, linear outputs"),
    "tu-regnetx_004_tv": (None, "torchvision width / group rounding (group_min_ratio)"),
}


@pytest.mark.parametrize("name", sorted(TORCH_SAMPLE))
@torch_only
def test_sample_matches_smp(name, monkeypatch):
    assert_matches_smp(name, monkeypatch, cut=True, fields=TORCH_SAMPLE[name][0])


@pytest.mark.parametrize("name, output_stride, fields", [
    ("tu-regnetx_002", 16, None), ("tu-regnetz_005", 8, None), ("tu-regnety_002", 8, GROUP_NORM),
])
@torch_only
def test_dilation_matches_smp(name, output_stride, fields, monkeypatch):
    """timm's RegStage dilation: 1x1 / no shortcuts, GroupNorm (pre-activation: test_dilated_preact_matches_smp)."""
    assert_matches_smp(name, monkeypatch, (40, 32), cut=True, fields=fields, output_stride=output_stride)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@torch_only
def test_depths(depth, monkeypatch):
    """timm's features_only model ends at the last feature taken: the state_dict loads strictly at every depth."""
    assert_matches_smp("tu-regnetx_002", monkeypatch, cut=True, depth=depth)


@torch_only
def test_stage_settings_are_timms():
    """Every name: the per-stage widths, depths and group sizes timm's RegNet derives from its cfg; its six-block
    cut keeps the widths and group sizes."""
    def timms(cfg):
        stages, _ = timm_regnet.RegNet._get_stage_args(None, cfg)
        return tuple([s[k] for s in stages] for k in ("out_chs", "depth", "group_size"))

    assert sorted(CUT_WA) == sorted(REGNET_MODELS)
    for name, entry in REGNET_MODELS.items():
        cfg = timm_regnet.model_cfgs[name]
        widths, depths, groups = timms(cfg)
        assert stage_settings(**entry["params"]) == (widths, depths, groups), name
        assert timms(dataclasses.replace(cfg, depth=6, wa=CUT_WA[name])) == (widths, CUT_DEPTHS, groups), name


@pytest.mark.parametrize("name", sorted(REGNET_MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name, monkeypatch):
    """Every name: SMP's tu- encoder's state_dict keys and shapes (timm's features_only model, meta device) and
    out_channels; models over 13 blocks cut to six (``cut_model``: their own widths; scripts/timm_sweep.py checks
    every name at full depth)."""
    ours = cut_model(name, monkeypatch) if REGNET_MODELS[name]["params"]["blocks"] > 13 else f"tu-{name}"
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(f"tu-{name}", weights=None)
    with keras.device("meta"):
        ours = layout(backbones.get_encoder(ours))
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs
    assert list(ENCODERS[f"tu-{name}"].out_channels) == list(reference.out_channels)


@torch_only
def test_deprecated_names(monkeypatch):
    """SMP 0.6 redirects its removed timm-regnet* encoders to tu-: SMP's DeprecationWarning, its features, the
    old encoders' out_channels (SMP 0.4's table: x_002 / y_002 [3, 32, 24, 56, 152, 368], y_320 [3, 32, 232, 696,
    1392, 3712])."""
    monkeypatch.setattr(registry, "_RESOLVED", {})  # the registry warns when it first resolves a name
    for name, out_channels in (("timm-regnetx_002", [3, 32, 24, 56, 152, 368]), ("timm-regnety_320", [3, 32, 232, 696, 1392, 3712])):
        with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
            assert list(backbones.get_spec(name).out_channels) == out_channels
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        reference = smp_encoder("timm-regnety_002", weights=None)
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        encoder = port_smp_encoder(reference, "timm-regnety_002", "channels_last")
    assert encoder.out_channels == list(reference.out_channels)
    assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")


@torch_only
def test_registry_matches_timm():
    """Every name and tag: the hub repository, timm's default tag, the first conv ('stem' on pre-activation
    models), and preprocessing equal to SMP's get_preprocessing_params; the table is what the generator
    derives from timm now."""
    for name in REGNET_MODELS:
        assert generator.regnet_params(timm_regnet.model_cfgs[name]) == REGNET_MODELS[name]["params"], name
    assert_timm_registry_matches(REGNET_MODELS)


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """encoder_weights loads timm's checkpoint of the bare name's default tag from an offline cache through the
    real download code; classifier dropped, stem.conv adapted by timm's adapt_input_conv for 1 and 4 channels;
    depth 2 / 3 drop the stages past it. SMP reads the same cache."""
    write_timm_checkpoint("regnety_002.pycls_in1k", tmp_path, monkeypatch)
    for in_channels, depth in ((1, 3), (4, 2)):
        reference = smp.encoders.get_encoder("tu-regnety_002", in_channels=in_channels, depth=depth, weights=True).eval()
        encoder = backbones.get_encoder("tu-regnety_002", in_channels=in_channels, depth=depth, weights=True)
        assert_features_match(reference, encoder, image((1, in_channels, 32, 32)), "channels_last")
