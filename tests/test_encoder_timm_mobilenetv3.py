"""timm's mobilenetv3 module (MobileNetV3, LCNet, FBNetV3, MobileNetV4) as native ``tu-`` encoders (the shared
EfficientNet builder; MobileNetV4's uir / mqa blocks in backbones.timm_mobilenetv4_blocks) against SMP's
TimmUniversalEncoder.

All backends: tu-lcnet_050 (dsa blocks with SE, hard-swish, hard-sigmoid gate) channels_first and
tu-tf_mobilenetv3_small_100 (TF "SAME" padding, SE widths from the expanded channels) dilated (output_stride 16).
Torch backend: tu-mobilenetv3_large_100 (round_channels SE widths, ReLU-forced SE), tu-fbnetv3_b (its own SE
rounding, se_from_exp False), tu-mobilenetv3_rw (16-channel stem default) at output_stride 8; SMP 0.6's deprecated
timm-mobilenetv3_* names; every name's block plan and feature_info against timm's EfficientNetBuilder and its
registry entry.

MobileNetV4: all backends tu-mobilenetv4_conv_small (cn + uir: ExtraDW, IR, ConvNeXt, FFN) and
tu-mobilenetv4_hybrid_medium (EdgeResidual, uir, multi-query attention with and without kv downsampling,
LayerScale2d) dilated (output_stride 16) channels_first; torch: the AvgPool (conv_aa_medium) and BlurPool
(conv_blur_medium, output_stride 16) anti-aliased models, hybrid_large_075 (GELU, 8 heads, fixed-width rounding)
at output_stride 8, conv_small_035 (fixed stem); hybrid_medium's pretrained loading from an offline hub cache
(in_channels 1, depth 3) and a .keras round trip of a Unet on it; block plans of the 12 against timm's builder. The hybrids' LayerScale2d gammas (timm's 1e-5 would hide the
blocks) are set to U(0.05, 0.15) on uir blocks and U(0.5, 1.5) on attention blocks: with U(0.25, 0.75) everywhere
the random activations grow until attention is so sharp that timm's own float32 forward differs from its float64
one by 7e-3 of the scale (hybrid_large_075, output_stride 8; ours differs from float64 as much); so set, both stay
within 1.5e-6, and a 10% change of the attention logits moves the last feature by 2.6e-3 (hybrid_large_075) and
3.7e-3 (hybrid_medium, output_stride 16) of its scale.
"""

import contextlib

import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from safetensors.torch import save_file

import backbones
from backbones.timm_configs.mobilenetv3 import MOBILENETV3_MODELS
from backbones.registry import ENCODERS
from backbones.timm_efficientnet_builder import model_plan, stem_channels
from tests.encoder_conformance import assert_features_match, assert_timm_registry_matches, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image, offline_hub_snapshot
from tests.test_encoder_timm_efficientnet_module import (
    KINDS, RecordedBlock, _timm_builder_plan, assert_block_plan_matches_timm, assert_matches_smp, randomize_norms,
)

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")
NAMES = sorted(MOBILENETV3_MODELS)
MNV4 = [n for n in NAMES if n.startswith("mobilenetv4")]


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


def spread_layer_scales(module, seed=1):
    """LayerScale2d gammas at U(0.05, 0.15) (uir blocks) and U(0.5, 1.5) (attention blocks); see the module docstring."""
    from timm.models._efficientnet_blocks import MobileAttention, UniversalInvertedResidual

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (MobileAttention, UniversalInvertedResidual)) and hasattr(m.layer_scale, "gamma"):
                scale = 1.0 if isinstance(m, MobileAttention) else 0.1
                m.layer_scale.gamma.copy_((torch.rand(m.layer_scale.gamma.shape, generator=gen) + 0.5) * scale)
    return module


def assert_mnv4_matches_smp(name, size=(64, 64), data_format="channels_last", output_stride=32):
    """``assert_matches_smp`` with the LayerScale2d gammas spread (``spread_layer_scales``)."""
    reference = spread_layer_scales(randomize_norms(smp_encoder(name, weights=None, output_stride=output_stride)))
    encoder = port_smp_encoder(reference, name, data_format, output_stride=output_stride)
    assert encoder.out_channels == list(reference.out_channels)
    assert encoder.output_stride == reference.output_stride
    assert_features_match(reference, encoder, image((2, 3, *size)), data_format)


@pytest.mark.parametrize("name, data_format, output_stride", [
    ("tu-mobilenetv4_conv_small", "channels_last", 32), ("tu-mobilenetv4_hybrid_medium", "channels_first", 16),
])
def test_mobilenetv4_features_match_smp(name, data_format, output_stride):
    assert_mnv4_matches_smp(name, data_format=data_format, output_stride=output_stride)


@pytest.mark.parametrize("name, output_stride", [
    ("tu-mobilenetv4_conv_aa_medium", 32), ("tu-mobilenetv4_conv_blur_medium", 16),
    ("tu-mobilenetv4_hybrid_large_075", 8), ("tu-mobilenetv4_conv_small_035", 32),
])
@torch_only
def test_mobilenetv4_sample_matches_smp(name, output_stride):
    assert_mnv4_matches_smp(name, output_stride=output_stride)


@torch_only
def test_mobilenetv4_pretrained_offline(tmp_path, monkeypatch):
    """tu-mobilenetv4_hybrid_medium's timm checkpoint (layer_scale gammas, attention, the classifier head's
    conv_head / norm_head dropped) loads through the real download code from an offline cache, conv_stem adapted
    to 1 input channel, depth 3, as SMP reads the same cache."""
    name = "mobilenetv4_hybrid_medium"
    torch.manual_seed(5)
    model = spread_layer_scales(randomize_norms(timm.create_model(name), 5))
    snapshot = offline_hub_snapshot(tmp_path, monkeypatch, f"timm/{name}.{ENCODERS[f'tu-{name}'].pretrained_tag}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"))
    reference = smp.encoders.get_encoder(f"tu-{name}", in_channels=1, depth=3, weights=True).eval()
    encoder = backbones.get_encoder(f"tu-{name}", in_channels=1, depth=3, weights=True)
    assert_features_match(reference, encoder, image((1, 1, 64, 64)), "channels_last")


@torch_only
def test_mobilenetv4_keras_round_trip(tmp_path):
    """A Unet on tu-mobilenetv4_hybrid_medium (attention, layer scale) saved as .keras loads with equal outputs."""
    import keras
    import numpy as np

    import keras_seg

    model = keras_seg.create_model("Unet", encoder_name="tu-mobilenetv4_hybrid_medium", encoder_weights=None,
                                   encoder_depth=4, decoder_channels=(16, 8, 8, 8), classes=2)
    x = np.transpose(image((1, 3, 64, 64)), (0, 2, 3, 1)) if model.data_format == "channels_last" else image((1, 3, 64, 64))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))


@contextlib.contextmanager
def _recording_mnv4_blocks():
    """timm's builder with UniversalInvertedResidual / MobileAttention replaced by recorders (as
    ``_timm_builder_plan`` does for the other block classes)."""
    from timm.models import _efficientnet_builder as timm_builder

    saved = {c: getattr(timm_builder, c) for c in ("UniversalInvertedResidual", "MobileAttention")}
    try:
        for c in saved:
            setattr(timm_builder, c, lambda c=c, **kw: RecordedBlock(c, **kw))
        yield
    finally:
        for c, original in saved.items():
            setattr(timm_builder, c, original)


MNV4_KINDS = {**KINDS, "UniversalInvertedResidual": "uir", "MobileAttention": "mqa"}


@pytest.mark.parametrize("name", MNV4)
@torch_only
def test_mobilenetv4_block_plan_matches_timm(name):
    """Every block's type, in / out channels, stride, dilation, kernels, expansion, heads / key and value
    widths / kv stride, skip, groups and activation, and the feature_info, as timm's builder decides them."""
    from timm.layers.activations import GELU
    from timm.models import mobilenetv3 as timm_mobilenetv3
    from timm_tables.efficientnet import act_name

    params = MOBILENETV3_MODELS[name]["params"]
    with _recording_mnv4_blocks():
        stem, theirs, features = _timm_builder_plan(name, timm_mobilenetv3, "_create_mnv3", se_from_exp=True, stem_size=16)
    stages, ours_features = model_plan(params)
    assert stem_channels(params) == stem
    assert [len(s) for s in stages] == [len(s) for s in theirs]
    for ours, module in zip(sum(stages, []), sum(theirs, [])):
        kw = module.kwargs
        assert ours.kind == MNV4_KINDS[module.kind]
        assert (ours.in_chs, ours.out_chs, ours.stride, ours.dilation) == (kw["in_chs"], kw["out_chs"], kw["stride"], kw["dilation"])
        act = "gelu" if kw["act_layer"] is GELU else act_name(kw["act_layer"])  # timm's exact GELU
        assert ours.act == act and ours.se_ratio == 0.0 and "se_layer" not in kw
        assert ours.group_size == kw.get("group_size", 0 if ours.kind in ("er", "cn") else 1)
        skip = kw.get("skip", False) if ours.kind == "cn" else not kw.get("noskip", False)
        assert ours.skip == skip
        if ours.kind == "uir":
            assert (ours.options.get("dw_kernel_size_start", 0), ours.kernel, ours.options.get("dw_kernel_size_end", 0),
                    ours.exp_ratio) == (kw["dw_kernel_size_start"], kw["dw_kernel_size_mid"], kw["dw_kernel_size_end"],
                                        kw["exp_ratio"])
        elif ours.kind == "mqa":
            assert kw["use_multi_query"]
            assert ours.kernel == kw["dw_kernel_size"]
            assert ours.options == {k: kw[k] for k in ("num_heads", "key_dim", "value_dim", "kv_stride")}
        else:
            kernel = kw["kernel_size"] if ours.kind == "cn" else kw["exp_kernel_size"]
            assert ours.kernel == kernel and ours.exp_ratio == kw.get("exp_ratio", 1.0)
    assert [(c, r) for _, _, c, r in ours_features] == [(f["num_chs"], f["reduction"]) for f in features]
    assert list(ENCODERS[f"tu-{name}"].out_channels) == [3] + [f["num_chs"] for f in features]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in MNV4])
@torch_only
def test_block_plan_matches_timm(name):
    from timm.models import mobilenetv3 as timm_mobilenetv3

    timm_plan = _timm_builder_plan(name, timm_mobilenetv3, "_create_mnv3", se_from_exp=True, stem_size=16)
    assert_block_plan_matches_timm(name, MOBILENETV3_MODELS[name]["params"], timm_plan)


@torch_only
def test_registry_matches_timm():
    """Every name and tag as timm's registry has it (all 33 models of the module, the 12 MobileNetV4 ones
    included)."""
    assert NAMES == sorted(timm.list_models(module="mobilenetv3")) and len(MNV4) == 12
    assert_timm_registry_matches(NAMES)
