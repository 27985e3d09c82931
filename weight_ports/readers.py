"""Safe readers for torch checkpoints: safetensors, or torch.load(weights_only=True)."""

import os

import numpy as np

TORCH_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def read_state_dict(path):
    """Read a checkpoint file into a ``{name: numpy array}`` dict without unpickling objects.

    ``.safetensors`` files are read with safetensors; ``.pt``, ``.pth``, ``.bin`` and
    ``.ckpt`` files only through ``torch.load(weights_only=True)``, which refuses
    arbitrary Python objects. A checkpoint that wraps its weights in ``state_dict``
    or ``model`` is unwrapped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path!r}")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        try:
            return dict(load_file(path))
        except Exception as e:  # bf16 tensors are not representable in numpy
            if "bfloat16" not in str(e) and "bf16" not in str(e).lower():
                raise
            return _read_safetensors_with_torch(path)
    if path.endswith(TORCH_PICKLE_SUFFIXES):
        try:
            import torch
        except ImportError as e:
            raise ImportError(
                f"Reading {path!r} needs torch (pip install torch); "
                "or convert the checkpoint to .safetensors."
            ) from e
        obj = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                obj = obj[key]
        if not isinstance(obj, dict):
            raise ValueError(f"{path!r} does not hold a state_dict (got {type(obj).__name__}).")
        return {k: _to_numpy(v) for k, v in obj.items() if hasattr(v, "shape")}
    raise ValueError(
        f"Unsupported checkpoint format for {path!r}; expected one of "
        f"'.safetensors', {', '.join(repr(s) for s in TORCH_PICKLE_SUFFIXES)}."
    )


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

    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    arrays = {k: np.ascontiguousarray(v) if np.ndim(v) else np.asarray(v) for k, v in state_dict.items()}
    try:
        save_file(arrays, tmp, metadata=metadata or {"format": "pt"})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
