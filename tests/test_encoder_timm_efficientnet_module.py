"""timm's efficientnet module as native ``tu-`` encoders (backbones.timm_efficientnet_builder) against SMP's
TimmUniversalEncoder.

All backends: tu-test_efficientnet (ConvBnAct with skip, EdgeResidual, InvertedResidual with SE) dilated
(output_stride 16) channels_first, tu-tf_efficientnet_lite0 (TF "SAME" padding, BN eps 1e-3, ReLU6, fixed stem),
tu-test_efficientnet_evos (EvoNorm-S0 with and without its non-linearity) channels_first,
tu-efficientnet_cc_b0_4e (CondConvResidual: per-sample expert mixes from timm's random routing_fn) channels_first.
Torch backend: a sample covering every block type and option (dsa, grouped EdgeResidual, MixedConv,
pruned widths, force_in_chs, GroupNorm, LayerNorm, GlobalContext, CondConv with TF "SAME" padding and dilated (output_stride 16); blurpc anti-aliasing on the kit's BlurPool; the kit's
GlobalContext on every backend), output_stride 8,
depths 1 and 3 (timm's EfficientNetFeatures builds every block: those past ``depth`` load but stay dormant),
the state_dict layout of names outside the parity tests, and for every name the block plan (each block's type, widths, kernels,
stride, dilation, SE ratio, skip, groups ...) and feature_info against timm's own EfficientNetBuilder run on
the table's arguments with recording blocks (cheap; scripts/timm_sweep.py builds every name at full depth).
Registry and preprocessing of every name and tag against timm; pretrained loading from an offline hub cache.
"""

import os
import sys

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from safetensors.torch import save_file

import backbones
from backbones.registry import ENCODERS
from backbones.timm_configs.efficientnet import EFFICIENTNET_MODELS
from backbones.timm_efficientnet_builder import model_plan, stem_channels, unported
from tests.encoder_conformance import assert_timm_registry_matches, assert_features_match, layout, port_smp_encoder, smp_encoder, tame_residuals
from tests.parity import BACKEND, image, offline_hub_snapshot, randomize_batchnorm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")
PORTED = sorted(n for n, e in EFFICIENTNET_MODELS.items() if unported(e["params"]) is None)
UNPORTED = set()


def randomize_norms(module, seed=0):
    """BatchNorm statistics (and GroupNorm / LayerNorm / EvoNorm parameters) away from their defaults."""
    from timm.layers import EvoNorm2dS0

    randomize_batchnorm(module, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm, EvoNorm2dS0)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
            if isinstance(m, EvoNorm2dS0) and m.v is not None:
                m.v.copy_(torch.rand(m.v.shape, generator=gen) + 0.5)
    return module


def assert_matches_smp(name, size=(32, 32), data_format="channels_last", tame=False, **kwargs):
    """Features of ``name`` equal SMP's TimmUniversalEncoder's (timm random weights, norms randomised;
    ``tame``: residual branches scaled down, for nets whose random activations grow past float32's reach)."""
    reference = randomize_norms(smp_encoder(name, weights=None, **kwargs))
    if tame:
        tame_residuals(reference)
    encoder = port_smp_encoder(reference, name, data_format, **kwargs)
    assert encoder.out_channels == list(reference.out_channels)
    assert encoder.output_stride == reference.output_stride
    assert_features_match(reference, encoder, image((2, 3, *size)), data_format)


@pytest.mark.parametrize("name, data_format, output_stride", [
    ("tu-test_efficientnet", "channels_first", 16), ("tu-tf_efficientnet_lite0", "channels_last", 32),
    ("tu-test_efficientnet_evos", "channels_first", 32), ("tu-efficientnet_cc_b0_4e", "channels_first", 32),
])
def test_features_match_smp(name, data_format, output_stride):
    assert_matches_smp(name, (48, 32), data_format, output_stride=output_stride)


# name -> what it covers.
TORCH_SAMPLE = {
    "tu-tf_mixnet_s": "MixedConv depthwise kernels and grouped 1x1 expansion / projection with TF 'SAME' padding",
    "tu-tf_efficientnetv2_b0": "TF EfficientNetV2: EdgeResidual and ConvBnAct stages, SE on InvertedResidual",
    "tu-mobilenetv1_100h": "dsa blocks (activation after the pointwise conv, no skip), ReLU6",
    "tu-gc_efficientnetv2_rw_t": "GlobalContext attention in place of SE; ConvBnAct with skip, EdgeResidual, symmetric padding",
    "tu-efficientnet_es_pruned": "a pruned model's own conv widths, EdgeResidual force_in_chs",
    "tu-test_efficientnet_gn": "GroupNorm (group_size 8)",
    "tu-test_efficientnet_ln": "LayerNorm",
    "tu-tf_efficientnet_cc_b0_8e": "CondConvResidual (8 experts) with TF 'SAME' padding (dynamic on the strided CondConv2d)",
}


@pytest.mark.parametrize("name", sorted(TORCH_SAMPLE))
@torch_only
def test_sample_matches_smp(name):
    assert_matches_smp(name)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_context_is_timms(data_format):
    """The kit's global_context (gc_efficientnetv2_rw_t's se_layer='gc') as timm's GlobalContext, every backend."""
    from timm.layers import GlobalContext

    from backbones.layers.attention import global_context
    from tests.parity import to_format, to_nchw

    torch.manual_seed(0)
    reference = randomize_norms(GlobalContext(6, rd_channels=3, act_layer=torch.nn.SiLU)).eval()
    with torch.no_grad():  # LayerNorm2d is a LayerNorm: randomize_norms set its affine parameters
        reference.mlp_scale.fc2.weight.normal_()
    x = image((2, 6, 5, 4))
    shape = (6, None, None) if data_format == "channels_first" else (None, None, 6)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, global_context(inputs, 3, "gc", data_format=data_format, act="swish"))
    from weight_ports.translate import load_state_dict

    load_state_dict(model, {f"gc.{k}": v.numpy() for k, v in reference.state_dict().items()})
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    actual = to_nchw(keras.ops.convert_to_numpy(model(to_format(x, data_format))), data_format)
    np.testing.assert_allclose(actual, expected, atol=1e-5)


@torch_only
def test_blurpc_is_timms():
    """timm's 'blurpc' anti-aliasing (efficientnet_blur_b0: BlurPool2d with zero padding) as the kit's BlurPool."""
    from timm.layers import BlurPool2d

    from backbones.layers.pooling import blur_pool

    x = image((1, 5, 9, 8))
    inputs = keras.Input((5, None, None))
    model = keras.Model(inputs, blur_pool(inputs, 2, data_format="channels_first", pad_mode="constant"))
    expected = BlurPool2d(5, stride=2, pad_mode="constant")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-6)


@pytest.mark.parametrize("name, output_stride", [
    ("tu-mobilenet_edgetpu_v2_xs", 8), ("tu-efficientnet_cc_b1_8e", 16),
])
@torch_only
def test_dilation_matches_smp(name, output_stride):
    """timm's builder: strides past output_stride become dilation (a stage's first block keeps the previous one);
    grouped EdgeResidual convs (group_size) and a ConvBnAct first stage."""
    assert_matches_smp(name, (48, 32), output_stride=output_stride)


@pytest.mark.parametrize("depth", [1, 3])
@torch_only
def test_depths(depth):
    assert_matches_smp("tu-test_efficientnet", depth=depth)


def _meta_layouts(name):
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None)
    with keras.device("meta"):
        ours = layout(backbones.get_encoder(name))
    return ours, {k: tuple(v.shape) for k, v in reference.state_dict().items()}, list(reference.out_channels)


@pytest.mark.parametrize("name", ["tu-efficientnet_b0_g8_gn", "tu-mixnet_s", "tu-efficientnet_x_b3", "tu-tf_efficientnet_cc_b1_8e"])
@torch_only
def test_state_dict_layout_matches_smp(name):
    """SMP's tu- encoder's state_dict keys and shapes and out_channels (timm on the meta device), for names
    outside the parity tests (whose strict state_dict loading already checks them): group_size 8 ds / ir
    convs, MixedConv with symmetric padding, space-to-depth
    (conv_s2d, halved dw kernel, SE ratio / 4: 13M parameters, its parity in the sweep) (fixed stems, channel
    rounding and every block's widths of every name: test_block_plan_matches_timm; parity of all: the sweep)."""
    ours, theirs, out_channels = _meta_layouts(name)
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs
    assert list(ENCODERS[name].out_channels) == out_channels


class RecordedBlock(torch.nn.Module):
    """A stand-in for one of timm's block classes: records its kind and constructor arguments."""

    def __init__(self, kind, **kwargs):
        super().__init__()
        self.kind, self.kwargs = kind, kwargs

    def feature_info(self, location):
        return dict(module="", num_chs=self.kwargs["out_chs"])


def _timm_builder_plan(name, timm_module, creator, se_from_exp=False, stem_size=32):
    """What timm's EfficientNetBuilder gives each block of ``name``'s features_only model (its kwargs) and its
    feature_info, from the same constructor arguments, the blocks replaced by recorders (no weights);
    ``se_from_exp`` / ``stem_size``: the features class's defaults."""
    from functools import partial

    from timm.models import _efficientnet_builder as timm_builder
    from timm_tables import captured_args

    kwargs = captured_args(name, timm_module, creator)
    fix_stem, round_fn = kwargs.get("fix_stem", False), kwargs.get("round_chs_fn", timm_builder.round_channels)
    stem = kwargs.get("stem_size", stem_size) if fix_stem else round_fn(kwargs.get("stem_size", stem_size))
    classes = {c: partial(RecordedBlock, c) for c in ("InvertedResidual", "DepthwiseSeparableConv", "EdgeResidual", "ConvBnAct", "CondConvResidual")}
    saved = {c: getattr(timm_builder, c) for c in classes}
    try:
        for c, fake in classes.items():
            setattr(timm_builder, c, fake)
        builder = timm_builder.EfficientNetBuilder(
            pad_type=kwargs.get("pad_type", ""), round_chs_fn=round_fn, act_layer=kwargs.get("act_layer") or torch.nn.ReLU,
            norm_layer=kwargs.get("norm_layer"), se_layer=kwargs.get("se_layer") or timm_builder.SqueezeExcite,
            se_from_exp=kwargs.get("se_from_exp", se_from_exp), feature_location="bottleneck",
        )
        stages = builder(stem, kwargs["block_args"])
    finally:
        for c, original in saved.items():
            setattr(timm_builder, c, original)
    return stem, [[m for m in stage] for stage in stages], builder.features


KINDS = {"InvertedResidual": "ir", "DepthwiseSeparableConv": "ds", "EdgeResidual": "er", "ConvBnAct": "cn", "CondConvResidual": "ir"}


def assert_block_plan_matches_timm(name, params, timm_plan):
    """Every block's type, in / out channels, kernels, stride, dilation, expansion, SE ratio, skip, groups,
    space-to-depth and activation, and the feature_info, as timm's builder decides them (``timm_plan``)."""
    from timm_tables.efficientnet import act_name

    stem, theirs, features = timm_plan
    stages, ours_features = model_plan(params)
    assert stem_channels(params) == stem
    assert [len(s) for s in stages] == [len(s) for s in theirs]
    for ours_stage, their_stage in zip(stages, theirs):
        for ours, module in zip(ours_stage, their_stage):
            kw = module.kwargs
            assert ours.kind.replace("dsa", "ds") == KINDS[module.kind]
            assert ours.num_experts == kw.get("num_experts", 0) and (module.kind == "CondConvResidual") == bool(ours.num_experts)
            assert (ours.in_chs, ours.out_chs, ours.stride, ours.dilation) == (kw["in_chs"], kw["out_chs"], kw["stride"], kw["dilation"])
            kernel = kw.get("kernel_size") if ours.kind == "cn" else kw.get("exp_kernel_size" if ours.kind == "er" else "dw_kernel_size")
            assert ours.kernel == kernel and ours.pw_kernel == kw.get("pw_kernel_size", 1)
            assert ours.act == act_name(kw["act_layer"])
            se = kw.get("se_layer")
            assert ours.se_ratio == pytest.approx(se.keywords["rd_ratio"] if se else 0.0)
            if ours.kind == "ir":
                assert (ours.exp_ratio, ours.exp_kernel) == (kw["exp_ratio"], kw.get("exp_kernel_size", 1))
            if ours.kind == "er":
                assert (ours.exp_ratio, ours.force_in_chs) == (kw["exp_ratio"], kw.get("force_in_chs", 0))
            assert ours.group_size == kw.get("group_size", 0 if ours.kind in ("er", "cn") else 1)
            assert ours.s2d == kw.get("s2d", 0)
            skip = kw.get("skip", False) if ours.kind == "cn" else not kw.get("noskip", False)
            assert ours.skip == skip and ours.pw_act == kw.get("pw_act", False)
    assert [(c, r) for _, _, c, r in ours_features] == [(f["num_chs"], f["reduction"]) for f in features]
    if not params.get("widths"):  # a pruned model's own widths: its out_channels come from them
        channels = [3] + [f["num_chs"] for f in features]
        assert list(ENCODERS[f"tu-{name}"].out_channels) == channels


@pytest.mark.parametrize("name", PORTED)
@torch_only
def test_block_plan_matches_timm(name):
    from timm.models import efficientnet as timm_efficientnet

    timm_plan = _timm_builder_plan(name, timm_efficientnet, "_create_effnet")
    assert_block_plan_matches_timm(name, EFFICIENTNET_MODELS[name]["params"], timm_plan)


@torch_only
def test_registry_matches_timm():
    """Every ported name and tag: hub repository, timm's default tag, first conv, SMP's preprocessing; the
    unported ones are refused with the ported builders named; the table is what the generator derives now."""
    from timm.models import efficientnet as timm_efficientnet
    from timm_tables import captured_args
    from timm_tables import efficientnet as generator

    assert sorted(set(EFFICIENTNET_MODELS) - set(PORTED)) == sorted(UNPORTED)
    assert sorted(EFFICIENTNET_MODELS) == sorted(timm.list_models(module="efficientnet"))
    for name in ("efficientnet_b0", "tf_mixnet_s", "efficientnet_x_b3", "mobilenet_edgetpu_v2_xs", "efficientnet_b0_g8_gn"):
        params, _ = generator.effnet_params(captured_args(name, timm_efficientnet, "_create_effnet"))
        assert params == {k: v for k, v in EFFICIENTNET_MODELS[name]["params"].items() if k != "widths"}, name
    assert_timm_registry_matches(PORTED)
    for name in UNPORTED:
        with pytest.raises(ValueError, match="not ported"):
            backbones.get_encoder(f"tu-{name}")


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """encoder_weights loads timm's checkpoint of the tag from an offline cache through the real download code;
    classifier and head dropped, conv_stem adapted to 1 / 4 input channels by timm's rule; SMP reads the same cache."""
    tag = ENCODERS["tu-test_efficientnet"].pretrained_tag
    torch.manual_seed(3)
    model = randomize_batchnorm(timm.create_model("test_efficientnet"), 3)
    snapshot = offline_hub_snapshot(tmp_path, monkeypatch, f"timm/test_efficientnet.{tag}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"))
    for in_channels, depth in ((1, 5), (4, 3)):
        reference = smp.encoders.get_encoder("tu-test_efficientnet", in_channels=in_channels, depth=depth, weights=True).eval()
        encoder = backbones.get_encoder("tu-test_efficientnet", in_channels=in_channels, depth=depth, weights=True)
        assert_features_match(reference, encoder, image((1, in_channels, 32, 32)), "channels_last")


@torch_only
def test_pretrained_offline_cond_conv(tmp_path, monkeypatch):
    """A CondConv checkpoint (tf_efficientnet_cc_b0_4e's hub tag: routing_fn, (E, N) expert weights) loads
    through the real download code from an offline cache, as SMP reads the same cache."""
    name = "tf_efficientnet_cc_b0_4e"
    tag = ENCODERS[f"tu-{name}"].pretrained_tag
    torch.manual_seed(4)
    model = randomize_batchnorm(timm.create_model(name), 4)
    snapshot = offline_hub_snapshot(tmp_path, monkeypatch, f"timm/{name}.{tag}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"))
    reference = smp.encoders.get_encoder(f"tu-{name}", weights=True).eval()
    encoder = backbones.get_encoder(f"tu-{name}", weights=True)
    assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")
