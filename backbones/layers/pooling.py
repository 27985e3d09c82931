"""Pooling with torch's padding rules."""

import keras

from backbones.layers.padding import TF_SAME, CeilPad, is_zero, pad, same_padding_equivalent


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
        x = pad(x, padding, data_format, kernel_size=pool_size, stride=stride, value=value)
    return keras.layers.MaxPooling2D(pool_size, strides=stride, padding="valid", data_format=data_format, name=name)(x)


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
