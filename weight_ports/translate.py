"""One generic translator between Keras models built by keras-seg and torch state_dicts.

Every parametric layer is named after its torch module path (see ``naming``), so the
torch key of each Keras variable follows mechanically from the layer's name, the
names of the nested models that hold it and the layer's type.
"""

import warnings

import keras
import numpy as np

from weight_ports.naming import join, torch_path


def _conv_to_torch(k):  # (kh, kw, I, O) -> (O, I, kh, kw)
    return np.transpose(k, (3, 2, 0, 1))


def _conv_from_torch(w):
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise_to_torch(k):  # (kh, kw, C, 1) -> (C, 1, kh, kw)
    return np.transpose(k, (2, 3, 0, 1))


def _depthwise_from_torch(w):
    return np.transpose(w, (2, 3, 0, 1))


def _linear_to_torch(k):  # (I, O) -> (O, I)
    return np.transpose(k)


_same = (lambda a: a, lambda a: a)
_counter = (lambda a: np.asarray(a, np.int64), lambda a: np.asarray(a))  # torch keeps int64, Keras int32
_conv = (_conv_to_torch, _conv_from_torch)

# Layer class -> [(Keras attribute, torch suffix, (to_torch, from_torch))]. Order matters:
# subclasses first (DepthwiseConv2D and Conv2DTranspose are not Conv2D subclasses in
# Keras 3, but keep specific classes first anyway).
_RULES = [
    (keras.layers.DepthwiseConv2D, [("kernel", "weight", (_depthwise_to_torch, _depthwise_from_torch)), ("bias", "bias", _same)]),
    # torch ConvTranspose2d (I, O, kh, kw) <-> Keras (kh, kw, O, I): the same permutation as a conv.
    (keras.layers.Conv2DTranspose, [("kernel", "weight", _conv), ("bias", "bias", _same)]),
    (keras.layers.Conv2D, [("kernel", "weight", _conv), ("bias", "bias", _same)]),
    (keras.layers.Dense, [("kernel", "weight", (_linear_to_torch, _linear_to_torch)), ("bias", "bias", _same)]),
    (
        keras.layers.BatchNormalization,
        [
            ("gamma", "weight", _same),
            ("beta", "bias", _same),
            ("moving_mean", "running_mean", _same),
            ("moving_variance", "running_var", _same),
            # backbones.layers.BatchNorm counts training batches as torch does.
            ("num_batches_tracked", "num_batches_tracked", _counter),
        ],
    ),
    (keras.layers.LayerNormalization, [("gamma", "weight", _same), ("beta", "bias", _same)]),
    (keras.layers.GroupNormalization, [("gamma", "weight", _same), ("beta", "bias", _same)]),
]


class Param:
    """One Keras variable and how it maps to its torch tensor."""

    def __init__(self, key, variable, to_torch, from_torch):
        self.key, self.variable, self.to_torch, self.from_torch = key, variable, to_torch, from_torch

    def torch_shape(self):
        return tuple(self.to_torch(np.zeros(self.variable.shape, "float32")).shape)


def _layer_params(layer, prefix):
    """Params of one leaf layer; a layer may define ``smp_params(prefix)`` itself."""
    if hasattr(layer, "smp_params"):
        return list(layer.smp_params(prefix))
    for cls, rules in _RULES:
        if isinstance(layer, cls):
            out = []
            for attr, suffix, (to_t, from_t) in rules:
                var = getattr(layer, attr, None)
                if var is not None:
                    out.append(Param(torch_path(f"{prefix}.{suffix}"), var, to_t, from_t))
            return out
    if layer.weights:
        raise TypeError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has weights but no torch mapping; "
            "give it a smp_params(prefix) method."
        )
    return []


def _sublayers(model):
    layers = list(getattr(model, "layers", []))
    # Layers built but unused by the graph (e.g. a ResNet's layer4 at depth 3) still
    # hold weights that SMP's state_dict carries.
    layers += list(getattr(model, "dormant_layers", []))
    return layers


def collect_params(model, prefix=""):
    """All ``Param`` of ``model``, walking nested models; keys are torch state_dict keys."""
    params = []
    for layer in _sublayers(model):
        if isinstance(layer, keras.Model) and hasattr(layer, "smp_params"):  # a model that maps its own keys
            params += list(layer.smp_params(join(prefix, layer.name)))
        elif isinstance(layer, keras.Model):
            params += collect_params(layer, join(prefix, layer.name))
        elif layer.weights or hasattr(layer, "smp_params"):
            params += _layer_params(layer, join(prefix, layer.name))
    return params


def _is_batchnorm_counter(key, params_by_key):
    return key.endswith(".num_batches_tracked") and (key[: -len("num_batches_tracked")] + "running_mean") in params_by_key


def _is_counter(key):
    return key.endswith(".num_batches_tracked")


def state_dict(model, prefix=""):
    """The torch-layout state_dict (``{key: numpy array}``) of a keras-seg model or encoder.

    BatchNorm counters (``num_batches_tracked``, int64) come from ``backbones.layers.BatchNorm``;
    a plain Keras BatchNormalization, which does not count, reports 0.
    """
    out = {}
    for p in collect_params(model, prefix):
        out[p.key] = np.array(p.to_torch(keras.ops.convert_to_numpy(p.variable)), order="C")  # keeps 0-d counters 0-d
    for key in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(key[: -len("running_mean")] + "num_batches_tracked", np.array(0, dtype=np.int64))
    return out


class StateDictMismatchError(ValueError):
    """A checkpoint does not fit the model: lists missing, unexpected and mis-shaped keys."""


def _describe(missing, unexpected, mismatched, limit=20):
    def block(title, items):
        if not items:
            return ""
        shown = "\n".join(f"  - {i}" for i in items[:limit])
        more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
        return f"\n{title} ({len(items)}):\n{shown}{more}"

    return (
        block("missing keys (in the model, not in the checkpoint)", missing)
        + block("unexpected keys (in the checkpoint, not in the model)", unexpected)
        + block("shape-mismatched keys (checkpoint -> model)", mismatched)
    )


def load_state_dict(model, state, strict=True, prefix=""):
    """Load a torch state_dict (``{key: array}``) into ``model``.

    strict=True raises one ``StateDictMismatchError`` listing every missing, unexpected
    and shape-mismatched key, before any variable is changed. strict=False loads every
    tensor that fits and warns about the rest (SMP's fine-tuning pattern).
    Returns ``(missing, unexpected, mismatched)``.
    """
    params = collect_params(model, prefix)
    by_key = {p.key: p for p in params}
    # A checkpoint without BatchNorm counters (torch's own older format) leaves them as they are.
    missing = [k for k in by_key if k not in state and not _is_counter(k)]
    unexpected, mismatched, ready = [], [], []
    for key, value in state.items():
        if key not in by_key:
            if not _is_batchnorm_counter(key, by_key):
                unexpected.append(key)
            continue
        p = by_key[key]
        value = np.asarray(value)
        expected = p.torch_shape()
        if expected == () and value.shape == (1,):
            value = value.reshape(())  # torch loads a 1-element tensor into a 0-d one (old checkpoints)
        if tuple(value.shape) != expected:
            mismatched.append(f"{key}: {tuple(value.shape)} -> {expected}")
            continue
        ready.append((p, value))
    if missing or unexpected or mismatched:
        message = "Checkpoint does not match the model." + _describe(missing, unexpected, mismatched)
        if strict:
            raise StateDictMismatchError(message + "\nPass strict=False to load the tensors that fit.")
        warnings.warn(message + "\nLoaded the tensors that fit; train the model before using it.", UserWarning, stacklevel=2)
    for p, value in ready:
        p.variable.assign(p.from_torch(value).astype(keras.backend.standardize_dtype(p.variable.dtype)))
    return missing, unexpected, mismatched
