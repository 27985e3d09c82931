"""Activations by torch's name, computed exactly as torch does (GELU is the exact erf form)."""

import keras

# torch / timm name -> Keras activation (serialisable by name).
ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "silu": "silu",
    "swish": "silu",
    "hard_swish": "hard_silu",
    "hard_sigmoid": "hard_sigmoid",
    "gelu": "gelu",  # keras.activations.gelu defaults to approximate=False, torch's default
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "mish": "mish",
}


def activation(x, kind, name=None):
    """Apply torch activation ``kind`` (a key of ACTIVATIONS, "leaky_relu", or None/"identity")."""
    if kind in (None, "identity"):
        return x
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01, name=name)(x)  # torch's default slope
    if kind not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {kind!r}; valid choices: {sorted(ACTIVATIONS) + ['leaky_relu', 'identity']}.")
    if kind == "relu":
        return keras.layers.ReLU(name=name)(x)
    return keras.layers.Activation(ACTIVATIONS[kind], name=name)(x)


def relu(x, name=None):
    return keras.layers.ReLU(name=name)(x)


def identity(x, name=None):
    return keras.layers.Identity(name=name)(x)
