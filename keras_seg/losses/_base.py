"""Shared machinery of the keras-seg losses: argument checks, layout handling."""

import keras
import numpy as np
from keras import ops

from backbones.layers.formats import channel_axis, move_channels_back, move_channels_last, standardize_data_format  # noqa: F401
from keras_seg.modes import BINARY_MODE
from keras_seg.modes import MULTICLASS_MODE
from keras_seg.modes import MULTILABEL_MODE
from keras_seg.modes import check_mode  # noqa: F401  (used by the losses as _base.check_mode)



def to_float_list(values, arg_name):
    """Turn a sequence / array of numbers into a plain list of floats."""
    if values is None:
        return None
    try:
        out = [float(v) for v in np.asarray(values, dtype="float64").reshape(-1)]
    except Exception as e:  # pragma: no cover - defensive
        raise ValueError(
            f"`{arg_name}` should be a sequence of numbers, got {values!r}."
        ) from e
    return out


def to_int_list(values, arg_name):
    if values is None:
        return None
    try:
        arr = np.asarray(values).reshape(-1)
        out = [int(v) for v in arr]
        if any(float(a) != float(o) for a, o in zip(arr, out)):
            raise TypeError
    except Exception as e:
        raise ValueError(
            f"`{arg_name}` should be a sequence of integer class indices, "
            f"got {values!r}."
        ) from e
    return out


def check_class_args(mode, classes, class_weights):
    """SMP's constructor checks for ``classes`` / ``class_weights``."""
    if class_weights is not None and mode == BINARY_MODE:
        raise ValueError(
            f"`class_weights` is not supported with mode={mode!r} (got "
            f"class_weights={class_weights!r}); valid modes for it are "
            f"{[MULTICLASS_MODE, MULTILABEL_MODE]}."
        )
    if classes is not None and mode == BINARY_MODE:
        raise ValueError(
            f"Masking `classes` is not supported with mode={mode!r} (got "
            f"classes={classes!r}); valid modes for it are "
            f"{[MULTICLASS_MODE, MULTILABEL_MODE]}."
        )
    return to_int_list(classes, "classes"), to_float_list(
        class_weights, "class_weights"
    )


def check_num_classes(values, num_classes, arg_name):
    if values is not None and len(values) != num_classes:
        raise ValueError(
            f"`{arg_name}` has {len(values)} entries but `y_pred` has "
            f"{num_classes} classes (channels)."
        )


def check_classes_range(classes, num_classes):
    if classes is None:
        return
    bad = [c for c in classes if not -num_classes <= c < num_classes]
    if bad:
        raise ValueError(
            f"`classes` contains {bad}, outside the range of the "
            f"{num_classes} classes of `y_pred`."
        )


class LabelRangeError(ValueError, RuntimeError):
    """``y_true`` holds values outside the mode's valid range (SMP raises RuntimeError)."""


def _traced(x):
    """True inside ``jax.jit`` / ``tf.function`` / ``torch.compile``, where values are unknown."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    if backend == "torch":
        import torch

        return bool(torch.compiler.is_compiling())
    return False


def check_target_range(y_true, mode, ignore_index, num_classes=None, loss_name="loss"):
    """Raise ``LabelRangeError`` for target values the mode does not allow, eagerly only.

    multiclass: integer labels in ``[0, num_classes)``; binary / multilabel / ``None``
    (a loss without modes): values in ``[0, 1]`` (0/1 or soft targets); ``ignore_index``
    is always allowed. Under jit the
    values are unknown and nothing is checked (see the losses' module docstring).
    """
    if _traced(y_true):
        return
    if mode == MULTICLASS_MODE:
        low, high, valid = 0, num_classes - 1, f"[0, {num_classes}) (y_pred has {num_classes} classes)"
    else:
        low, high, valid = 0, 1, "[0, 1] (0/1 or probabilities)"
    bad = ops.logical_or(y_true < low, y_true > high)
    if ignore_index is not None:
        bad = ops.logical_and(bad, y_true != ignore_index)
    if not bool(ops.any(bad)):
        return
    values = np.unique(ops.convert_to_numpy(y_true)[ops.convert_to_numpy(bad)])
    shown = ", ".join(str(int(v) if float(v).is_integer() else v) for v in values[:10].tolist())
    shown += ", ..." if len(values) > 10 else ""
    where = "" if mode is None else f" for mode={mode!r}"
    raise LabelRangeError(
        f"{loss_name}: `y_true` has values [{shown}] outside the valid range {valid}{where}, "
        f"with ignore_index={ignore_index!r}. Fix the targets, or pass the value as "
        "`ignore_index` to leave those pixels out."
    )


def _static_dim(x, axis):
    return x.shape[axis]


def prepare_binary(y_true, y_pred, data_format):
    """Return ``(y_true, y_pred)`` both reshaped to ``(N, P)``.

    ``y_pred`` is ``(N, *spatial, 1)`` (or ``(N, 1, *spatial)``) or, like in
    SMP, simply the same shape as ``y_true``. ``y_true`` may lack the
    size-1 channel axis. The channel axis has size one, so the flattened
    element order does not depend on the layout.
    """
    rp, rt = len(y_pred.shape), len(y_true.shape)
    if rp == rt + 1:
        c = _static_dim(y_pred, channel_axis(data_format))
        if c is not None and c != 1:
            raise ValueError(
                "mode='binary' expects `y_pred` with a single channel, got "
                f"shape {tuple(y_pred.shape)} (data_format={data_format!r})."
            )
    elif rp == rt:
        _check_same_shape(y_true, y_pred)
    else:
        raise ValueError(
            "mode='binary' expects `y_true` of shape (N, H, W) or (N, H, W, 1)"
            f" for `y_pred` (N, H, W, 1); got y_true {tuple(y_true.shape)} "
            f"and y_pred {tuple(y_pred.shape)}."
        )
    n = ops.shape(y_pred)[0]
    return ops.reshape(y_true, (n, -1)), ops.reshape(y_pred, (n, -1))


def _check_same_shape(y_true, y_pred):
    for a, b in zip(y_true.shape, y_pred.shape):
        if a is not None and b is not None and a != b:
            raise ValueError(
                "`y_true` and `y_pred` should have the same shape, got "
                f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}."
            )


def prepare_labels(y_true, y_pred, data_format):
    """Integer label map next to a ``(N, *spatial, C)`` prediction.

    Returns ``(labels (N, P), y_pred (N, P, C))`` in channels-last order.
    ``y_true`` may be ``(N, *spatial)`` or have a size-1 channel axis.
    """
    rp, rt = len(y_pred.shape), len(y_true.shape)
    y_pred = move_channels_last(y_pred, data_format)
    if rt == rp:
        ax = channel_axis(data_format)
        if y_true.shape[ax] not in (1, None):
            raise ValueError(
                "mode='multiclass' expects integer labels `y_true` of shape "
                f"(N, H, W) or (N, H, W, 1), got {tuple(y_true.shape)}."
            )
        y_true = ops.squeeze(y_true, axis=ax)
    elif rt != rp - 1:
        raise ValueError(
            "mode='multiclass' expects `y_true` (N, H, W) with `y_pred` "
            f"(N, H, W, C); got y_true {tuple(y_true.shape)} and y_pred "
            f"{tuple(y_pred.shape)}."
        )
    num_classes = y_pred.shape[-1]
    n = ops.shape(y_pred)[0]
    return (
        ops.reshape(y_true, (n, -1)),
        ops.reshape(y_pred, (n, -1, num_classes)),
    )


def prepare_multilabel(y_true, y_pred, data_format):
    """Both ``(N, *spatial, C)`` -> ``(N, P, C)``, channels-last order."""
    if len(y_true.shape) != len(y_pred.shape):
        raise ValueError(
            "mode='multilabel' expects `y_true` and `y_pred` of the same "
            f"shape (N, H, W, C); got {tuple(y_true.shape)} and "
            f"{tuple(y_pred.shape)}."
        )
    _check_same_shape(y_true, y_pred)
    y_true = move_channels_last(y_true, data_format)
    y_pred = move_channels_last(y_pred, data_format)
    num_classes = y_pred.shape[-1]
    n = ops.shape(y_pred)[0]
    return (
        ops.reshape(y_true, (n, -1, num_classes)),
        ops.reshape(y_pred, (n, -1, num_classes)),
    )


def class_one_hot(labels, num_classes, dtype):
    """``labels[..., None] == arange(C)``; values outside 0..C-1 give zeros."""
    labels = ops.cast(labels, "int32")
    classes = ops.arange(num_classes, dtype="int32")
    return ops.cast(ops.expand_dims(labels, -1) == classes, dtype)


class SegmentationLoss(keras.losses.Loss):
    """Base class: stores ``data_format`` and serializes constructor args.

    Subclasses implement ``call(y_true, y_pred)`` returning SMP's value and
    list their constructor arguments in ``_config_keys``.
    """

    _config_keys = ()

    def __init__(
        self,
        name=None,
        dtype=None,
        data_format=None,
        keras_reduction="sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=keras_reduction, dtype=dtype)
        self.data_format = standardize_data_format(data_format)

    def check_targets(self, y_true, mode, num_classes=None):
        """``check_target_range`` with this loss's ``ignore_index`` and name."""
        ignore_index = getattr(self, "ignore_index", None)
        check_target_range(y_true, mode, ignore_index, num_classes, type(self).__name__)

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype}
        for key in self._config_keys:
            config[key] = getattr(self, key)
        config["data_format"] = self.data_format
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
