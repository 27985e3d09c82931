"""Channel attention: squeeze-and-excitation as torch CNN families build it."""

import keras

from backbones.layers.activations import activation
from backbones.layers.conv import conv2d
from backbones.layers.formats import channels
from backbones.layers.initializers import HostDrawnWeights
from backbones.layers.pooling import global_avg_pool


def squeeze_excite(
    x,
    reduced_channels,
    reduce_name,
    expand_name,
    *,
    data_format,
    act="relu",
    gate="sigmoid",
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """Global average pool -> 1x1 conv (``reduce_name``) -> ``act`` -> 1x1 conv (``expand_name``)
    -> ``gate``, multiplied onto ``x``. The families differ only in names, the reduced width
    (each family's own rounding) and the activations, which the caller passes."""
    in_channels = channels(x, data_format)
    s = global_avg_pool(x, data_format=data_format)
    s = conv2d(s, reduced_channels, 1, reduce_name, data_format=data_format, kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
    s = activation(s, act)
    s = conv2d(s, in_channels, 1, expand_name, data_format=data_format, kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
    s = activation(s, gate)
    return keras.layers.Multiply()([x, s])


def eca_kernel_size(channels, gamma=2, beta=1):
    """ECA-Net's adaptive kernel size (timm's ``EcaModule(channels)``): the odd size nearest
    ``|log2(C) + beta| / gamma``, at least 3."""
    import math

    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


@keras.saving.register_keras_serializable(package="keras_seg")
class EfficientChannelAttention(HostDrawnWeights, keras.layers.Layer):
    """timm's ``EcaModule``: ``x * sigmoid(conv1d(mean_hw(x)))``, one bias-free 1-D conv of
    ``kernel_size`` (zero padding) across the channels of the pooled vector. Its weight is the
    torch ``Conv1d(1, 1, k)`` weight, shape ``(1, 1, k)``, keyed ``<name>.weight``."""

    def __init__(self, kernel_size, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.data_format = data_format

    def build(self, input_shape):
        bound = 1.0 / self.kernel_size**0.5  # torch's Conv1d default (kaiming_uniform a=sqrt(5), fan_in = k)
        self.weight = self.add_weight(
            shape=(1, 1, self.kernel_size), initializer=keras.initializers.RandomUniform(-bound, bound), name="weight"
        )

    def call(self, x):
        from keras import ops

        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        y = ops.mean(x, axis=axes)  # (B, C)
        c = y.shape[-1]
        p = (self.kernel_size - 1) // 2
        y_pad = ops.pad(y, [[0, 0], [p, p]])
        w = ops.cast(self.weight, y.dtype)
        out = sum(w[0, 0, j] * y_pad[:, j : j + c] for j in range(self.kernel_size))
        gate = ops.sigmoid(out)
        shape = (-1, 1, 1, c) if self.data_format == "channels_last" else (-1, c, 1, 1)
        return x * ops.reshape(gate, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def smp_params(self, prefix):
        from weight_ports.naming import torch_path
        from weight_ports.translate import Param

        def same(a):
            return a

        return [Param(f"{torch_path(prefix)}.weight", self.weight, same, same)]

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "data_format": self.data_format}


def efficient_channel_attention(x, name, *, data_format, kernel_size=None):
    """timm's ``EcaModule(C)`` named ``name`` (its conv's module path); ``kernel_size`` defaults
    to ``eca_kernel_size(C)``."""
    kernel_size = kernel_size or eca_kernel_size(channels(x, data_format))
    return EfficientChannelAttention(kernel_size, data_format=data_format, name=name)(x)


@keras.saving.register_keras_serializable(package="keras_seg")
class AttentionPool(keras.layers.Layer):
    """``[x, logits]`` -> the sum of ``x`` over its pixels weighted by ``softmax(logits)`` over the pixels, as a
    1x1 map (timm's GlobalContext context: ``x.reshape(B, C, HW) @ softmax(attn.reshape(B, 1, HW))``)."""

    def __init__(self, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs):
        from keras import ops

        x, logits = inputs
        if self.data_format == "channels_first":
            x, logits = ops.transpose(x, (0, 2, 3, 1)), ops.transpose(logits, (0, 2, 3, 1))
        b, c = ops.shape(x)[0], x.shape[-1]
        logits = ops.reshape(logits, (b, -1))  # softmax over the pixels, written out (Keras warns at a single pixel)
        weights = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
        weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        context = ops.einsum("bn,bnc->bc", weights, ops.reshape(x, (b, -1, c)))
        shape = (b, 1, 1, c) if self.data_format == "channels_last" else (b, c, 1, 1)
        return ops.reshape(context, shape)

    def compute_output_shape(self, input_shapes):
        shape = input_shapes[0]
        return (shape[0], 1, 1, shape[-1]) if self.data_format == "channels_last" else (shape[0], shape[1], 1, 1)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


def global_context(x, rd_channels, name, *, data_format, act="relu", gate="sigmoid", kernel_initializer="glorot_uniform"):
    """timm's ``GlobalContext(C, rd_channels=...)`` (fuse_scale, attention pooling) named ``name``: ``conv_attn``
    (1x1 to one logit map), the attention-pooled context through ``mlp_scale`` (fc1, LayerNorm2d eps 1e-6, ``act``,
    fc2), ``gate``, multiplied onto ``x``."""
    from backbones.layers.norm import layer_norm_2d

    logits = conv2d(x, 1, 1, f"{name}-conv_attn", data_format=data_format, kernel_initializer=kernel_initializer)
    s = AttentionPool(data_format=data_format)([x, logits])
    s = conv2d(s, rd_channels, 1, f"{name}-mlp_scale-fc1", data_format=data_format, kernel_initializer=kernel_initializer)
    s = activation(layer_norm_2d(s, f"{name}-mlp_scale-norm", data_format, eps=1e-6), act)
    s = conv2d(s, channels(x, data_format), 1, f"{name}-mlp_scale-fc2", data_format=data_format, kernel_initializer=kernel_initializer)
    return keras.layers.Multiply()([x, activation(s, gate)])
