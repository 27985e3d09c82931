"""timm's byobnet module (gernet_s / gernet_m / gernet_l so far) as native ``tu-`` encoders
(backbones.timm_byobnet) against SMP's TimmUniversalEncoder.

All backends: features of tu-gernet_s and tu-gernet_m cut to one block per stage (two in gernet_s's second) (timm's ``blocks``
config argument on SMP's side, ours ``stages``; gernet_m also narrowed by ``width_factor``). Torch backend: a
cut, narrowed tu-gernet_l in channels_first, output_stride 8, depths 1 and 3 (nothing past the last feature built), SMP 0.6's deprecated
timm-gernet_* names, every name's state_dict layout, the registry and generated table against timm, and
pretrained loading of timm's checkpoint (``stages.<i>`` keys) from an offline hub cache.
"""

import dataclasses

import keras
import pytest
import segmentation_models_pytorch as smp
import torch
from timm.models import byobnet as timm_byobnet

import backbones
from backbones import registry
from backbones.registry import ENCODERS
from backbones.timm_configs.byobnet import BYOBNET_MODELS
from tests.encoder_conformance import assert_timm_registry_matches, layout
from backbones.timm_byobnet import feature_info
from tests.test_encoder_timm_res2net_resnest import (
    assert_deprecated_name_matches_smp, assert_narrowed_matches_smp, assert_pretrained_matches_smp,
    generated_table,
)
from tests.test_encoder_timm_resnet import assert_matches_smp, torch_only


def cut(model, blocks=1, width_factor=None):
    """(timm kwargs, our params) cutting ``model`` to at most ``blocks`` blocks per stage (or a list of them, one
    per stage) on both sides (timm's
    ByobNet overlays its keyword arguments onto the model config), optionally narrowed by ``width_factor``."""
    blocks = [blocks] * 5 if isinstance(blocks, int) else blocks
    timm_blocks = tuple(dataclasses.replace(b, d=min(b.d, n)) for b, n in zip(timm_byobnet.model_cfgs[model].blocks, blocks))
    stages = [{**s, "d": min(s["d"], n)} for s, n in zip(BYOBNET_MODELS[model]["params"]["stages"], blocks)]
    widths = {"width_factor": width_factor} if width_factor else {}
    return {"blocks": timm_blocks, **widths}, {"stages": stages, **widths}


@pytest.mark.parametrize("name", ["tu-gernet_s", "tu-gernet_m"])
def test_features_match_smp(name, monkeypatch):
    """Basic and bottleneck blocks, depthwise kxk, 1x1 and identity shortcuts, final_conv (gernet_m: one block per
    stage, narrowed by width_factor)."""
    if name == "tu-gernet_s":
        assert_matches_smp(name, variant=cut("gernet_s", [1, 2, 1, 1, 1]))
    else:
        assert_narrowed_matches_smp(name, *cut("gernet_m", 1, 0.25), feature_info, monkeypatch)


@torch_only
def test_channels_first(monkeypatch):
    assert_narrowed_matches_smp("tu-gernet_l", *cut("gernet_l", 2, 0.25), feature_info, monkeypatch, data_format="channels_first")


@torch_only
def test_dilation_matches_smp(monkeypatch):
    """output_stride 8 (timm's create_byob_stages): stage dilation 2 with its first kxk conv at 1, dilation 4 with
    it at 2, the 1x1 shortcut of a dilation change."""
    assert_narrowed_matches_smp("tu-gernet_s", *cut("gernet_s", 2, 0.5), feature_info, monkeypatch, (48, 32), output_stride=8)


@pytest.mark.parametrize("depth", [1, 3])
@torch_only
def test_depths(depth):
    """timm's features_only model ends at the last feature taken: the state_dict loads strictly at every depth."""
    assert_matches_smp("tu-gernet_s", depth=depth, variant=cut("gernet_s", 2))


@pytest.mark.parametrize("name", sorted(BYOBNET_MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name):
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(f"tu-{name}", weights=None)
    with keras.device("meta"):
        ours = layout(backbones.get_encoder(f"tu-{name}"))
    assert ours == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert list(ENCODERS[f"tu-{name}"].out_channels) == list(reference.out_channels)


@torch_only
def test_deprecated_names_match_smp(monkeypatch):
    """SMP 0.6's timm-gernet_* names: SMP's DeprecationWarning, the tu- encoder."""
    monkeypatch.setattr(registry, "_RESOLVED", {})
    assert_deprecated_name_matches_smp("timm-gernet_s", depth=3)
    for old in ("timm-gernet_m", "timm-gernet_l"):
        with pytest.warns(DeprecationWarning):
            assert backbones.get_spec(old).name == old.replace("timm-", "tu-")


@torch_only
def test_registry_matches_timm():
    assert generated_table("byobnet") == BYOBNET_MODELS
    assert_timm_registry_matches(BYOBNET_MODELS, flattened=("stages",))


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """timm's gernet_s checkpoint: its ``stages.<i>`` keys renamed to the features_only ``stages_<i>``."""
    assert_pretrained_matches_smp("gernet_s.idstcv_in1k", tmp_path, monkeypatch)
