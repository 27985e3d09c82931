"""Binary cross-entropy on logits with label smoothing and ignore_index."""

import keras
import numpy as np
from keras import ops

from keras_seg.losses import _base
from keras_seg.losses._functional import binary_cross_entropy_with_logits

__all__ = ["SoftBCEWithLogitsLoss"]

_REDUCTIONS = ("mean", "sum", "none", None)


def _to_nested(value, arg_name):
    if value is None:
        return None
    try:
        arr = np.asarray(
            ops.convert_to_numpy(value) if hasattr(value, "shape") else value,
            dtype="float64",
        )
    except Exception as e:
        raise ValueError(
            f"`{arg_name}` should be a number or an array of numbers, got "
            f"{value!r}."
        ) from e
    return arr.tolist()


@keras.saving.register_keras_serializable(package="keras_seg")
class SoftBCEWithLogitsLoss(_base.SegmentationLoss):
    """``BCEWithLogits`` with ``ignore_index`` and label smoothing.

    Port of ``segmentation_models_pytorch.losses.SoftBCEWithLogitsLoss``:
    with ``smooth_factor`` s the target becomes ``(1 - t) * s + t * (1 - s)``;
    the element-wise loss is
    ``-weight * (pos_weight * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))``;
    elements whose target equals ``ignore_index`` are zeroed, and
    ``"mean"`` divides by **all** elements (ignored ones included), as SMP
    does.

    Args:
        weight: optional rescaling weight (number or array), broadcast
            against the **channels-last** ``y_pred`` (so a length-C vector
            weighs the classes, whatever ``data_format`` is).
        ignore_index: target value to ignore (default -100), or ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``/``None`` (returns the
            element-wise loss in the input layout; the Keras-level
            reduction is then disabled).
        smooth_factor: label smoothing factor, or ``None``.
        pos_weight: optional weight of positive examples, broadcast like
            ``weight`` (length C for per-class weights).
        data_format, name, dtype: see ``DiceLoss``.

    Shapes: ``y_pred`` logits and ``y_true`` of the same shape, e.g.
    ``(N, H, W, C)``; ``y_true`` may lack a size-1 channel axis.

    ``sample_weight``: scalar results are multiplied by
    ``mean(sample_weight)`` (Keras's reduction of a scalar); with
    ``reduction="none"`` Keras multiplies the element-wise losses by the
    (broadcastable) weights. ``sample_weight=None`` gives SMP's value.
    """

    def __init__(
        self,
        weight=None,
        ignore_index=-100,
        reduction="mean",
        smooth_factor=None,
        pos_weight=None,
        data_format=None,
        name=None,
        dtype=None,
    ):
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Invalid `reduction`: {reduction!r}. Expected one of "
                f"{list(_REDUCTIONS)}."
            )
        super().__init__(
            name=name,
            dtype=dtype,
            data_format=data_format,
            keras_reduction="none"
            if reduction in ("none", None)
            else "sum_over_batch_size",
        )
        self.weight = _to_nested(weight, "weight")
        self.pos_weight = _to_nested(pos_weight, "pos_weight")
        self.ignore_index = ignore_index
        self.bce_reduction = reduction
        self.smooth_factor = None if smooth_factor is None else float(smooth_factor)

    def get_config(self):
        config = super().get_config()
        config.update(
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.bce_reduction,
            smooth_factor=self.smooth_factor,
            pos_weight=self.pos_weight,
        )
        return config

    def call(self, y_true, y_pred):
        dtype = y_pred.dtype
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(
                y_true, _base.channel_axis(self.data_format)
            )
        _base._check_same_shape(y_true, y_pred)
        self.check_targets(y_true, None)
        y_true = ops.cast(y_true, dtype)
        y_pred = _base.move_channels_last(y_pred, self.data_format)
        y_true = _base.move_channels_last(y_true, self.data_format)

        if self.smooth_factor is not None:
            s = self.smooth_factor
            soft_targets = (1.0 - y_true) * s + y_true * (1.0 - s)
        else:
            soft_targets = y_true
        weight = (
            None
            if self.weight is None
            else ops.convert_to_tensor(self.weight, dtype)
        )
        pos_weight = (
            None
            if self.pos_weight is None
            else ops.convert_to_tensor(self.pos_weight, dtype)
        )
        loss = binary_cross_entropy_with_logits(
            y_pred, soft_targets, weight, pos_weight
        )
        if self.ignore_index is not None:
            loss = loss * ops.cast(y_true != self.ignore_index, dtype)
        if self.bce_reduction == "mean":
            return ops.mean(loss)
        if self.bce_reduction == "sum":
            return ops.sum(loss)
        return _base.move_channels_back(loss, self.data_format)
