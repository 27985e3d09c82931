"""Cross-entropy with label smoothing and ignore_index."""

import keras
from keras import ops

from keras_seg.losses import _base
from keras_seg.modes import MULTICLASS_MODE

__all__ = ["SoftCrossEntropyLoss"]

_REDUCTIONS = ("mean", "sum", "none", None)


@keras.saving.register_keras_serializable(package="keras_seg")
class SoftCrossEntropyLoss(_base.SegmentationLoss):
    """Softmax cross-entropy with label smoothing and ``ignore_index``.

    Port of ``segmentation_models_pytorch.losses.SoftCrossEntropyLoss``
    (fairseq's label-smoothed NLL): with ``lp = log_softmax(y_pred)`` over the
    class axis, ``nll = -lp[label]`` and ``smooth = -sum(lp)``, both zeroed at
    ignored pixels, reduced (``"mean"`` over **all** pixels, ignored ones
    included, as in SMP, or ``"sum"``), and combined as
    ``(1 - eps) * nll + eps / C * smooth`` with ``eps = smooth_factor``.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``/``None`` (per-pixel
            losses of shape ``(N, H, W)``; the Keras-level reduction is then
            disabled).
        smooth_factor: label smoothing factor. ``None`` (the default, where
            SMP raises a ``TypeError`` computing ``None / C``) is treated as
            0, i.e. plain cross-entropy.
        ignore_index: label value to ignore (default -100), or ``None``.
        dim: class axis of ``y_pred``. ``None`` (default) means the channel
            axis given by ``data_format`` (-1 for channels-last). SMP's
            default ``dim=1`` is the channels-first class axis.
        data_format, name, dtype: see ``DiceLoss``.

    Shapes: ``y_pred`` logits ``(N, H, W, C)``, ``y_true`` integer labels
    ``(N, H, W)`` or ``(N, H, W, 1)``.

    ``sample_weight``: scalar results are multiplied by
    ``mean(sample_weight)`` (Keras's reduction of a scalar); with
    ``reduction="none"`` Keras multiplies the per-pixel losses by the
    weights. ``sample_weight=None`` gives SMP's value.
    """

    def __init__(
        self,
        reduction="mean",
        smooth_factor=None,
        ignore_index=-100,
        dim=None,
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
        self.ce_reduction = reduction
        self.smooth_factor = None if smooth_factor is None else float(smooth_factor)
        self.ignore_index = ignore_index
        self.dim = None if dim is None else int(dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction=self.ce_reduction,
            smooth_factor=self.smooth_factor,
            ignore_index=self.ignore_index,
            dim=self.dim,
        )
        return config

    def call(self, y_true, y_pred):
        dtype = y_pred.dtype
        rank = len(y_pred.shape)
        axis = self.dim if self.dim is not None else (
            _base.channel_axis(self.data_format)
        )
        axis = axis % rank
        if len(y_true.shape) == rank:
            if y_true.shape[axis] not in (1, None):
                raise ValueError(
                    "SoftCrossEntropyLoss expects integer labels `y_true` "
                    f"without a class axis (or with a size-1 one); got "
                    f"{tuple(y_true.shape)} for y_pred {tuple(y_pred.shape)}."
                )
            y_true = ops.squeeze(y_true, axis=axis)
        elif len(y_true.shape) != rank - 1:
            raise ValueError(
                "SoftCrossEntropyLoss expects `y_true` of rank "
                f"{rank - 1} for y_pred of rank {rank}; got "
                f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}."
            )
        logits = ops.moveaxis(y_pred, axis, -1)
        num_classes = logits.shape[-1]
        lprobs = ops.log_softmax(logits, axis=-1)

        labels = y_true
        self.check_targets(labels, MULTICLASS_MODE, num_classes)
        pad = None
        if self.ignore_index is not None:
            pad = labels == self.ignore_index
            labels = ops.where(pad, ops.zeros_like(labels), labels)
        one_hot = _base.class_one_hot(labels, num_classes, dtype)
        nll = -ops.sum(lprobs * one_hot, axis=-1)
        smooth = -ops.sum(lprobs, axis=-1)
        if pad is not None:
            nll = ops.where(pad, ops.zeros_like(nll), nll)
            smooth = ops.where(pad, ops.zeros_like(smooth), smooth)

        if self.ce_reduction == "sum":
            nll, smooth = ops.sum(nll), ops.sum(smooth)
        elif self.ce_reduction == "mean":
            nll, smooth = ops.mean(nll), ops.mean(smooth)
        eps = 0.0 if self.smooth_factor is None else self.smooth_factor
        return (1.0 - eps) * nll + (eps / num_classes) * smooth
