"""timm's mobilenetv3 module (MobileNetV3, LCNet, FBNetV3) as native ``tu-`` encoders (the shared EfficientNet
builder) against SMP's TimmUniversalEncoder.

All backends: tu-lcnet_050 (dsa blocks with SE, hard-swish, hard-sigmoid gate) channels_first and
tu-tf_mobilenetv3_small_100 (TF "SAME" padding, SE widths from the expanded channels) dilated (output_stride 16).
Torch backend: tu-mobilenetv3_large_100 (round_channels SE widths, ReLU-forced SE), tu-fbnetv3_b (its own SE
rounding, se_from_exp False), tu-mobilenetv3_rw (16-channel stem default) at output_stride 8; SMP 0.6's deprecated
timm-mobilenetv3_* names; every name's block plan and feature_info against timm's EfficientNetBuilder and its
registry entry; MobileNetV4 models refused as not ported.
"""

import pytest
import timm

import backbones
from backbones.timm_configs.mobilenetv3 import MOBILENETV3_MODELS
from tests.encoder_conformance import assert_features_match, assert_timm_registry_matches, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image
from tests.test_encoder_timm_efficientnet_module import (
    _timm_builder_plan, assert_block_plan_matches_timm, assert_matches_smp,
)

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")
NAMES = sorted(MOBILENETV3_MODELS)


@pytest.mark.parametrize("name, data_format, output_stride", [
    ("tu-lcnet_050", "channels_first", 32), ("tu-tf_mobilenetv3_small_100", "channels_last", 16),
])
def test_features_match_smp(name, data_format, output_stride):
    assert_matches_smp(name, (48, 32), data_format, output_stride=output_stride)


@pytest.mark.parametrize("name, output_stride, tame", [
    ("tu-mobilenetv3_large_100", 32, False), ("tu-mobilenetv3_rw", 8, False),
    # fbnetv3_b's random last stage grows to 500x the input: untamed its float32 rounding sits at
    # 7.5e-5 (AVX-512) to 1.5e-4 (AVX2 kernels) of the scale; tamed, below 5e-7.
    ("tu-fbnetv3_b", 32, True),
])
@torch_only
def test_sample_matches_smp(name, output_stride, tame):
    assert_matches_smp(name, (48, 32), output_stride=output_stride, tame=tame)


@pytest.mark.filterwarnings("ignore:`timm-` encoders are deprecated:DeprecationWarning")
@torch_only
def test_deprecated_timm_names():
    """SMP 0.6 redirects timm-mobilenetv3_* to tu-tf_mobilenetv3_* with a DeprecationWarning; so does keras-seg."""
    with pytest.warns(DeprecationWarning, match="deprecated"):
        encoder = backbones.get_encoder("timm-mobilenetv3_small_minimal_100")
    assert encoder.spec.name == "tu-tf_mobilenetv3_small_minimal_100"
    reference = smp_encoder("timm-mobilenetv3_small_minimal_100", weights=None)
    encoder = port_smp_encoder(reference, "timm-mobilenetv3_small_minimal_100", "channels_last")
    assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")


@pytest.mark.parametrize("name", NAMES)
@torch_only
def test_block_plan_matches_timm(name):
    from timm.models import mobilenetv3 as timm_mobilenetv3

    timm_plan = _timm_builder_plan(name, timm_mobilenetv3, "_create_mnv3", se_from_exp=True, stem_size=16)
    assert_block_plan_matches_timm(name, MOBILENETV3_MODELS[name]["params"], timm_plan)


@torch_only
def test_registry_matches_timm():
    """Every name and tag as timm's registry has it; the module's MobileNetV4 models are refused, naming the
    ported builders."""
    names = timm.list_models(module="mobilenetv3")
    assert NAMES == sorted(n for n in names if not n.startswith("mobilenetv4"))
    assert_timm_registry_matches(NAMES)
    with pytest.raises(ValueError, match="not ported"):
        backbones.get_encoder("tu-mobilenetv4_conv_small")
