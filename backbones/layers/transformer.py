"""Vision-transformer pieces: torch ``nn.Linear`` over channels, multi-head scaled dot-product
attention, and SMP's 0-channel placeholder feature (channels-last views of image maps are
``formats.move_channels_last`` / ``move_channels_back``).

Transformer blocks work on the channels of every token; here a token map is kept as an image
``(B, H, W, C)`` (or ``(B, N, C)``): a Linear is a Dense on the last axis, LayerNorm normalises
the last axis, and convs inside blocks run channels_last, whatever the model's data format.
"""

import keras
from keras import ops

from backbones.layers.conv import Dense


def trunc_normal_init(std=0.02):
    """timm's ``trunc_normal_(std=std)`` (cut at -2 and 2, i.e. 100 std for 0.02: a plain normal).

    Keras's TruncatedNormal cuts at 2 std instead, a narrower distribution."""
    return keras.initializers.RandomNormal(stddev=std)


def linear(x, units, name, *, use_bias=True, kernel_initializer=None, bias_initializer="zeros"):
    """torch ``nn.Linear(C, units)`` on the last axis, named ``name`` (weight (O, I) <-> kernel (I, O));
    timm's ViT init (trunc-normal 0.02 weight, zero bias) unless told otherwise."""
    return Dense(
        units, use_bias=use_bias, kernel_initializer=kernel_initializer or trunc_normal_init(),
        bias_initializer=bias_initializer, name=name,
    )(x)


@keras.saving.register_keras_serializable(package="keras_seg")
class DotProductAttention(keras.layers.Layer):
    """Multi-head attention of queries ``(B, *Sq, C)`` over keys and values ``(B, *Sk, C)``, as torch
    ViTs compute it: heads split from the channels (``reshape(B, N, heads, C // heads)``),
    ``softmax((q @ k^T) * scale) @ v``, heads merged back. Output shape: the queries'. The token
    axes ``Sq`` / ``Sk`` may be any number of (dynamic) axes, e.g. an image's H, W.
    ``scale`` defaults to ``head_dim ** -0.5``."""

    def __init__(self, num_heads, scale=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.scale = None if scale is None else float(scale)

    def build(self, input_shapes):
        channels = input_shapes[0][-1]
        if channels % self.num_heads:
            raise ValueError(f"DotProductAttention: {channels} channels do not divide into num_heads={self.num_heads}.")
        super().build(input_shapes)

    def _heads(self, t):  # (B, *S, C) -> (B, N, heads, C // heads)
        return ops.reshape(t, (ops.shape(t)[0], -1, self.num_heads, t.shape[-1] // self.num_heads))

    def call(self, inputs):
        q, k, v = inputs
        head_dim = q.shape[-1] // self.num_heads
        scale = self.scale if self.scale is not None else head_dim**-0.5
        scores = ops.einsum("bqhd,bkhd->bhqk", self._heads(q), self._heads(k)) * scale
        # One key token (a small map after MiT's spatial reduction): torch's softmax gives ones, and
        # Keras's ops.softmax would warn about a size-1 axis.
        attn = ops.ones_like(scores) if scores.shape[-1] == 1 else ops.softmax(scores, axis=-1)
        return ops.reshape(ops.einsum("bhqk,bkhd->bqhd", attn, self._heads(v)), ops.shape(q))

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "scale": self.scale}


def dot_product_attention(q, k, v, num_heads, scale=None, name=None):
    """``DotProductAttention(num_heads, scale)([q, k, v])``."""
    return DotProductAttention(num_heads, scale, name=name)([q, k, v])


@keras.saving.register_keras_serializable(package="keras_seg")
class EmptyFeature(keras.layers.Layer):
    """SMP's placeholder for a feature an encoder lacks: ``torch.empty(B, 0, H // stride, W // stride)``
    of the input image (transformer-style encoders' stride-2 feature), in ``data_format``."""

    def __init__(self, stride=2, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)
        self.data_format = data_format

    def call(self, x):
        shape = ops.shape(x)
        if self.data_format == "channels_first":
            return ops.zeros((shape[0], 0, shape[2] // self.stride, shape[3] // self.stride), dtype=x.dtype)
        return ops.zeros((shape[0], shape[1] // self.stride, shape[2] // self.stride, 0), dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        def down(d):
            return None if d is None else d // self.stride

        b = input_shape[0]
        if self.data_format == "channels_first":
            return (b, 0, down(input_shape[2]), down(input_shape[3]))
        return (b, down(input_shape[1]), down(input_shape[2]), 0)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "data_format": self.data_format}


def empty_feature(x, stride, *, data_format, name=None):
    """A 0-channel map at ``stride`` of image ``x`` (``EmptyFeature``)."""
    return EmptyFeature(stride, data_format, name=name)(x)


__all__ = [
    "DotProductAttention", "EmptyFeature", "dot_product_attention", "empty_feature", "linear", "trunc_normal_init",
]
