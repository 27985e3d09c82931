"""timm's resnet module as native ``tu-`` encoders (backbones.timm_resnet) against SMP's TimmUniversalEncoder.

All backends: features of tu-resnet10t (deep-tiered stem, avg-pool shortcuts) and tu-test_resnet (mixed
Basic / Bottleneck stages, odd widths), in both data formats, a dilated (output_stride 8) tu-resnet10t, and
the kit's ECA / BlurPool in a cut tu-ecaresnet26t with BlurPool anti-aliasing.
Torch backend: a sample covering every block kind, stem, shortcut, attention (SE, SE 0.25, ECA),
anti-aliasing (avg, blur), GroupNorm and a pruned model (heavy members cut to one block per stage on both
sides through timm's own ``layers`` argument), output_stride 16 / 8 on each shortcut / aa kind, depths 1..5
(timm's features_only truncation: nothing past ``depth`` in the state_dict), and for every one of the 81
names the state_dict keys / shapes and out_channels of SMP's encoder (timm on the meta device). Pretrained
loading reads an offline hub cache written from timm's own model, in_channels 1 / 4 by timm's rule.
"""

import dataclasses

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from safetensors.torch import save_file
from timm.layers import BlurPool2d

import backbones
from backbones.registry import ENCODERS
from backbones.timm_configs.resnet import RESNET_MODELS
from tests.encoder_conformance import assert_timm_registry_matches, assert_features_match, layout, port_smp_encoder, smp_encoder
from tests.parity import (
    BACKEND, assert_state_dicts_identical, image, offline_hub_snapshot, randomize_batchnorm, relative_error, run_keras, run_smp,
    smp_model, to_keras,
)

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent or a wider sample: torch backend")
ONE_BLOCK = [1, 1, 1, 1]


def assert_matches_smp(name, size=(32, 32), data_format="channels_last", layers=None, variant=None, **kwargs):
    """Features of ``name`` equal SMP's TimmUniversalEncoder's (timm random weights, BatchNorms randomised).
    ``layers`` cuts both to that many blocks per stage (timm's ResNet argument; our spec's param);
    ``variant`` is ``(timm kwargs, our params)`` changing both alike (e.g. another anti-aliasing layer)."""
    timm_kwargs, params = variant or ({}, {})
    if layers:
        timm_kwargs, params = {**timm_kwargs, "layers": tuple(layers)}, {**params, "layers": list(layers)}
    reference = smp_encoder(name, weights=None, **timm_kwargs, **kwargs)
    ours = f"{name}-variant" if params else name
    if params:
        spec = ENCODERS[name]
        ENCODERS[ours] = dataclasses.replace(spec, name=ours, params={**spec.params, **params})
    try:
        encoder = port_smp_encoder(reference, ours, data_format, **kwargs)
        assert encoder.out_channels == list(reference.out_channels)
        assert encoder.output_stride == reference.output_stride
        assert_features_match(reference, encoder, image((2, 3, *size)), data_format)
    finally:
        ENCODERS.pop(f"{name}-variant", None)


@pytest.mark.parametrize("name, data_format", [
    ("tu-resnet10t", "channels_last"), ("tu-resnet10t", "channels_first"), ("tu-test_resnet", "channels_first"),
])
def test_features_match_smp(name, data_format):
    assert_matches_smp(name, (64, 48), data_format)


def test_dilated_features_match_smp():
    """output_stride 8: layer3 / layer4 dilated 2 / 4, their avg-pool shortcuts as timm's AvgPool2dSame."""
    assert_matches_smp("tu-resnet10t", (40, 32), output_stride=8)


def test_attention_and_blur_match_smp():
    """The kit's ECA and BlurPool (stem and strided blocks) on every backend: tu-ecaresnet26t with timm's
    BlurPool2d as anti-aliasing layer (timm's ``aa_layer`` argument; ours ``aa="blur"``), one block per stage."""
    assert_matches_smp("tu-ecaresnet26t", layers=ONE_BLOCK, variant=({"aa_layer": BlurPool2d}, {"aa": "blur"}))


# name -> what it covers (cut to one block per stage where marked).
TORCH_SAMPLE = {
    "tu-resnet18": (None, "BasicBlock, 7x7 stem, 1x1 conv shortcuts"),
    "tu-resnet50d": (ONE_BLOCK, "Bottleneck, deep stem, avg_down"),
    "tu-resnext50_32x4d": (ONE_BLOCK, "grouped 3x3 (cardinality 32, base width 4)"),
    "tu-seresnet18": (None, "SE (1/16, divisor 8) on BasicBlock"),
    "tu-ecaresnet26t": (None, "ECA, deep-tiered stem"),
    "tu-resnetrs50": (ONE_BLOCK, "replace_stem_pool, SE rd_ratio 0.25"),
    "tu-resnetaa34d": (ONE_BLOCK, "avg-pool anti-aliasing (stem and strided blocks)"),
    "tu-resnetblur18": (None, "BlurPool anti-aliasing (stem max-pool + blur)"),
    "tu-resnet50_gn": (ONE_BLOCK, "GroupNorm"),
    "tu-senet154": (ONE_BLOCK, "block_reduce_first 2, 3x3 conv shortcuts, cardinality 64"),
    "tu-ecaresnet50d_pruned": (None, "a pruned model's own conv widths"),
}


@pytest.mark.parametrize("name", sorted(TORCH_SAMPLE))
@torch_only
def test_sample_matches_smp(name):
    assert_matches_smp(name, layers=TORCH_SAMPLE[name][0])


@pytest.mark.parametrize("name, output_stride", [
    ("tu-resnet18", 16), ("tu-senet154", 8), ("tu-resnetblur18", 8), ("tu-resnetaa34d", 16), ("tu-resnet50d", 16),
])
@torch_only
def test_dilation_matches_smp(name, output_stride):
    """timm's make_blocks dilation: 1x1 / 3x3 / avg-pool shortcuts, anti-aliasing at stride 1 after the dilation changes
    (48 x 32: timm's own avg-pool anti-aliasing breaks on odd stride-8 maps, its stem pool floors where the shortcut ceils)."""
    assert_matches_smp(name, (48, 32), layers=ONE_BLOCK if name in ("tu-senet154", "tu-resnetaa34d", "tu-resnet50d") else None,
                       output_stride=output_stride)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@torch_only
def test_depths(depth):
    """timm's features_only model ends at the last feature taken: the state_dict loads strictly at every depth."""
    assert_matches_smp("tu-resnet10t", depth=depth)


def _cut(name):
    """Blocks per stage the layout check builds: every block of small and pruned models, one per stage of
    the others (their stages repeat the same block; the full depth is in the sweep, scripts/timm_sweep.py)."""
    params = RESNET_MODELS[name]["params"]
    return None if sum(params["layers"]) <= 8 or params.get("widths") else ONE_BLOCK


@pytest.mark.parametrize("name", sorted(RESNET_MODELS))
@torch_only
def test_state_dict_layout_matches_timm(name):
    """Every name: SMP's tu- encoder's state_dict keys and shapes (timm's features_only model, meta device)
    and out_channels; models cut to one block per stage (``_cut``) on both sides by timm's ``layers``
    argument (scripts/timm_sweep.py checks every name at full depth)."""
    layers = _cut(name)
    kwargs = {"layers": tuple(layers)} if layers else {}
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(f"tu-{name}", weights=None, **kwargs)
    spec = ENCODERS[f"tu-{name}"]
    if layers:
        spec = dataclasses.replace(spec, name=f"tu-{name}-cut", params={**spec.params, "layers": layers})
    with keras.device("meta"):
        ENCODERS[spec.name] = spec
        try:
            ours = layout(backbones.get_encoder(spec.name))
        finally:
            if layers:
                ENCODERS.pop(spec.name)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs
    assert list(spec.out_channels) == list(reference.out_channels)


@torch_only
def test_registry_matches_timm():
    """Every name and tag: the hub repository, timm's default tag for the bare name, the first conv, and
    preprocessing equal to what SMP's get_preprocessing_params reads from timm; the generated table is
    what the generator derives from timm now."""
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from timm_tables import captured_args
    from timm_tables import resnet as generator
    from timm.models import resnet as timm_resnet

    for name in ("resnet18", "resnetrs50", "ecaresnet26t", "resnetblur18", "senet154", "test_resnet"):
        params, _ = generator.resnet_params(captured_args(name, timm_resnet, "_create_resnet"))
        assert params == RESNET_MODELS[name]["params"], name
    assert_timm_registry_matches(RESNET_MODELS)


def write_timm_checkpoint(name, cache, monkeypatch, seed=3):
    """timm's own model ``name`` (random weights, randomised BatchNorms, its classifier) as its hub
    repository's model.safetensors in an offline Hugging Face cache."""
    torch.manual_seed(seed)
    model = randomize_batchnorm(timm.create_model(name), seed)
    snapshot = offline_hub_snapshot(cache, monkeypatch, f"timm/{name}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"), metadata={"format": "pt"})


@torch_only
def test_pretrained_offline(tmp_path, monkeypatch):
    """encoder_weights loads timm's checkpoint of the name's tag (the bare name: timm's default tag) from an
    offline cache through the real download code; classifier dropped, deep-stem first conv (conv1.0) adapted
    by timm's adapt_input_conv for 1 and 4 channels; depth 3 drops layer3 / layer4. SMP reads the same cache."""
    write_timm_checkpoint("resnet10t.c3_in1k", tmp_path, monkeypatch)
    assert ENCODERS["tu-resnet10t"].pretrained_tag == "c3_in1k"
    for in_channels, depth in ((1, 5), (4, 3)):
        reference = smp.encoders.get_encoder("tu-resnet10t", in_channels=in_channels, depth=depth, weights=True).eval()
        encoder = backbones.get_encoder("tu-resnet10t.c3_in1k", in_channels=in_channels, depth=depth, weights=True)
        assert_features_match(reference, encoder, image((1, in_channels, 32, 32)), "channels_last")
    with pytest.warns(UserWarning, match="should be set to True"):  # SMP's warning for a non-bool value
        backbones.get_encoder("tu-resnet10t", weights="imagenet")
    with pytest.raises(ValueError, match="Invalid pretrained tag"):
        backbones.get_encoder("tu-resnet10t.no_such_tag")


@torch_only
def test_adapt_input_conv_is_timms():
    from timm.models._manipulate import adapt_input_conv as timm_adapt

    from backbones.timm_universal import adapt_input_conv

    weight = torch.randn(8, 3, 3, 3)
    for in_chans in (1, 2, 4, 7):
        np.testing.assert_array_equal(adapt_input_conv(in_chans, weight.numpy()), timm_adapt(in_chans, weight.clone()).numpy())


@torch_only
def test_architecture_round_trips(tmp_path):
    """An SMP Unet on a tu- encoder at depth 4 (SMP's save_pretrained checkpoint: encoder.model.* keys, no
    layer4) loads into keras-seg with SMP's outputs; saved back, SMP loads it bit for bit; a .keras save
    keeps the outputs."""
    reference = smp_model("Unet", encoder_name="tu-resnet10t", classes=2, encoder_depth=4, decoder_channels=(32, 16, 16, 8))
    model = to_keras(reference, "channels_first")
    x = image((1, 3, 64, 64))
    expected = run_smp(reference, x)[0]
    actual = run_keras(model, x, "channels_first")[0]
    assert actual.shape == expected.shape and relative_error(actual, expected) < 1e-4
    model.save_pretrained(tmp_path / "for_smp")
    assert_state_dicts_identical(smp.from_pretrained(str(tmp_path / "for_smp")).state_dict(), reference.state_dict())
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(run_keras(loaded, x, "channels_first")[0], actual)
