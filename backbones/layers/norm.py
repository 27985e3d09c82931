"""Normalisation layers with torch's defaults (eps, momentum) and parameter names."""

import keras
from keras import ops

from backbones.layers.formats import channel_axis


@keras.saving.register_keras_serializable(package="keras_seg")
class BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization with torch's training-mode semantics.

    As ``torch.nn.BatchNorm2d``: the batch is normalised with its biased variance, the
    running variance is updated with the unbiased one (``n / (n - 1)``), and
    ``num_batches_tracked`` counts the training batches. ``momentum=None`` (torch) is a
    cumulative average, ``1 / num_batches_tracked``; otherwise the Keras ``momentum`` is
    ``1 - torch_momentum``. The batch variance is two-pass, ``mean((x - mean)^2)``, as
    torch computes it (Keras's ``E[x^2] - E[x]^2`` cancels badly when the variance is small
    against the mean, e.g. a few pixels of a deep feature). Inference is Keras's own.
    """

    def __init__(self, *args, cumulative=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.cumulative = cumulative

    def build(self, input_shape):
        super().build(input_shape)
        self.num_batches_tracked = self.add_weight(
            shape=(), name="num_batches_tracked", initializer="zeros", dtype="int32", trainable=False,
            autocast=False, aggregation="only_first_replica",
        )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        inputs = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = _moments(inputs, self._reduction_axes)
        count = self.num_batches_tracked + 1
        self.num_batches_tracked.assign(count)
        if self.cumulative:
            factor = 1.0 / ops.cast(count, inputs.dtype)
        else:
            factor = 1.0 - self.momentum
        n = 1
        for axis in self._reduction_axes:
            n = n * ops.shape(inputs)[axis]
        n = ops.cast(n, inputs.dtype)
        unbiased = variance * n / ops.maximum(n - 1.0, 1.0)
        self.moving_mean.assign(ops.cast(self.moving_mean, inputs.dtype) * (1.0 - factor) + mean * factor)
        self.moving_variance.assign(ops.cast(self.moving_variance, inputs.dtype) * (1.0 - factor) + unbiased * factor)
        gamma = ops.cast(self.gamma, inputs.dtype) if self.scale else None
        beta = ops.cast(self.beta, inputs.dtype) if self.center else None
        outputs = ops.batch_normalization(inputs, mean, variance, axis=self.axis, offset=beta, scale=gamma, epsilon=self.epsilon)
        return ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "cumulative": self.cumulative}


def _moments(x, axes):
    """Mean and biased variance over ``axes``, two-pass (no cancellation)."""
    mean = ops.mean(x, axis=axes, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=axes)
    return ops.squeeze(mean, axis=axes), variance


def batch_norm(x, name, *, data_format, eps=1e-5, momentum=0.1, affine=True):
    """torch ``nn.BatchNorm2d(C, eps, momentum, affine)``: torch momentum m is Keras 1 - m;
    ``momentum=None`` is torch's cumulative average."""
    return BatchNorm(
        axis=channel_axis(data_format),
        epsilon=eps,
        momentum=0.9 if momentum is None else 1.0 - momentum,
        cumulative=momentum is None,
        center=affine,
        scale=affine,
        name=name,
    )(x)


def layer_norm_2d(x, name, data_format, eps=1e-6, scale=True, center=True):
    """LayerNorm over the channel axis at every pixel (SMP's / timm's LayerNorm2d).

    channels_first permutes to channels_last and back: Keras 3.15's
    LayerNormalization(axis=1) fails on the torch backend (torch's layer_norm
    normalises trailing axes only).
    """
    layer = keras.layers.LayerNormalization(axis=-1, epsilon=eps, scale=scale, center=center, name=name)
    if data_format == "channels_last":
        return layer(x)
    x = keras.layers.Permute((2, 3, 1))(x)
    return keras.layers.Permute((3, 1, 2))(layer(x))


def layer_norm(x, name, eps=1e-5, scale=True, center=True):
    """torch ``nn.LayerNorm(C)`` over the last axis (token sequences)."""
    return keras.layers.LayerNormalization(axis=-1, epsilon=eps, scale=scale, center=center, name=name)(x)


def group_norm(x, groups, name, *, data_format, eps=1e-5, affine=True):
    """torch ``nn.GroupNorm(groups, C, eps, affine)``."""
    return keras.layers.GroupNormalization(
        groups=groups, axis=channel_axis(data_format), epsilon=eps, center=affine, scale=affine, name=name
    )(x)
