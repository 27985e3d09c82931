"""timm's byobnet module (gernet_s / gernet_m / gernet_l so far) as native ``tu-`` encoders
(backbones.timm_byobnet) against SMP's TimmUniversalEncoder.

All backends: features of tu-gernet_s and tu-gernet_m cut to two / one blocks per stage (timm's ``blocks``
config argument on SMP's side, ours ``stages``). Torch backend: every block of tu-gernet_s, a cut tu-gernet_l
in channels_first, output_stride 8, depths 1 and 3 (nothing past the last feature built), SMP 0.6's deprecated
timm-gernet_* names, every name's state_dict layout, the registry and generated table against timm, and
pretrained loading of timm's checkpoint (``stages.<i>`` keys) from an offline hub cache.
"""

import dataclasses
import os
import sys

import keras
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from timm.models import byobnet as timm_byobnet

import backbones
from backbones import registry
from backbones.registry import ENCODERS
from backbones.timm_configs.byobnet import BYOBNET_MODELS
from keras_seg.data.preprocessing import get_preprocessing_params
from tests.encoder_conformance import assert_features_match, layout, port_smp_encoder, smp_encoder
from tests.parity import image
from tests.test_encoder_timm_resnet import assert_matches_smp, torch_only, write_timm_checkpoint


def cut(model, blocks=1):
    """(timm kwargs, our params) cutting ``model`` to at most ``blocks`` blocks per stage on both sides (timm's
    ByobNet overlays its ``blocks`` argument onto the model config)."""
    timm_blocks = tuple(dataclasses.replace(b, d=min(b.d, blocks)) for b in timm_byobnet.model_cfgs[model].blocks)
    stages = [{**s, "d": min(s["d"], blocks)} for s in BYOBNET_MODELS[model]["params"]["stages"]]
    return {"blocks": timm_blocks}, {"stages": stages}


@pytest.mark.parametrize("name, variant", [("tu-gernet_s", cut("gernet_s", 2)), ("tu-gernet_m", cut("gernet_m"))])
def test_features_match_smp(name, variant):
    """Basic and bottleneck blocks, depthwise kxk, 1x1 and identity shortcuts, final_conv."""
    assert_matches_smp(name, variant=variant)


@torch_only
def test_sample_matches_smp():
    """Every block of tu-gernet_s; tu-gernet_l (cut) in channels_first."""
    assert_matches_smp("tu-gernet_s")
    assert_matches_smp("tu-gernet_l", data_format="channels_first", variant=cut("gernet_l"))


@torch_only
def test_dilation_matches_smp():
    """output_stride 8 (timm's create_byob_stages): stage dilation 2 with its first kxk conv at 1, dilation 4 with
    it at 2, the 1x1 shortcut of a dilation change."""
    assert_matches_smp("tu-gernet_s", (48, 32), output_stride=8, variant=cut("gernet_s", 2))


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
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        reference = smp_encoder("timm-gernet_s", weights=None, depth=3)
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        encoder = port_smp_encoder(reference, "timm-gernet_s", "channels_last", depth=3)
    assert encoder.spec.name == "tu-gernet_s" and encoder.out_channels == list(reference.out_channels)
    assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")
    for old in ("timm-gernet_m", "timm-gernet_l"):
        with pytest.warns(DeprecationWarning):
            assert backbones.get_spec(old).name == old.replace("timm-", "tu-")


@torch_only
def test_registry_matches_timm():
    """The generated table is what the generator derives from timm now; tags, first conv, hub repositories and
    preprocessing as timm / SMP give them."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from timm_tables import byobnet

    assert byobnet.table() == BYOBNET_MODELS
    for name in BYOBNET_MODELS:
        ours = ENCODERS[f"tu-{name}"]
        assert ours.pretrained_tag == timm.models.get_pretrained_cfg(name).tag
        for tag, entry in ours.pretrained_weights.items():
            cfg = timm.models.get_pretrained_cfg(f"{name}.{tag}")
            assert ours.first_conv == f"model.{cfg.first_conv}" and entry["repo_id"] == cfg.hf_hub_id
            assert get_preprocessing_params(f"tu-{name}.{tag}") == smp.encoders.get_preprocessing_params(f"tu-{name}.{tag}")


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """timm's own gernet_s checkpoint (``stages.<i>`` keys, classifier) from an offline cache, first conv adapted
    to 1 channel by timm's rule, at depth 3, as SMP loads it."""
    write_timm_checkpoint("gernet_s.idstcv_in1k", tmp_path, monkeypatch)
    reference = smp.encoders.get_encoder("tu-gernet_s", in_channels=1, depth=3, weights=True).eval()
    encoder = backbones.get_encoder("tu-gernet_s", in_channels=1, depth=3, weights=True)
    assert_features_match(reference, encoder, image((1, 1, 32, 32)), "channels_last")
