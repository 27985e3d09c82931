"""Pooling with torch's padding rules."""

import keras

from backbones.layers import jax_paths, torch_paths
from backbones.layers.conv import depthwise_conv_op
from backbones.layers.padding import TF_SAME, CeilPad, FoldedPadding, is_zero, pad, same_padding_equivalent, symmetric_padding


def max_pool(x, pool_size, stride, padding=0, *, data_format, name=None, nonnegative=False, ceil_mode=False):
    """torch ``nn.MaxPool2d(pool_size, stride, padding, ceil_mode=ceil_mode)`` (or timm's
    ``MaxPool2dSame`` for ``padding="tf_same"``).

    Torch pads with -inf; zero padding gives the same result only when the input is
    non-negative (after a ReLU), so pass ``nonnegative=True`` there for a plain pad.
    ``ceil_mode=True`` keeps torch's last, partial window (padding bottom/right at run time).
    """
    value = 0.0 if nonnegative else float("-inf")
    if ceil_mode:
        if padding == TF_SAME:
            raise ValueError('max_pool: ceil_mode=True takes torch\'s symmetric padding, not "tf_same".')
        x = CeilPad(pool_size, stride, padding, value=value, data_format=data_format)(x)
    elif not is_zero(padding):
        folded = _symmetric(padding, pool_size)
        if folded is not None:
            return MaxPooling2D(pool_size, strides=stride, padding="valid", data_format=data_format, name=name,
                                explicit_padding=folded, pad_value=value)(x)
        x = pad(x, padding, data_format, kernel_size=pool_size, stride=stride, value=value)
    return MaxPooling2D(pool_size, strides=stride, padding="valid", data_format=data_format, name=name)(x)


def _symmetric(padding, pool_size):
    """``padding`` as ((ph, ph), (pw, pw)) where torch's max-pool takes it (symmetric, at most half the pool),
    else None."""
    folded = symmetric_padding(padding)
    kh, kw = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
    return folded if folded is not None and folded[0][0] <= kh // 2 and folded[1][0] <= kw // 2 else None


@keras.saving.register_keras_serializable(package="keras_seg")
class MaxPooling2D(FoldedPadding, keras.layers.MaxPooling2D):
    """``keras.layers.MaxPooling2D`` with torch's symmetric padding folded in (``explicit_padding``, padded with
    ``pad_value``: -inf, or 0 for a non-negative input, the same maxima): torch's own padded max-pool on the
    torch backend (what SMP runs; no padded copy), else a pad and the valid pool, on the JAX backend's CPU
    through its fast path (``jax_paths.max_pool``)."""

    def __init__(self, *args, pad_value=float("-inf"), **kwargs):
        super().__init__(*args, **kwargs)
        self.pad_value = float(pad_value)

    def call(self, inputs):
        if self.explicit_padding is not None and torch_paths.ENABLED:
            return torch_paths.max_pool2d(self, inputs)
        inputs = self._padded(inputs)
        if self.padding == "valid" and jax_paths.enabled():
            outputs = jax_paths.max_pool(inputs, self.pool_size, self.strides, self.data_format)
            if outputs is not None:
                return outputs
        return super().call(inputs)

    def get_config(self):
        config = super().get_config()
        if self.explicit_padding is not None:
            config["pad_value"] = self.pad_value
        return config


def avg_pool(x, pool_size, stride, padding=0, *, data_format, count_include_pad=True, name=None):
    """torch ``nn.AvgPool2d(pool_size, stride, padding, count_include_pad=...)``."""
    if is_zero(padding):
        return keras.layers.AveragePooling2D(pool_size, strides=stride, padding="valid", data_format=data_format, name=name)(x)
    if count_include_pad and padding != TF_SAME:
        x = pad(x, padding, data_format)
        return keras.layers.AveragePooling2D(pool_size, strides=stride, padding="valid", data_format=data_format, name=name)(x)
    if same_padding_equivalent(pool_size, stride, padding, 1):
        # Keras "same" averages over the valid pixels only: torch's count_include_pad=False.
        return keras.layers.AveragePooling2D(pool_size, strides=stride, padding="same", data_format=data_format, name=name)(x)
    raise ValueError(
        f"avg_pool(pool_size={pool_size}, stride={stride}, padding={padding!r}, count_include_pad={count_include_pad}) "
        "is not supported; count_include_pad=False needs stride 1, an odd pool size and padding (pool_size - 1) // 2."
    )


def global_avg_pool(x, *, data_format, keepdims=True, name=None):
    """torch ``x.mean((2, 3), keepdim=True)`` / ``adaptive_avg_pool2d(x, 1)``."""
    return keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=keepdims, name=name)(x)


@keras.saving.register_keras_serializable(package="keras_seg")
class BlurPool(keras.layers.Layer):
    """timm's ``BlurPool2d(channels, filt_size, stride)``: reflect padding ``((stride - 1) +
    (filt_size - 1)) // 2``, then a depthwise binomial blur (``C(n-1, k) / 2^(n-1)`` outer product)
    with ``stride``. No weights (timm's filter is a non-persistent buffer)."""

    def __init__(self, filt_size=3, stride=2, data_format="channels_last", pad_mode="reflect", **kwargs):
        super().__init__(**kwargs)
        self.filt_size, self.stride, self.data_format = int(filt_size), int(stride), data_format
        self.pad_mode = pad_mode  # timm's pad_mode: "reflect" (BlurPool2d's default) or "constant" ('blurpc')

    def call(self, x):
        import math

        import numpy as np
        from keras import ops

        coeffs = np.array([math.comb(self.filt_size - 1, k) for k in range(self.filt_size)], "float32")
        coeffs /= 2 ** (self.filt_size - 1)
        c = x.shape[-1] if self.data_format == "channels_last" else x.shape[1]
        kernel = np.tile((coeffs[:, None] * coeffs[None, :])[:, :, None, None], (1, 1, c, 1))
        p = ((self.stride - 1) + (self.filt_size - 1)) // 2
        spatial = [[p, p], [p, p]]
        widths = [[0, 0]] + (spatial + [[0, 0]] if self.data_format == "channels_last" else [[0, 0]] + spatial)
        x = ops.pad(x, widths, mode=self.pad_mode)
        return depthwise_conv_op(x, ops.cast(kernel, x.dtype), self.stride, "valid", 1, self.data_format)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        p = ((self.stride - 1) + (self.filt_size - 1)) // 2
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for a in axes:
            if shape[a] is not None:
                shape[a] = (shape[a] + 2 * p - self.filt_size) // self.stride + 1
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "filt_size": self.filt_size, "stride": self.stride, "data_format": self.data_format,
                "pad_mode": self.pad_mode}


def blur_pool(x, stride=2, *, data_format, filt_size=3, name=None, pad_mode="reflect"):
    """timm's ``BlurPool2d`` (anti-aliased downsampling, reflect padding; ``pad_mode="constant"``: timm's 'blurpc')."""
    return BlurPool(filt_size, stride, data_format=data_format, pad_mode=pad_mode, name=name)(x)


def avg_pool_ceil(x, pool_size, stride, *, data_format, name=None):
    """torch ``nn.AvgPool2d(pool_size, stride, ceil_mode=True, count_include_pad=False)`` without padding:
    the last, partial window averages its valid pixels only (Keras / TensorFlow "same" pooling, whose
    padding goes bottom / right), for ``pool_size == stride``."""
    if pool_size != stride:
        raise ValueError(f"avg_pool_ceil needs pool_size == stride, got {pool_size} and {stride}.")
    return keras.layers.AveragePooling2D(pool_size, strides=stride, padding="same", data_format=data_format, name=name)(x)
