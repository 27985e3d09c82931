"""Focal loss."""

import keras
from keras import ops

from keras_seg.losses import _base
from keras_seg.losses._functional import focal_terms
from keras_seg.losses.constants import BINARY_MODE
from keras_seg.losses.constants import MULTICLASS_MODE

__all__ = ["FocalLoss"]

_REDUCTIONS = ("mean", "sum", "batchwise_mean", "none", None)


@keras.saving.register_keras_serializable(package="keras_seg")
class FocalLoss(_base.SegmentationLoss):
    """Focal loss (sigmoid based) for binary, multiclass and multilabel
    segmentation.

    Port of ``segmentation_models_pytorch.losses.FocalLoss`` with the same
    arguments and math, in Keras's call order ``loss(y_true, y_pred)``:

    * element-wise ``loss = (1 - pt) ** gamma * BCE(logit, target)`` with
      ``pt = exp(-BCE)``, times ``alpha * t + (1 - alpha) * (1 - t)`` when
      ``alpha`` is set; ``reduced_threshold`` switches to the reduced focal
      loss, ``normalized`` divides by the sum of the focal terms.
    * binary: one loss over all pixels of the batch.
    * multiclass and multilabel: one loss per class, **one-vs-rest with a
      sigmoid** (as in SMP, also in multiclass mode), then the mean over
      classes, or ``sum(l * w) / sum(w)`` with ``class_weights``.
    * ``from_logits=False``: probabilities are clipped to
      ``[eps, 1 - eps]`` and turned into logits with ``log(p / (1 - p))``
      (binary, multilabel) or ``log(p)`` (multiclass), as SMP does.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        alpha: optional positive-class weight in ``[0, 1]``.
        gamma: focusing exponent.
        ignore_index: label value in ``y_true`` marking pixels to ignore.
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        eps: clipping bound used with ``from_logits=False``.
        reduction: SMP's reduction of the element-wise losses (per class in
            multiclass / multilabel mode): ``"mean"``, ``"sum"``,
            ``"batchwise_mean"`` (SMP's ``sum(0)``, see below) or
            ``"none"``/``None``.
        normalized: normalized focal loss (divide by the sum of focal terms).
        reduced_threshold: reduced focal loss threshold.
        class_weights: optional per-class weights (not for binary mode).
        data_format, name, dtype: see ``DiceLoss``.

    Reductions reproduce SMP's results: ``"batchwise_mean"`` sums over the
    first axis of what SMP reduces, so it is the plain sum in binary mode
    and, per class, the sum divided by ``H * W`` in multiclass / multilabel
    mode without ``ignore_index`` (the sum with it). In multiclass /
    multilabel mode ``"none"`` gives the same scalar as ``"mean"``, as in
    SMP. In binary mode ``"none"`` returns the per-pixel losses flattened to
    ``(N * H * W,)`` and the Keras-level reduction is disabled.

    Deviations from SMP (where SMP fails or returns NaN):
        * ``"mean"`` when every pixel is ignored returns 0 instead of NaN.
        * binary ``"none"`` with ``ignore_index``: ignored pixels are kept as
          zeros instead of being dropped (shapes stay static for jit).
        * multilabel with ``ignore_index`` (SMP raises an indexing error):
          the mask is applied element-wise, per class.
        * ``class_weights`` with ``"none"``/``"batchwise_mean"`` (SMP
          broadcasts a ``(C,)`` weight against per-pixel tensors): the
          weighted mean of the per-class values.
        * an unknown ``reduction`` string raises ``ValueError`` (SMP
          silently returns the unreduced tensor).

    ``sample_weight`` (scalar results): Keras multiplies the scalar by the
    weights and averages, i.e. ``loss * mean(sample_weight)``;
    ``sample_weight=None`` gives exactly SMP's value.
    """

    _config_keys = (
        "mode",
        "alpha",
        "gamma",
        "ignore_index",
        "from_logits",
        "eps",
        "normalized",
        "reduced_threshold",
        "class_weights",
    )

    def __init__(
        self,
        mode,
        alpha=None,
        gamma=2.0,
        ignore_index=None,
        from_logits=True,
        eps=1e-7,
        reduction="mean",
        normalized=False,
        reduced_threshold=None,
        class_weights=None,
        data_format=None,
        name=None,
        dtype=None,
    ):
        _base.check_mode(mode)
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Invalid `reduction`: {reduction!r}. Expected one of "
                f"{list(_REDUCTIONS)}."
            )
        unreduced = mode == BINARY_MODE and reduction in ("none", None)
        super().__init__(
            name=name,
            dtype=dtype,
            data_format=data_format,
            keras_reduction="none" if unreduced else "sum_over_batch_size",
        )
        self.mode = mode
        _, self.class_weights = _base.check_class_args(mode, None, class_weights)
        self.alpha = None if alpha is None else float(alpha)
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.from_logits = bool(from_logits)
        self.eps = float(eps)
        # `self.reduction` belongs to keras.losses.Loss.
        self.focal_reduction = reduction
        self.normalized = bool(normalized)
        self.reduced_threshold = (
            None if reduced_threshold is None else float(reduced_threshold)
        )

    def get_config(self):
        config = super().get_config()
        config["reduction"] = self.focal_reduction
        return config

    def _terms(self, logits, target):
        return focal_terms(
            logits, target, self.gamma, self.alpha, self.reduced_threshold
        )

    def call(self, y_true, y_pred):
        dtype = y_pred.dtype
        if not self.from_logits:
            y_pred = ops.clip(y_pred, self.eps, 1.0 - self.eps)
            if self.mode == MULTICLASS_MODE:
                y_pred = ops.log(y_pred)
            else:
                y_pred = ops.log(y_pred / (1.0 - y_pred))
        if self.mode == BINARY_MODE:
            return self._binary(y_true, y_pred, dtype)
        return self._per_class(y_true, y_pred, dtype)

    def _binary(self, y_true, y_pred, dtype):
        y_true, y_pred = _base.prepare_binary(y_true, y_pred, self.data_format)
        self.check_targets(y_true, BINARY_MODE)
        y_true = ops.reshape(ops.cast(y_true, dtype), (-1,))
        y_pred = ops.reshape(y_pred, (-1,))
        valid = None
        if self.ignore_index is not None:
            valid = ops.cast(y_true != self.ignore_index, dtype)
            y_true = y_true * valid
        loss, focal = self._terms(y_pred, y_true)
        if valid is not None:
            loss = loss * valid
            focal = focal * valid
        if self.normalized:
            loss = loss / ops.maximum(ops.sum(focal), 1e-6)
        reduction = self.focal_reduction
        if reduction == "mean":
            if valid is None:
                return ops.mean(loss)
            return ops.sum(loss) / ops.maximum(ops.sum(valid), 1.0)
        if reduction in ("sum", "batchwise_mean"):
            return ops.sum(loss)
        return loss

    def _per_class(self, y_true, y_pred, dtype):
        if self.mode == MULTICLASS_MODE:
            labels, y_pred = _base.prepare_labels(
                y_true, y_pred, self.data_format
            )
            num_classes = y_pred.shape[-1]
            self.check_targets(labels, MULTICLASS_MODE, num_classes)
            target = _base.class_one_hot(labels, num_classes, dtype)
            valid = None
            if self.ignore_index is not None:
                valid = ops.cast(labels != self.ignore_index, dtype)
                valid = ops.expand_dims(valid, -1)  # (N, P, 1)
                target = target * valid
        else:
            target, y_pred = _base.prepare_multilabel(
                y_true, y_pred, self.data_format
            )
            num_classes = y_pred.shape[-1]
            self.check_targets(target, self.mode)
            target = ops.cast(target, dtype)
            valid = None
            if self.ignore_index is not None:
                valid = ops.cast(target != self.ignore_index, dtype)
                target = target * valid
        _base.check_num_classes(self.class_weights, num_classes, "class_weights")

        loss, focal = self._terms(y_pred, target)  # (N, P, C)
        axis = (0, 1)
        if valid is not None:
            loss = loss * valid
            focal = focal * valid
            count = ops.sum(valid * ops.ones_like(loss), axis=axis)  # (C,)
        if self.normalized:
            loss = loss / ops.maximum(ops.sum(focal, axis=axis), 1e-6)

        reduction = self.focal_reduction
        if reduction == "sum" or (
            reduction == "batchwise_mean" and valid is not None
        ):
            class_losses = ops.sum(loss, axis=axis)
        elif reduction == "batchwise_mean":
            # SMP: per class sum over the batch axis -> (H, W), then the
            # mean over all stacked elements.
            pixels = ops.cast(ops.shape(loss)[1], loss.dtype)
            class_losses = ops.sum(loss, axis=axis) / pixels
        elif valid is None:  # "mean", "none"
            class_losses = ops.mean(loss, axis=axis)
        else:
            class_losses = ops.sum(loss, axis=axis) / ops.maximum(count, 1.0)

        if self.class_weights is not None:
            weights = ops.convert_to_tensor(self.class_weights, loss.dtype)
            return ops.sum(class_losses * weights) / ops.sum(weights)
        return ops.mean(class_losses)


