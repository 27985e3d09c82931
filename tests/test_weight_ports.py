"""Checkpoint reading (never unpickling), strict/non-strict loading, atomic SMP-format writing."""

import os
import pickle
import random

import keras
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import keras_seg
from weight_ports.first_conv import adapt_first_conv
from weight_ports.readers import CheckpointError, read_state_dict
from tests.arch_configs import ARCH_CONFIGS, INPUT_SIZES
from weight_ports.translate import StateDictMismatchError, load_state_dict, state_dict


def _small_unet(**kwargs):
    return keras_seg.Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(16, 8), **kwargs)


def test_reads_safetensors_and_torch_files(tmp_path):
    tensors = {"a.weight": np.arange(6, dtype="float32").reshape(2, 3)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    torch.save({"state_dict": {"a.weight": torch.arange(6.0).reshape(2, 3)}}, tmp_path / "m.pth")
    for name in ("m.safetensors", "m.pth"):
        np.testing.assert_array_equal(read_state_dict(tmp_path / name)["a.weight"], tensors["a.weight"])


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_refuses_to_unpickle_arbitrary_objects(tmp_path):
    torch.save({"weight": torch.ones(1), "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match=r"evil\.pt is not a plain tensor checkpoint.*GLOBAL posix\.system"):
        read_state_dict(tmp_path / "evil.pt")


@pytest.mark.parametrize("name, content, message", [
    ("cut.safetensors", None, "is not a readable safetensors file"),
    ("noise.safetensors", random.Random(0).randbytes(2048), "is not a readable safetensors file"),
    ("empty.safetensors", b"", "is not a readable safetensors file"),
    # fixed noise: seed 0 reaches an opcode torch's weights-only unpickler refuses, seed 2 makes it
    # fail with an IndexError (about 1 in 12 random files did, and the reader let it through)
    ("noise.pth", random.Random(0).randbytes(2048), "is not a plain tensor checkpoint"),
    ("noise2.pth", random.Random(2).randbytes(2048), "is not a readable torch checkpoint"),
    ("cut.pth", None, "is not a readable torch checkpoint"),
])
def test_corrupt_checkpoints_raise_one_line_naming_the_file(tmp_path, name, content, message):
    if content is None:  # the first half of a valid file
        good = tmp_path / ("good" + os.path.splitext(name)[1])
        if name.endswith(".pth"):
            torch.save({"w": torch.zeros(64, 64)}, good)
        else:
            save_file({"w": np.zeros((64, 64), "float32")}, str(good))
        content = good.read_bytes()[: good.stat().st_size // 2]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        read_state_dict(tmp_path / name)
    assert str(tmp_path / name) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_rejects_unknown_formats_and_missing_files(tmp_path):
    (tmp_path / "m.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        read_state_dict(tmp_path / "m.npz")
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "none.safetensors")


def test_strict_load_lists_every_problem_and_changes_nothing():
    model = _small_unet()
    state = state_dict(model)
    before = state_dict(model)["segmentation_head.0.weight"].copy()
    state["segmentation_head.0.weight"] = np.zeros((5, 8, 3, 3), "float32")
    state.pop("decoder.blocks.0.conv1.0.weight")
    state["extra.weight"] = np.zeros(3, "float32")
    with pytest.raises(StateDictMismatchError) as info:
        load_state_dict(model, state)
    message = str(info.value)
    assert "missing keys" in message and "decoder.blocks.0.conv1.0.weight" in message
    assert "unexpected keys" in message and "extra.weight" in message
    assert "shape-mismatched" in message and "(5, 8, 3, 3) -> (1, 8, 3, 3)" in message
    np.testing.assert_array_equal(state_dict(model)["segmentation_head.0.weight"], before)


def test_non_strict_load_warns_and_loads_what_fits():
    model = _small_unet()
    state = {k: v + 1 if v.dtype == np.float32 else v for k, v in state_dict(model).items()}
    state["segmentation_head.0.weight"] = np.zeros((5, 8, 3, 3), "float32")
    with pytest.warns(UserWarning, match="segmentation_head.0.weight"):
        load_state_dict(model, state, strict=False)
    np.testing.assert_array_equal(state_dict(model)["encoder.conv1.weight"], state["encoder.conv1.weight"])


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="backend-independent: runs with the torch backend")
@pytest.mark.parametrize("in_channels", [1, 2, 3, 4, 5, 7])
def test_first_conv_rule_is_smps(in_channels):
    """adapt_first_conv against SMP's own patch_first_conv (pretrained=True) on a torch conv."""
    from segmentation_models_pytorch.encoders._utils import patch_first_conv

    torch.manual_seed(in_channels)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))
    weight = net[0].weight.detach().numpy().copy()
    patch_first_conv(net, in_channels, pretrained=True)
    expected = net[0].weight.detach().numpy()
    assert net[0].in_channels == in_channels and expected.shape == (8, in_channels, 3, 3)
    np.testing.assert_array_equal(adapt_first_conv(weight, in_channels), expected)


def test_first_conv_rule_refuses_other_shapes():
    w = np.random.RandomState(0).rand(4, 3, 3, 3).astype("float32")
    with pytest.raises(ValueError, match="O, 3, kh, kw"):
        adapt_first_conv(w[:, :2], 4)


CHECKPOINT_FILES = ("model.safetensors", "config.json", "README.md")


def _fail_half_way(monkeypatch, name):
    """Writing ``name`` (or a staging file for it) stops half-way with "disk full": what a full
    disk or a kill does to a writer that writes the target in place."""
    import builtins

    import safetensors.numpy

    def half_then_fail(write, data):
        write(data[: len(data) // 2])
        raise OSError("disk full")

    if name == "model.safetensors":
        def save_file(tensors, path, metadata=None):
            with builtins.open(path, "wb") as f:
                half_then_fail(f.write, safetensors.numpy.save(tensors, metadata=metadata))

        monkeypatch.setattr(safetensors.numpy, "save_file", save_file)
        return
    real_open = builtins.open

    class HalfFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            half_then_fail(self.f.write, data)

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return HalfFile(f) if "w" in mode and name in os.path.basename(os.fspath(file)) else f

    monkeypatch.setattr(builtins, "open", fake_open)


@pytest.mark.parametrize("failing", CHECKPOINT_FILES)
def test_save_pretrained_failure_keeps_the_older_checkpoint(tmp_path, monkeypatch, failing):
    """An older checkpoint in the target, a later save_pretrained of another model that fails
    half-way through one file: that file and every file not yet written are the old ones, byte for
    byte, each file already written is whole, and no staging file is left."""
    target = tmp_path / "ckpt"
    _small_unet(classes=1).save_pretrained(target)
    old = {name: (target / name).read_bytes() for name in CHECKPOINT_FILES}
    newer = _small_unet(classes=2)
    newer.save_pretrained(tmp_path / "clean")
    new = {name: (tmp_path / "clean" / name).read_bytes() for name in CHECKPOINT_FILES}
    assert all(old[name] != new[name] for name in CHECKPOINT_FILES)
    with monkeypatch.context() as patch:
        _fail_half_way(patch, failing)
        with pytest.raises(OSError, match="disk full"):
            newer.save_pretrained(target)
    assert sorted(os.listdir(target)) == sorted(CHECKPOINT_FILES)  # no staging file
    after = {name: (target / name).read_bytes() for name in CHECKPOINT_FILES}
    written = CHECKPOINT_FILES[: CHECKPOINT_FILES.index(failing)]
    for name in CHECKPOINT_FILES:
        assert after[name] == (new[name] if name in written else old[name]), name
    if failing == "model.safetensors":  # the checkpoint as a whole is still the older model, and loads
        assert keras_seg.from_pretrained(target).config["classes"] == 1


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        keras_seg.from_pretrained(tmp_path)
    for missing in ("/missing/local/folder", "./runs/smp", "~/ckpt", tmp_path / "absent"):
        with pytest.raises(FileNotFoundError, match="No such folder") as e:
            keras_seg.from_pretrained(missing)
        assert "hf download" not in str(e.value)
    config = tmp_path / "config.json"
    for content, message in (("{not json", "is not valid JSON"), ("[1, 2]", "holds a JSON list"),
                             ('{"_model_class": "Unet", "decoder_blocks": 3}', "does not describe a Unet")):
        config.write_text(content)
        with pytest.raises(ValueError, match=message) as e:
            keras_seg.from_pretrained(tmp_path)
        assert str(config) in str(e.value)
    (tmp_path / "config.json").write_text('{"encoder_name": "resnet18"}')
    with pytest.raises(ValueError, match="_model_class"):
        keras_seg.from_pretrained(tmp_path)


@pytest.mark.parametrize("arch", sorted(ARCH_CONFIGS))
def test_every_architecture_round_trips_channels_first(arch, tmp_path):
    """The per-architecture round trips run channels_last; the same checkpoints through a channels_first
    model: SMP -> keras-seg -> save_pretrained -> SMP bit-identical (trained counters and statistics
    included), and a .keras save keeps every weight and the layout."""
    import segmentation_models_pytorch as smp

    from tests.encoder_conformance import SMP_CLASSES
    from tests.parity import assert_state_dicts_identical, smp_model, to_keras, trained

    reference = trained(smp_model(SMP_CLASSES[arch], encoder_name="resnet18", classes=2, **ARCH_CONFIGS[arch]),
                        size=INPUT_SIZES.get(arch, 64))
    model = to_keras(reference, "channels_first")
    model.save_pretrained(tmp_path / "smp")
    assert_state_dicts_identical(reference.state_dict(), smp.from_pretrained(str(tmp_path / "smp")).state_dict())
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.data_format == "channels_first"
    ours, reloaded = state_dict(model), state_dict(loaded)
    assert sorted(ours) == sorted(reloaded)
    for key, value in ours.items():
        np.testing.assert_array_equal(reloaded[key], value, err_msg=key)
