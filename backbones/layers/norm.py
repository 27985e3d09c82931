"""Normalisation layers with torch's defaults (eps, momentum) and parameter names."""

import keras
from keras import ops

from backbones.layers import torch_paths
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
            if torch_paths.ENABLED and mask is None and not self.renorm:
                fused = torch_paths.batch_norm_inference(self, inputs)
                if fused is not None:
                    return fused
            return super().call(inputs, training=training, mask=mask)
        work_dtype = keras.backend.result_type(inputs.dtype, "float32")  # statistics in float32 at least
        count = self.num_batches_tracked + 1
        self.num_batches_tracked.assign(count)
        if self.cumulative:
            factor = 1.0 / ops.cast(count, work_dtype)
        else:
            factor = 1.0 - self.momentum
        if torch_paths.ENABLED:  # half-precision inputs too: torch's kernel computes in float32 itself
            fused = torch_paths.batch_norm_training(self, inputs, factor)
            if fused is not None:
                return ops.cast(fused, self.compute_dtype)
        inputs = ops.cast(inputs, work_dtype)
        mean, variance = _moments(inputs, self._reduction_axes)
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


def torch_params(prefix, **variables):
    """``weight_ports`` Params ``<prefix>.<key>`` of variables stored in torch's layout (a layer's ``smp_params``)."""
    from weight_ports.naming import torch_path
    from weight_ports.translate import Param

    def same(a):
        return a

    return [Param(f"{torch_path(prefix)}.{key}", var, same, same) for key, var in variables.items()]


@keras.saving.register_keras_serializable(package="keras_seg")
class RmsNorm(keras.layers.Layer):
    """timm's RmsNorm / RmsNorm2d over ``axis``: ``x * rsqrt(mean(x^2) + eps) * weight``; with
    ``variance=True`` timm's SimpleNorm / SimpleNorm2d: ``x * rsqrt(var(x) + eps) * weight``, torch's
    unbiased variance, ``x`` itself not centred. No bias; weight keyed ``<name>.weight``."""

    def __init__(self, axis=-1, epsilon=1e-6, variance=False, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon, self.variance = int(axis), float(epsilon), bool(variance)

    def build(self, input_shape):
        self.weight = self.add_weight(shape=(input_shape[self.axis],), initializer="ones", name="weight")

    def call(self, x):
        if self.variance:
            n = x.shape[self.axis]
            centred = x - ops.mean(x, axis=self.axis, keepdims=True)
            v = ops.sum(ops.square(centred), axis=self.axis, keepdims=True) / max(n - 1, 1)
        else:
            v = ops.mean(ops.square(x), axis=self.axis, keepdims=True)
        shape = [1] * len(x.shape)
        shape[self.axis] = -1
        return x * ops.rsqrt(v + self.epsilon) * ops.reshape(ops.cast(self.weight, x.dtype), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def smp_params(self, prefix):
        return torch_params(prefix, weight=self.weight)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "variance": self.variance}


def rms_norm_2d(x, name, *, data_format, eps=1e-6, variance=False):
    """timm's ``RmsNorm2d(C, eps)`` (``variance=True``: ``SimpleNorm2d``) over the channel axis at every pixel."""
    return RmsNorm(channel_axis(data_format), eps, variance, name=name)(x)


@keras.saving.register_keras_serializable(package="keras_seg")
class GlobalResponseNorm(keras.layers.Layer):
    """timm's ``GlobalResponseNorm`` (ConvNeXt-V2): ``x + bias + weight * x * n``, ``n`` the spatial
    L2 norm of each channel over its mean across channels (+ eps). Weight / bias (zeros) keyed
    ``<name>.weight`` / ``<name>.bias``."""

    def __init__(self, data_format="channels_last", epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.data_format, self.epsilon = data_format, float(epsilon)

    def build(self, input_shape):
        c = input_shape[channel_axis(self.data_format)]
        self.weight = self.add_weight(shape=(c,), initializer="zeros", name="weight")
        self.bias = self.add_weight(shape=(c,), initializer="zeros", name="bias")

    def call(self, x):
        first = self.data_format == "channels_first"
        spatial, chan = ((2, 3), 1) if first else ((1, 2), -1)
        g = ops.sqrt(ops.sum(ops.square(x), axis=spatial, keepdims=True))
        n = g / (ops.mean(g, axis=chan, keepdims=True) + self.epsilon)
        shape = (1, -1, 1, 1) if first else (1, 1, 1, -1)
        weight, bias = (ops.reshape(ops.cast(v, x.dtype), shape) for v in (self.weight, self.bias))
        return x + (bias + weight * (x * n))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def smp_params(self, prefix):
        return torch_params(prefix, weight=self.weight, bias=self.bias)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "epsilon": self.epsilon}


def global_response_norm(x, name, *, data_format, eps=1e-6):
    """timm's ``GlobalResponseNorm(C)`` named ``name``."""
    return GlobalResponseNorm(data_format, eps, name=name)(x)
