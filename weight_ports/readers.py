"""Safe readers for torch checkpoints: safetensors, or torch.load(weights_only=True)."""

import os
import pickle
import re

import numpy as np

from weight_ports.atomic import atomic_path

TORCH_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: corrupt, truncated, or holding more than tensors."""


class UnpicklingRefusedError(CheckpointError, pickle.UnpicklingError):
    """A torch checkpoint holding Python objects, which ``torch.load(weights_only=True)`` refused."""


def read_state_dict(path):
    """Read a checkpoint file into a ``{name: numpy array}`` dict without unpickling objects.

    ``.safetensors`` files are read with safetensors; ``.pt``, ``.pth``, ``.bin`` and
    ``.ckpt`` files only through ``torch.load(weights_only=True)``, which refuses
    arbitrary Python objects. A checkpoint that wraps its weights in ``state_dict``
    or ``model`` is unwrapped. A file that cannot be read raises ``CheckpointError``
    naming the file and what is wrong with it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path!r}")
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    if path.endswith(TORCH_PICKLE_SUFFIXES):
        return _read_torch(path)
    raise ValueError(
        f"Unsupported checkpoint format for {path!r}; expected one of "
        f"'.safetensors', {', '.join(repr(s) for s in TORCH_PICKLE_SUFFIXES)}."
    )


def _first_line(error):
    """The first sentence of an error message (library messages run to paragraphs)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0].split(". ")[0].rstrip(".") if lines else type(error).__name__


def _read_safetensors(path):
    from safetensors.numpy import load_file

    try:
        return dict(load_file(path))
    except Exception as e:  # bf16 tensors are not representable in numpy
        if "bfloat16" in str(e) or "bf16" in str(e).lower():
            return _read_safetensors_with_torch(path)
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {_first_line(e)}") from None


def _read_torch(path):
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"Reading {path!r} needs torch (pip install torch); or convert the checkpoint to .safetensors.") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"(?:[Uu]nsupported (?:global: )?GLOBAL \S+|Unsupported operand \d+)", str(e))
        detail = found.group(0).removeprefix("Trying to load ") if found else ""
        raise UnpicklingRefusedError(
            f"{path} is not a plain tensor checkpoint: torch.load(weights_only=True) refused it"
            f"{' (' + detail + ')' if detail else ''}; keras-seg never unpickles Python objects. "
            "Save a state_dict, or convert the file to .safetensors."
        ) from None
    except Exception as e:  # torch's weights-only unpickler on garbage: IndexError, KeyError, RuntimeError ...
        raise CheckpointError(f"{path} is not a readable torch checkpoint (truncated or corrupt?): "
                              f"{type(e).__name__}: {_first_line(e)}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state_dict (got {type(obj).__name__}).")
    return {k: _to_numpy(v) for k, v in obj.items() if hasattr(v, "shape")}


def _read_safetensors_with_torch(path):
    from safetensors.torch import load_file

    return {k: _to_numpy(v) for k, v in load_file(path).items()}


def _to_numpy(tensor):
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def write_safetensors(state_dict, path, metadata=None):
    """Write ``{name: array}`` to ``path`` atomically (temporary file, then rename)."""
    from safetensors.numpy import save_file

    arrays = {k: np.ascontiguousarray(v) if np.ndim(v) else np.asarray(v) for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(arrays, tmp, metadata=metadata or {"format": "pt"})
