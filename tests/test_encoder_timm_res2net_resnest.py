"""timm's res2net and resnest modules as native ``tu-`` encoders (timm's ResNet with the Bottle2neck /
ResNestBottleneck blocks of backbones.timm_res2net / timm_resnest) against SMP's TimmUniversalEncoder.

All backends: a cut tu-res2net50_26w_4s (scale 4, two blocks in its first stage: the hierarchical sums and
the pass-through piece) and a cut tu-resnest50d_4s2x40d (radix 4 in 2 cardinal groups, avd before the conv).
Torch backend: a sample covering scale 2 / 8, cardinality, radix 1 / 2, avd after the conv, both data formats,
output_stride 8 / 16 (deep stem, avg-pool shortcuts, later blocks in dilated stages), SMP 0.6's deprecated
timm-res2* / timm-resnest* names, every name's state_dict layout (timm on the meta device), the registry and
generated tables against timm, and pretrained loading from an offline hub cache.
"""

import os
import sys

import pytest
import segmentation_models_pytorch as smp
import timm

import backbones
from backbones import registry
from backbones.registry import ENCODERS
from backbones.timm_configs.res2net import RES2NET_MODELS
from backbones.timm_configs.resnest import RESNEST_MODELS
from keras_seg.data.preprocessing import get_preprocessing_params
from tests.encoder_conformance import assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import image
from tests.test_encoder_timm_resnet import ONE_BLOCK, assert_matches_smp, torch_only, write_timm_checkpoint
from tests.test_encoder_timm_resnet import test_state_dict_layout_matches_timm as check_layout

MODELS = {**RES2NET_MODELS, **RESNEST_MODELS}
TWO_FIRST = [2, 1, 1, 1]  # a stage's later blocks (no stride, no shortcut) in the first stage


@pytest.mark.parametrize("name, layers", [("tu-res2net50_26w_4s", TWO_FIRST), ("tu-resnest50d_4s2x40d", ONE_BLOCK)])
def test_features_match_smp(name, layers):
    """Depth 3 (stem, a stride-1 and a stride-2 stage: every kind of block; TF / JAX compile time)."""
    assert_matches_smp(name, layers=layers, depth=3)


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
def test_dilation_matches_smp(name, output_stride):
    """timm's make_blocks dilation: Res2Net's convs at first_dilation and its stride-1 pool piece, ResNeSt's avd
    off at stride 1, deep stem, avg-pool shortcuts as AvgPool2dSame."""
    assert_matches_smp(name, layers=[1, 1, 1, 2], output_stride=output_stride)


@pytest.mark.parametrize("name", sorted(MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name, monkeypatch):
    """Every name: SMP's encoder's state_dict keys / shapes and out_channels (deep ones cut to a block per stage)."""
    monkeypatch.setattr("tests.test_encoder_timm_resnet.RESNET_MODELS", MODELS)
    check_layout(name)


@torch_only
def test_deprecated_names_match_smp(monkeypatch):
    """SMP 0.6's timm-res2net* / timm-res2next50 / timm-resnest* names: SMP's DeprecationWarning, the tu- encoder
    (depth 2: the stem and the first stage)."""
    monkeypatch.setattr(registry, "_RESOLVED", {})
    for old in ("timm-res2next50", "timm-resnest14d"):
        with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
            reference = smp_encoder(old, weights=None, depth=2)
        with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
            encoder = port_smp_encoder(reference, old, "channels_last", depth=2)
        assert encoder.spec.name == old.replace("timm-", "tu-")
        assert encoder.out_channels == list(reference.out_channels)
        assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")
    with pytest.warns(DeprecationWarning):
        assert backbones.get_spec("timm-res2net50_26w_4s").name == "tu-res2net50_26w_4s"


@torch_only
def test_registry_matches_timm():
    """Generated tables = what the generators derive from timm now (res2net: every name); tags, default tag,
    first conv, hub repositories and preprocessing of every name as timm / SMP give them."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from timm_tables import res2net, resnest

    assert res2net.table() == RES2NET_MODELS
    assert resnest.table() == RESNEST_MODELS
    for name in MODELS:
        ours = ENCODERS[f"tu-{name}"]
        assert ours.pretrained_tag == timm.models.get_pretrained_cfg(name).tag
        for tag, entry in ours.pretrained_weights.items():
            cfg = timm.models.get_pretrained_cfg(f"{name}.{tag}")
            assert ours.first_conv == f"model.{cfg.first_conv}"
            assert entry["repo_id"] == cfg.hf_hub_id
            assert get_preprocessing_params(f"tu-{name}.{tag}") == smp.encoders.get_preprocessing_params(f"tu-{name}.{tag}")


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """timm's checkpoint of tu-resnest14d's default tag from an offline cache (deep-stem first conv adapted to
    1 channel by timm's rule; depth 3: layer3 / layer4 dropped), as SMP loads it."""
    write_timm_checkpoint("resnest14d.gluon_in1k", tmp_path, monkeypatch)
    reference = smp.encoders.get_encoder("tu-resnest14d", in_channels=1, depth=3, weights=True).eval()
    encoder = backbones.get_encoder("tu-resnest14d", in_channels=1, depth=3, weights=True)
    assert_features_match(reference, encoder, image((1, 1, 32, 32)), "channels_last")
