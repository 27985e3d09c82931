"""The README's Python examples run as written, offline: the test writes what they read.

A block naming pretrained ``encoder_weights="imagenet"`` gets SMP's checkpoint of that encoder
(random weights from SMP's own encoder) in a ``KERAS_SEG_WEIGHTS_DIR`` folder, the README's
documented offline source; a block reading ``path/to/smp_checkpoint`` gets a folder that SMP's
``save_pretrained`` wrote. After each block, what the README says about its result is checked.
"""

import os
import re

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

from backbones.registry import ENCODERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


BLOCKS = _python_blocks()


def _write_pretrained_weights(block, folder):
    """SMP's checkpoint files for every ``("<encoder>", ... encoder_weights="<weights>")`` in ``block``;
    returns ``{encoder: state_dict}``."""
    written = {}
    for name, weights in re.findall(r'encoder_name="([^"]+)", encoder_weights="([^"]+)"', block):
        repo = ENCODERS[name].pretrained_weights[weights]["repo_id"].split("/")[-1]
        torch.manual_seed(1)
        state = {k: v.contiguous() for k, v in smp.encoders.get_encoder(name).state_dict().items()}
        os.makedirs(folder / repo)
        save_file(state, str(folder / repo / "model.safetensors"))
        written[name] = state
    return written


def _write_smp_checkpoint(path):
    torch.manual_seed(2)
    reference = smp.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(32, 16, 8), classes=2)
    reference.save_pretrained(str(path))
    return reference


def test_every_block_is_run():
    joined = "\n".join(BLOCKS)
    assert "model.fit(" in joined and "register_encoder(" in joined and "from_pretrained(" in joined
    assert 'encoder_weights="imagenet"' in joined and "export_model(" in joined


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index]
    monkeypatch.setenv("KERAS_SEG_WEIGHTS_DIR", str(tmp_path / "weights"))
    pretrained = _write_pretrained_weights(code, tmp_path / "weights")
    smp_checkpoint = _write_smp_checkpoint(tmp_path / "path/to/smp_checkpoint") if "path/to/smp_checkpoint" in code else None
    namespace = {"__name__": "readme"}
    exec(compile(code, f"README.md block {index}", "exec"), namespace)

    model = namespace.get("model")
    for name, state in pretrained.items():  # the checkpoint's weights are in the model
        ours = model.torch_state_dict()
        for key in ("conv1.weight", "layer4.1.bn2.running_var"):
            np.testing.assert_array_equal(ours[f"encoder.{key}"], state[key].numpy())
    if smp_checkpoint is not None:  # fine-tuned to 5 classes, and SMP reads what keras-seg wrote
        back = smp.from_pretrained("for_smp")
        assert back.segmentation_head[0].out_channels == 5
        expected = smp_checkpoint.state_dict()["decoder.blocks.0.conv1.0.weight"]
        assert torch.equal(back.state_dict()["decoder.blocks.0.conv1.0.weight"], expected)
    if "export_model(" in code:
        from keras_seg.export import compare_exported

        assert os.path.isfile(tmp_path / "unet_savedmodel" / "saved_model.pb")
        for fmt, path in (("tf_saved_model", "unet_savedmodel"), ("litert", "unet.tflite")):
            assert compare_exported(model, str(tmp_path / path), fmt, namespace["x"]) < 1e-4


def test_readme_lists_every_encoder():
    """Every registered encoder name appears in the README's encoder table ("a ... b" spans a numbered range)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    table = text[text.index("### Encoders") : text.index("### Registering your own encoder")]
    listed = set(re.findall(r"`([^`\s]+)`", table))
    for first, last in re.findall(r"`([^`\s]+)` \.\.\. `([^`\s]+)`", table):
        (stem, a), (stem_b, b) = (re.match(r"(.*?)(\d+)$", n).groups() for n in (first, last))
        assert stem == stem_b, (first, last)
        listed |= {f"{stem}{i}" for i in range(int(a), int(b) + 1)}
    native = {n for n, spec in ENCODERS.items() if spec.builder.__module__.startswith("backbones.")}  # not the README's "tiny"
    missing = sorted(native - listed)
    assert not missing, f"README's encoder table lacks {missing}"
