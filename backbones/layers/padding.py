"""Padding as torch and TensorFlow compute it, for convolutions and pooling.

Forms of ``padding`` that the kit's convs and pools accept:

* ``p`` or ``(ph, pw)``: torch's symmetric padding.
* ``((top, bottom), (left, right))``: explicit, e.g. from :func:`static_same_padding`.
* ``"tf_same"``: TensorFlow's "SAME", computed from the input's actual size at run time
  (timm's ``Conv2dSame`` / ``pad_same`` for its ``tf_`` models): the extra pixel goes
  bottom/right.

Pooling also takes torch's ``ceil_mode=True`` (:class:`CeilPad`): the last, partial window
is kept, padded bottom/right at run time.

Keras "same" equals torch only for stride-1 convs with odd kernels; strided ones pad
differently on even inputs, so everything else pads explicitly and runs "valid".
"""

import math

import keras
from keras import ops

from backbones.layers.formats import spatial_axes, standardize_data_format

TF_SAME = "tf_same"


def explicit_padding(padding):
    """``((top, bottom), (left, right))`` for an int, ``(ph, pw)`` or explicit padding."""
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    ph, pw = padding
    ph = (ph, ph) if isinstance(ph, int) else tuple(ph)
    pw = (pw, pw) if isinstance(pw, int) else tuple(pw)
    return (ph, pw)


def is_zero(padding):
    return padding != TF_SAME and explicit_padding(padding) == ((0, 0), (0, 0))


def same_total(size, kernel_size, stride, dilation):
    """Total TensorFlow-"SAME" padding along one axis of length ``size`` (int or tensor)."""
    if isinstance(size, int):
        return max((math.ceil(size / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    out = (size + stride - 1) // stride
    return ops.maximum((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)


def static_same_padding(image_size, kernel_size, stride=1, dilation=1):
    """TensorFlow-"SAME" padding fixed from a nominal ``image_size`` (int or (h, w)), not the
    input: what SMP's EfficientNet (``Conv2dStaticSamePadding``) computes at construction."""
    ih, iw = (image_size, image_size) if isinstance(image_size, int) else image_size
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    th, tw = same_total(ih, kh, stride, dilation), same_total(iw, kw, stride, dilation)
    return ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))


def same_padding_equivalent(kernel_size, stride, padding, dilation):
    """True when torch's symmetric ``padding`` equals Keras ``"same"`` for this conv.

    With stride 1 and an odd kernel, "same" pads ``(k - 1) / 2`` on each side, exactly
    torch's; the framework then pads inside its conv kernel (no separate pad pass, which
    costs a full copy of the activation on TensorFlow and torch). Dilated convs keep the
    explicit pad: TensorFlow's CPU kernels reject a dilated "same" conv in channels_first.
    """
    if padding == TF_SAME or not isinstance(kernel_size, int):
        return False
    half = (kernel_size - 1) // 2
    return stride == 1 and dilation == 1 and kernel_size % 2 == 1 and explicit_padding(padding) == ((half, half),) * 2


def foldable_padding(kernel_size, stride, padding, dilation):
    """torch's explicit ``padding`` as ``((ph, ph), (pw, pw))`` where a conv layer can apply it itself
    (symmetric, non-zero, not "same"-equivalent), else None (``pad_for_conv``'s handling)."""
    if is_zero(padding) or same_padding_equivalent(kernel_size, stride, padding, dilation):
        return None
    return symmetric_padding(padding)


def symmetric_padding(padding):
    """``padding`` as ``((ph, ph), (pw, pw))`` where it is torch's symmetric kind, else None ("tf_same", uneven)."""
    if padding == TF_SAME:
        return None
    ph, pw = explicit_padding(padding)
    return (ph, pw) if ph[0] == ph[1] and pw[0] == pw[1] else None


def pad(x, padding, data_format, name=None, kernel_size=1, stride=1, dilation=1, value=0.0):
    """Pad the spatial axes of ``x`` with ``value`` (any form above; "tf_same" needs the
    op's kernel size, stride and dilation)."""
    if padding == TF_SAME:
        return SamePad(kernel_size, stride, dilation, value=value, data_format=data_format, name=name)(x)
    padding = explicit_padding(padding)
    if padding == ((0, 0), (0, 0)):
        return x
    if value == 0.0:
        return keras.layers.ZeroPadding2D(padding, data_format=data_format, name=name)(x)
    return ConstantPad(padding, value=value, data_format=data_format, name=name)(x)


def pad_for_conv(x, kernel_size, padding, data_format, stride=1, dilation=1, name=None):
    """torch's (or TF's) conv ``padding`` in Keras: ``(x, keras_padding)`` for the conv layer,
    "same" where that is equivalent, else ``x`` explicitly padded and "valid"."""
    if not is_zero(padding) and same_padding_equivalent(kernel_size, stride, padding, dilation):
        return x, "same"
    if is_zero(padding):
        return x, "valid"
    return pad(x, padding, data_format, name=name, kernel_size=kernel_size, stride=stride, dilation=dilation), "valid"


def padded_shape(shape, padding, data_format):
    """``shape`` with explicit ``padding`` ((top, bottom), (left, right)) added to its known spatial sizes."""
    shape = list(shape)
    for axis, (before, after) in zip(spatial_axes(data_format), padding):
        if shape[axis] is not None:
            shape[axis] += before + after
    return tuple(shape)


def pad_widths(data_format, ph, pw):
    """``ops.pad``'s widths for padding ``ph`` / ``pw`` ((before, after) each) on the spatial axes."""
    spatial = [tuple(ph), tuple(pw)]
    return [(0, 0)] + (spatial + [(0, 0)] if data_format == "channels_last" else [(0, 0)] + spatial)


@keras.saving.register_keras_serializable(package="keras_seg")
class ConstantPad(keras.layers.Layer):
    """Pad the spatial axes with a constant (-inf is what torch's max-pool padding means)."""

    def __init__(self, padding, value=float("-inf"), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = explicit_padding(padding)
        self.value = float(value)
        self.data_format = standardize_data_format(data_format)

    def call(self, x):
        return ops.pad(x, pad_widths(self.data_format, *self.padding), constant_values=self.value)

    def compute_output_shape(self, shape):
        return padded_shape(shape, self.padding, self.data_format)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding], "value": self.value, "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="keras_seg")
class NegInfPad(ConstantPad):
    """-inf padding before a max-pool (kept by name for saved models)."""

    def __init__(self, padding, data_format=None, **kwargs):
        kwargs.pop("value", None)
        super().__init__(padding, value=float("-inf"), data_format=data_format, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("value")
        return config


def ceil_mode_extra(size, kernel_size, stride, padding):
    """Rows (or columns) torch's ``ceil_mode=True`` adds after ``padding`` along one axis of
    length ``size`` (int or tensor): the output is ``ceil((size + 2p - k) / s) + 1``, less one
    when that last window would start in the right padding."""
    span = size + 2 * padding - kernel_size
    if isinstance(size, int):
        out = -(-span // stride) + 1
        out -= int((out - 1) * stride >= size + padding)
        return max((out - 1) * stride + kernel_size - (size + 2 * padding), 0)
    out = (span + stride - 1) // stride + 1
    out = ops.where((out - 1) * stride >= size + padding, out - 1, out)
    return ops.maximum((out - 1) * stride + kernel_size - (size + 2 * padding), 0)


def _spatial_shape(x):
    """``x``'s shape: static ints where known, else the run-time shape tensor."""
    shape = tuple(x.shape)
    return ops.shape(x) if any(not isinstance(s, int) for s in shape[1:]) else shape


@keras.saving.register_keras_serializable(package="keras_seg")
class CeilPad(keras.layers.Layer):
    """torch pooling's symmetric ``padding`` plus what ``ceil_mode=True`` adds bottom/right,
    computed from the input's size at run time, filled with ``value``."""

    def __init__(self, kernel_size, stride, padding=0, value=float("-inf"), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding = _pair(padding)
        self.value = float(value)
        self.data_format = standardize_data_format(data_format)

    def _pads(self, shape):
        return [
            (p, p + ceil_mode_extra(shape[axis], k, s, p))
            for axis, k, s, p in zip(spatial_axes(self.data_format), self.kernel_size, self.stride, self.padding)
        ]

    def call(self, x):
        return ops.pad(x, pad_widths(self.data_format, *self._pads(_spatial_shape(x))), constant_values=self.value)

    def compute_output_shape(self, shape):
        shape = list(shape)
        for axis, k, s, p in zip(spatial_axes(self.data_format), self.kernel_size, self.stride, self.padding):
            if shape[axis] is not None:
                shape[axis] += 2 * p + ceil_mode_extra(shape[axis], k, s, p)
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(), "kernel_size": list(self.kernel_size), "stride": list(self.stride),
            "padding": list(self.padding), "value": self.value, "data_format": self.data_format,
        }


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


@keras.saving.register_keras_serializable(package="keras_seg")
class SamePad(keras.layers.Layer):
    """TensorFlow "SAME" padding computed from the input's size at run time (timm's ``pad_same``)."""

    def __init__(self, kernel_size, stride=1, dilation=1, value=0.0, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.value = float(value)
        self.data_format = standardize_data_format(data_format)

    def _pads(self, shape):
        pads = []
        for axis in spatial_axes(self.data_format):
            total = same_total(shape[axis], self.kernel_size, self.stride, self.dilation)
            pads.append((total // 2, total - total // 2))
        return pads

    def call(self, x):
        return ops.pad(x, pad_widths(self.data_format, *self._pads(_spatial_shape(x))), constant_values=self.value)

    def compute_output_shape(self, shape):
        shape = list(shape)
        for axis in spatial_axes(self.data_format):
            if shape[axis] is not None:
                shape[axis] += same_total(shape[axis], self.kernel_size, self.stride, self.dilation)
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(), "kernel_size": self.kernel_size, "stride": self.stride, "dilation": self.dilation,
            "value": self.value, "data_format": self.data_format,
        }


class FoldedPadding:
    """Mixin for the kit's conv and pooling layers: ``explicit_padding=((ph, ph), (pw, pw))`` (with
    ``padding="valid"``) is torch's symmetric padding applied by the layer itself: inside torch's conv or
    max-pool on the torch backend (no padded copy of the input and of its gradient), an ``ops.pad`` with
    ``pad_value`` before the valid op elsewhere (what a ZeroPadding2D / ConstantPad did)."""

    pad_value = 0.0

    def __init__(self, *args, explicit_padding=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.explicit_padding = None if explicit_padding is None else _explicit(explicit_padding)
        if self.explicit_padding is not None and self.padding != "valid":
            raise ValueError(f"{type(self).__name__}: explicit_padding needs padding='valid', got padding={self.padding!r}.")

    def _padded(self, inputs):
        """``inputs`` with the explicit padding applied (for Keras's own valid op)."""
        if self.explicit_padding is None:
            return inputs
        return ops.pad(inputs, pad_widths(self.data_format, *self.explicit_padding), constant_values=self.pad_value)

    def compute_output_shape(self, input_shape):
        if self.explicit_padding is not None:
            input_shape = padded_shape(input_shape, self.explicit_padding, self.data_format)
        return super().compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        if self.explicit_padding is not None:
            config["explicit_padding"] = [list(p) for p in self.explicit_padding]
        return config


def _explicit(padding):
    (top, bottom), (left, right) = explicit_padding(padding)
    if top != bottom or left != right or min(top, left) < 0:
        raise ValueError(f"explicit_padding must be symmetric and non-negative ((ph, ph), (pw, pw)), got {padding!r}.")
    return ((int(top), int(top)), (int(left), int(left)))
