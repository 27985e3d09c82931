"""timm's res2net and resnest modules as native ``tu-`` encoders (timm's ResNet with the Bottle2neck /
ResNestBottleneck blocks of backbones.timm_res2net / timm_resnest) against SMP's TimmUniversalEncoder.

All backends: a cut tu-res2net50_26w_4s (scale 4, two blocks in its first stage: the hierarchical sums and
the pass-through piece) and a cut tu-resnest50d_4s2x40d (radix 4 in 2 cardinal groups, avd before the conv).
Torch backend: a sample covering scale 2 / 8, cardinality, radix 1 / 2, avd after the conv, both data formats,
output_stride 8 / 16 (deep stem, avg-pool shortcuts, later blocks in dilated stages), SMP 0.6's deprecated
timm-res2* / timm-resnest* names, every name's state_dict layout (timm on the meta device), the registry and
generated tables against timm, and pretrained loading from an offline hub cache.
"""

import dataclasses
import importlib
import os
import sys

import pytest
import segmentation_models_pytorch as smp

import backbones
from backbones import registry
from backbones.registry import ENCODERS
from backbones.timm_configs.res2net import RES2NET_MODELS
from backbones.timm_configs.resnest import RESNEST_MODELS
from backbones.timm_resnet import feature_info as resnet_feature_info
from tests.encoder_conformance import assert_timm_registry_matches, assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import image
from tests.test_encoder_timm_resnet import ONE_BLOCK, assert_matches_smp, torch_only, write_timm_checkpoint
from tests.test_encoder_timm_resnet import test_state_dict_layout_matches_timm as check_layout

MODELS = {**RES2NET_MODELS, **RESNEST_MODELS}


def assert_narrowed_matches_smp(name, timm_kwargs, params, feature_info, monkeypatch, size=(32, 32),
                                data_format="channels_last", **kwargs):
    """Features of ``name`` changed alike on both sides (``timm_kwargs`` to timm's constructor, ``params`` to our
    spec, its out_channels from the builder's ``feature_info``, e.g. narrower stages) equal SMP's."""
    spec = ENCODERS[name]
    params = {**spec.params, **params}
    variant = dataclasses.replace(spec, name=f"{name}-narrowed", params=params, out_channels=[3] + feature_info(params)[0])
    monkeypatch.setitem(ENCODERS, variant.name, variant)
    reference = smp_encoder(name, weights=None, **timm_kwargs, **kwargs)
    encoder = port_smp_encoder(reference, variant.name, data_format, **kwargs)
    assert list(encoder.out_channels) == list(reference.out_channels)
    assert_features_match(reference, encoder, image((2, 3, *size)), data_format)
TWO_FIRST = [2, 1, 1, 1]  # a stage's later blocks (no stride, no shortcut) in the first stage


@pytest.mark.parametrize("name, layers, depth", [("tu-res2net50_26w_4s", TWO_FIRST, 2), ("tu-resnest50d_4s2x40d", ONE_BLOCK, 3)])
def test_features_match_smp(name, layers, depth):
    """The first stages only (TF / JAX compile time): Res2Net's first stage (a block with its pool piece, one with
    the hierarchical sums), ResNeSt's second (its avd pool)."""
    assert_matches_smp(name, layers=layers, depth=depth)


# name -> (blocks per stage on both sides, depth, data format, what it covers); the all-backend cases above
# cover scale 4 and radix 4 in channels_last
TORCH_SAMPLE = {
    "tu-res2net50_48w_2s": (TWO_FIRST, 2, "channels_last", "scale 2 (one 3x3 conv), base width 48"),
    "tu-res2net50_14w_8s": (TWO_FIRST, 2, "channels_last", "scale 8"),
    "tu-res2next50": (TWO_FIRST, 3, "channels_first", "cardinality 8, base width 4"),
    "tu-resnest26d": (TWO_FIRST, 3, "channels_first", "radix 2, avd after the conv, later blocks"),
    "tu-resnest50d_1s4x24d": (ONE_BLOCK, 3, "channels_last", "radix 1 (sigmoid), cardinality 4, avd before the conv"),
}


@pytest.mark.parametrize("name", sorted(TORCH_SAMPLE))
@torch_only
def test_sample_matches_smp(name):
    """Each case at its depth (timm's features_only truncation: nothing past it built or loaded)."""
    layers, depth, data_format, _ = TORCH_SAMPLE[name]
    assert_matches_smp(name, data_format=data_format, layers=layers, depth=depth)


@pytest.mark.parametrize("name, output_stride", [("tu-res2net50d", 8), ("tu-resnest50d_4s2x40d", 16)])
@torch_only
def test_dilation_matches_smp(name, output_stride, monkeypatch):
    """timm's make_blocks dilation: Res2Net's convs at first_dilation and its stride-1 pool piece, ResNeSt's avd
    off at stride 1, deep stem, avg-pool shortcuts as AvgPool2dSame (stages narrowed to half their
    widths on both sides: timm's ``channels`` argument; CI time)."""
    timm_kwargs, params = {"channels": (32, 64, 128, 256), "layers": (1, 1, 1, 2)}, {"channels": [32, 64, 128, 256], "layers": [1, 1, 1, 2]}
    assert_narrowed_matches_smp(name, timm_kwargs, params, resnet_feature_info, monkeypatch, output_stride=output_stride)


@pytest.mark.parametrize("name", sorted(MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name, monkeypatch):
    """Every name: SMP's encoder's state_dict keys / shapes and out_channels (deep ones cut to a block per stage)."""
    monkeypatch.setattr("tests.test_encoder_timm_resnet.RESNET_MODELS", MODELS)
    check_layout(name)


def assert_deprecated_name_matches_smp(old, depth=2):
    """SMP 0.6's deprecated ``old`` timm- name: SMP's DeprecationWarning on both sides, our tu- encoder with
    SMP's features (at ``depth``)."""
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        reference = smp_encoder(old, weights=None, depth=depth)
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        encoder = port_smp_encoder(reference, old, "channels_last", depth=depth)
    assert encoder.spec.name == old.replace("timm-", "tu-")
    assert encoder.out_channels == list(reference.out_channels)
    assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")


@torch_only
def test_deprecated_names_match_smp(monkeypatch):
    """SMP 0.6's timm-res2net* / timm-res2next50 / timm-resnest* names redirect (features of one, depth 2)."""
    monkeypatch.setattr(registry, "_RESOLVED", {})
    assert_deprecated_name_matches_smp("timm-resnest14d")
    for old in ("timm-res2next50", "timm-res2net50_26w_4s", "timm-resnest50d_4s2x40d"):
        with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
            assert backbones.get_spec(old).name == old.replace("timm-", "tu-")


def generated_table(module):
    """What scripts/timm_tables/<module>.py derives from timm now."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    return importlib.import_module(f"timm_tables.{module}").table()


@torch_only
def test_registry_matches_timm():
    assert generated_table("res2net") == RES2NET_MODELS
    assert generated_table("resnest") == RESNEST_MODELS
    assert_timm_registry_matches(MODELS)


def assert_pretrained_matches_smp(model_tag, tmp_path, monkeypatch, depth=3):
    """timm's own checkpoint of ``<model>.<tag>`` (random, with its classifier) in an offline hub cache: the
    bare tu- name (timm's default tag) loads it as SMP does, first conv adapted to 1 channel by timm's rule,
    nothing past ``depth`` kept."""
    write_timm_checkpoint(model_tag, tmp_path, monkeypatch)
    name = f"tu-{model_tag.split('.')[0]}"
    reference = smp.encoders.get_encoder(name, in_channels=1, depth=depth, weights=True).eval()
    encoder = backbones.get_encoder(name, in_channels=1, depth=depth, weights=True)
    assert_features_match(reference, encoder, image((1, 1, 32, 32)), "channels_last")


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """tu-resnest14d (deep-stem first conv conv1.0; depth 3: layer3 / layer4 dropped)."""
    assert_pretrained_matches_smp("resnest14d.gluon_in1k", tmp_path, monkeypatch)
