"""Activations by torch's name, computed exactly as torch does (GELU is the exact erf form)."""

import math

import keras
from keras import ops

from backbones.layers import torch_paths
from backbones.layers.formats import channel_axis


@keras.saving.register_keras_serializable(package="keras_seg")
def gelu(x):
    """torch's exact ``F.gelu``: ``x / 2 * (1 + erf(x / sqrt(2)))``, written with erf as torch computes it
    (TensorFlow's own exact GELU uses erfc, which ONNX lacks: tf2onnx's file would not load); torch's own
    kernel on the torch backend."""
    if torch_paths.ENABLED:
        fused = torch_paths.gelu(x)
        if fused is not None:
            return fused
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


@keras.saving.register_keras_serializable(package="keras_seg")
def quick_gelu(x):
    """timm's QuickGELU (CLIP's): ``x * sigmoid(1.702 * x)``."""
    return x * ops.sigmoid(1.702 * x)


@keras.saving.register_keras_serializable(package="keras_seg")
def gelu_tanh(x):
    """torch's ``F.gelu(x, approximate="tanh")`` (timm's GELUTanh, SigLIP's MLPs)."""
    return keras.activations.gelu(x, approximate=True)


# torch / timm name -> Keras activation (a Keras name or a registered, serialisable function).
ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "silu": "silu",
    "swish": "silu",
    "hard_swish": "hard_silu",
    "hard_sigmoid": "hard_sigmoid",
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "quick_gelu": quick_gelu,
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
