"""Activations by torch's name, computed exactly as torch does (GELU is the exact erf form)."""

import keras
from keras import ops

from backbones.layers.formats import channel_axis

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


@keras.saving.register_keras_serializable(package="keras_seg")
class GroupSoftmax(keras.layers.Layer):
    """Softmax across ``groups`` consecutive, equal blocks of channels, elementwise: torch's
    ``x.view(B, groups, C // groups, H, W).softmax(1)`` viewed back as ``(B, C, H, W)``."""

    def __init__(self, groups, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.axis = int(axis)

    def call(self, x):
        if self.groups == 1:
            return ops.ones_like(x)
        shape = ops.shape(x)
        if self.axis % len(x.shape) == len(x.shape) - 1:  # (..., C) -> (N, groups, C // groups)
            grouped = ops.reshape(x, (-1, self.groups, x.shape[-1] // self.groups))
        elif self.axis % len(x.shape) == 1:  # (B, C, ...) -> (B, groups, C // groups * ...)
            grouped = ops.reshape(x, (shape[0], self.groups, -1))
        else:
            raise ValueError(f"GroupSoftmax takes the second or the last axis, got axis={self.axis}.")
        return ops.reshape(ops.softmax(grouped, axis=1), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}


def group_softmax(x, groups, *, data_format, name=None):
    """Softmax over ``groups`` channel blocks (timm's SelectiveKernelAttn / split-attention
    weights over their paths); ``groups == 1`` is torch's softmax over a size-1 dim: ones."""
    return GroupSoftmax(groups, axis=channel_axis(data_format), name=name)(x)
