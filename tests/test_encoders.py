"""Encoders against SMP's: features at every stride, dilation, depth, in_channels, pretrained weights."""

import os

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

import backbones
from backbones.registry import ENCODERS
from tests.parity import image, offline_hub_snapshot, randomize_batchnorm, relative_error, to_format, to_nchw
from weight_ports.hub import WeightsUnavailableError
from weight_ports.translate import load_state_dict, state_dict

RESNETS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x4d",
    "resnext101_32x8d", "resnext101_32x16d", "resnext101_32x32d", "resnext101_32x48d",
]


def _smp_encoder(name, **kwargs):
    torch.manual_seed(0)
    return randomize_batchnorm(smp.encoders.get_encoder(name, **kwargs).eval())


def _assert_features_match(reference, encoder, x, data_format):
    with torch.inference_mode():
        expected = [f.numpy() for f in reference(torch.from_numpy(x))]
    actual = [to_nchw(f, data_format) for f in encoder(to_format(x, data_format), training=False)]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, (i, a.shape, e.shape)
        assert relative_error(a, e) < 1e-4, f"feature {i}: {relative_error(a, e):.2e}"


def test_registry_lists_the_resnet_family():
    assert set(RESNETS) <= set(backbones.list_encoders())


@pytest.mark.parametrize(
    "name, depth, output_stride",
    [("resnet18", 5, 32), ("resnet18", 5, 8), ("resnet34", 4, 16), ("resnet50", 5, 16), ("resnext50_32x4d", 5, 8), ("resnet18", 1, 32), ("resnet50", 3, 32)],
)
def test_features_match_smp(name, depth, output_stride, data_format):
    reference = _smp_encoder(name, depth=depth, output_stride=output_stride)
    encoder = backbones.get_encoder(name, depth=depth, output_stride=output_stride, data_format=data_format)
    load_state_dict(encoder, {k: v.numpy() for k, v in reference.state_dict().items()})
    assert encoder.out_channels == list(reference.out_channels)
    assert encoder.output_stride == reference.output_stride
    assert encoder.depth == depth
    _assert_features_match(reference, encoder, image((2, 3, 64, 48)), data_format)


@pytest.mark.parametrize("name, output_stride", [("resnet152", 16), ("resnext101_32x4d", 8), ("resnext101_32x16d", 32)])
def test_deep_encoders_features_match_smp(name, output_stride):
    # The other 101-layer ones (resnet101, resnext101_32x8d, _32x32d, _32x48d: up to 0.8 billion
    # parameters) differ from these only in the registry parameters (layers, width per group)
    # that test_registry_matches_smp_encoder_table compares with SMP's table.
    reference = _smp_encoder(name, output_stride=output_stride)
    encoder = backbones.get_encoder(name, output_stride=output_stride, data_format="channels_last")
    load_state_dict(encoder, {k: v.numpy() for k, v in reference.state_dict().items()})
    _assert_features_match(reference, encoder, image((1, 3, 32, 32)), "channels_last")


@pytest.mark.parametrize("name", RESNETS)
def test_registry_matches_smp_encoder_table(name):
    theirs = smp.encoders.encoders[name]
    ours = ENCODERS[name]
    block = {"BasicBlock": "basic", "Bottleneck": "bottleneck"}[theirs["params"]["block"].__name__]
    assert ours["params"] == {"block": block, **{k: v for k, v in theirs["params"].items() if k not in ("out_channels", "block")}}
    assert ours["out_channels"] == theirs["params"]["out_channels"]
    assert ours["pretrained_weights"] == {
        w: {"repo_id": s["repo_id"], "revision": s["revision"]} for w, s in theirs["pretrained_settings"].items()
    }


@pytest.mark.parametrize("name", RESNETS[:-2])
def test_state_dict_layout_matches_smp(name):
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name)
    encoder = backbones.get_encoder(name)
    ours = state_dict(encoder)
    theirs = reference.state_dict()
    assert set(ours) == set(theirs)
    assert all(tuple(ours[k].shape) == tuple(theirs[k].shape) for k in theirs)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_depth_and_strides(depth):
    encoder = backbones.get_encoder("resnet18", depth=depth)
    features = encoder(np.zeros((1, 64, 64, 3), "float32"))
    assert len(features) == depth + 1 == len(encoder.out_channels)
    assert [64 // f.shape[1] for f in features] == [2**i for i in range(depth + 1)]
    assert encoder.output_stride == 2**depth
    # Deeper stages are kept (not computed) so SMP checkpoints round-trip at any depth.
    assert any(k.startswith("layer4.") for k in state_dict(encoder))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="resnet19"), "supported encoders"),
        (dict(name="resnet18", depth=0), r"depth should be in range \[1, 5\]"),
        (dict(name="resnet18", depth=6), r"depth should be in range \[1, 5\]"),
        (dict(name="resnet18", output_stride=4), "output_stride should be one of"),
        (dict(name="resnet18", weights="imagenet21k"), "Available options are"),
        (dict(name="resnet18", in_channels=0), "in_channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backbones.get_encoder(**kwargs)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A local Hugging Face cache holding SMP's resnet18 'imagenet' checkpoint (random weights)."""
    entry = ENCODERS["resnet18"]["pretrained_weights"]["imagenet"]
    snapshot = offline_hub_snapshot(tmp_path / "hub", monkeypatch, entry["repo_id"], entry["revision"])
    torch.manual_seed(3)
    source = randomize_batchnorm(smp.encoders.get_encoder("resnet18"), seed=3)
    weights = {k: v.contiguous() for k, v in source.state_dict().items()}
    weights["fc.weight"] = torch.randn(10, 512)  # classifier keys are dropped on load, as SMP does
    save_file(weights, str(snapshot / "model.safetensors"))
    (snapshot / "config.json").write_text('{"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}')
    return tmp_path / "hub"


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_pretrained_weights_offline_match_smp(hub_cache, in_channels, data_format):
    # SMP reads the same cached checkpoint and applies its first-conv rule for in_channels != 3.
    reference = smp.encoders.get_encoder("resnet18", in_channels=in_channels, weights="imagenet").eval()
    encoder = backbones.get_encoder("resnet18", in_channels=in_channels, weights="imagenet", data_format=data_format)
    _assert_features_match(reference, encoder, image((1, in_channels, 64, 64)), data_format)


def test_pretrained_weights_from_local_folder(tmp_path, monkeypatch, hub_cache):
    folder = tmp_path / "weights" / "resnet18.imagenet"
    folder.mkdir(parents=True)
    snapshot = next(hub_cache.glob("models--*/snapshots/*"))
    (folder / "model.safetensors").write_bytes((snapshot / "model.safetensors").read_bytes())
    monkeypatch.setenv("KERAS_SEG_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    encoder = backbones.get_encoder("resnet18", weights="imagenet")
    from_cache = os.fspath(snapshot / "model.safetensors")
    from weight_ports.readers import read_state_dict

    np.testing.assert_array_equal(state_dict(encoder)["conv1.weight"], read_state_dict(from_cache)["conv1.weight"])


def test_offline_without_cache_says_what_to_download(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("KERAS_SEG_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsUnavailableError, match=r"smp-hub/resnet34\.imagenet.*\n.*hf download"):
        backbones.get_encoder("resnet34", weights="imagenet")


def test_custom_encoder_registration():
    from backbones.torch_layers import batch_norm, conv2d, relu

    def tiny(x, *, depth, output_stride, data_format):
        features = [x]
        for i, channels in enumerate([8, 16, 16, 32, 32]):
            x = relu(batch_norm(conv2d(x, channels, 3, f"convs-{i}", data_format=data_format, stride=2, padding=1), f"norms-{i}", data_format=data_format))
            features.append(x)
        return features

    backbones.register_encoder("tiny_test_net", tiny, out_channels=[3, 8, 16, 16, 32, 32], supports_dilation=False, overwrite=True)
    import keras_seg

    model = keras_seg.Unet("tiny_test_net", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8), classes=2)
    assert tuple(model(np.zeros((1, 32, 32, 3), "float32")).shape) == (1, 32, 32, 2)
    with pytest.raises(ValueError, match="dilated"):
        backbones.get_encoder("tiny_test_net", output_stride=16)
    with pytest.raises(ValueError, match="already registered"):
        backbones.register_encoder("tiny_test_net", tiny, out_channels=[3, 8, 16, 16, 32, 32])
