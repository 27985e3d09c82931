"""The encoder contract and registry, independent of any family: arguments, weights sources,
custom encoders and the capabilities architectures read. Families: tests/test_encoder_*.py."""

import numpy as np
import pytest

import backbones
import keras_seg
from backbones.registry import ENCODERS, get_spec
from tests.encoder_conformance import write_hub_checkpoint
from weight_ports.hub import WeightsUnavailableError
from weight_ports.readers import read_state_dict
from weight_ports.translate import state_dict


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="resnet19"), "supported encoders"),
        (dict(name="resnet18", depth=0), r"depth should be in range \[1, 5\]"),
        (dict(name="resnet18", depth=6), r"depth should be in range \[1, 5\]"),
        (dict(name="resnet18", depth="3"), r"depth should be in range \[1, 5\]"),
        (dict(name="resnet18", output_stride=4), "output_stride should be one of"),
        (dict(name="resnet18", weights="imagenet21k"), "Available options are"),
        (dict(name="resnet18", in_channels=0), "in_channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backbones.get_encoder(**kwargs)


def test_pretrained_weights_from_local_folder(tmp_path, monkeypatch):
    snapshot = write_hub_checkpoint("resnet18", "imagenet", tmp_path / "hub", monkeypatch)
    folder = tmp_path / "weights" / "resnet18.imagenet"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes((snapshot / "model.safetensors").read_bytes())
    monkeypatch.setenv("KERAS_SEG_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    encoder = backbones.get_encoder("resnet18", weights="imagenet")
    expected = read_state_dict(str(snapshot / "model.safetensors"))["conv1.weight"]
    np.testing.assert_array_equal(state_dict(encoder)["conv1.weight"], expected)


def test_offline_without_cache_says_what_to_download(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("KERAS_SEG_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsUnavailableError, match=r"smp-hub/resnet34\.imagenet.*\n.*hf download"):
        backbones.get_encoder("resnet34", weights="imagenet")


def _tiny(x, *, depth, output_stride, data_format, widths=(8, 16, 16, 32, 32)):
    from backbones.layers import batch_norm, conv2d, relu

    features = [x]
    for i, channels in enumerate(widths):
        x = relu(batch_norm(conv2d(x, channels, 3, f"convs-{i}", data_format=data_format, stride=2, padding=1), f"norms-{i}", data_format=data_format))
        features.append(x)
    return features


def test_custom_encoder_registration():
    backbones.register_encoder("tiny_test_net", _tiny, out_channels=[3, 8, 16, 16, 32, 32], supports_dilation=False, overwrite=True)
    model = keras_seg.Unet("tiny_test_net", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8), classes=2)
    assert tuple(model(np.zeros((1, 32, 32, 3), "float32")).shape) == (1, 32, 32, 2)
    with pytest.raises(ValueError, match="dilated"):
        backbones.get_encoder("tiny_test_net", output_stride=16)
    with pytest.raises(ValueError, match="already registered"):
        backbones.register_encoder("tiny_test_net", _tiny, out_channels=[3, 8, 16, 16, 32, 32])
    with pytest.raises(TypeError, match="unknown capabilities"):
        backbones.register_encoder("tiny_test_net", _tiny, out_channels=[3, 8, 16, 16, 32, 32], overwrite=True, dilated=False)
    with pytest.raises(ValueError, match="max_depth"):
        backbones.register_encoder("tiny_test_net", _tiny, out_channels=[3, 8, 16], overwrite=True)


def test_capabilities_decide_what_architectures_do():
    """Architectures ask the spec, not the name: a transformer-style encoder is refused where SMP
    refuses MiT, a center-block encoder gets Unet's center block, a custom dilation error is raised
    as given, a weights hook replaces smp-hub loading."""
    loaded = []
    backbones.register_encoder(
        "tiny_transformer_style", _tiny, out_channels=[3, 8, 16, 16, 32, 32], stride2_feature=False,
        dilation_error="no dilation here", pretrained_weights={"mine": {}}, load_weights=lambda enc, w: loaded.append(w),
        overwrite=True,
    )
    with pytest.raises(ValueError, match="is not supported for Linknet"):
        keras_seg.Linknet("tiny_transformer_style", encoder_weights=None)
    with pytest.raises(ValueError, match="support only encoder_depth=5"):
        keras_seg.FPN("tiny_transformer_style", encoder_weights=None, encoder_depth=4)
    with pytest.raises(ValueError, match="^no dilation here$"):
        backbones.get_encoder("tiny_transformer_style", output_stride=8)
    backbones.get_encoder("tiny_transformer_style", weights="mine")
    assert loaded == ["mine"]

    backbones.register_encoder("tiny_center", _tiny, out_channels=[3, 8, 16, 16, 32, 32], unet_center_block=True, overwrite=True)
    with_center = keras_seg.Unet("tiny_center", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8))
    assert any(k.startswith("decoder.center.") for k in with_center.torch_state_dict())
    backbones.register_encoder("tiny_center", _tiny, out_channels=[3, 8, 16, 16, 32, 32], overwrite=True)
    without = keras_seg.Unet("tiny_center", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8))
    assert not any(k.startswith("decoder.center.") for k in without.torch_state_dict())


def test_spec_is_a_copy():
    spec = get_spec("resnet18")
    spec.params["layers"] = [1, 1, 1, 1]
    assert ENCODERS["resnet18"].params["layers"] == [2, 2, 2, 2]
