"""The README's Python examples run as written (those needing a network or user files are skipped)."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEEDS_USER_FILES = ("path/to/", "from_pretrained(", "export_model(", 'encoder_weights="imagenet"')


def _python_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if not any(marker in b for marker in NEEDS_USER_FILES)]


BLOCKS = _python_blocks()


def test_readme_has_runnable_examples():
    joined = "\n".join(BLOCKS)
    assert "model.fit(" in joined and "register_encoder(" in joined


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index]
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "readme"})


def test_readme_lists_every_encoder():
    """Every registered encoder name appears in the README's encoder table ("a ... b" spans a numbered range)."""
    import backbones

    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    table = text[text.index("### Encoders") : text.index("### Registering your own encoder")]
    listed = set(re.findall(r"`([^`\s]+)`", table))
    for first, last in re.findall(r"`([^`\s]+)` \.\.\. `([^`\s]+)`", table):
        (stem, a), (stem_b, b) = (re.match(r"(.*?)(\d+)$", n).groups() for n in (first, last))
        assert stem == stem_b, (first, last)
        listed |= {f"{stem}{i}" for i in range(int(a), int(b) + 1)}
    from backbones.registry import ENCODERS

    native = {n for n, spec in ENCODERS.items() if spec.builder.__module__.startswith("backbones.")}  # not the README's "tiny"
    missing = sorted(native - listed)
    assert not missing, f"README's encoder table lacks {missing}"
