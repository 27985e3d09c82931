"""Dice loss (with the shared region-loss implementation used by Jaccard
and Tversky)."""

import keras
from keras import ops

from keras_seg.losses import _base
from keras_seg.losses._functional import soft_dice_score
from keras_seg.losses.constants import BINARY_MODE
from keras_seg.losses.constants import MULTICLASS_MODE

__all__ = ["DiceLoss"]


class _RegionLoss(_base.SegmentationLoss):
    """Common code of Dice / Jaccard / Tversky (SMP's ``DiceLoss.forward``)."""

    _config_keys = (
        "mode",
        "classes",
        "log_loss",
        "from_logits",
        "smooth",
        "ignore_index",
        "eps",
        "class_weights",
    )

    def __init__(
        self,
        mode,
        classes=None,
        log_loss=False,
        from_logits=True,
        smooth=0.0,
        ignore_index=None,
        eps=1e-7,
        class_weights=None,
        data_format=None,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype, data_format=data_format)
        self.mode = _base.check_mode(mode)
        self.classes, self.class_weights = _base.check_class_args(
            mode, classes, class_weights
        )
        self.log_loss = bool(log_loss)
        self.from_logits = bool(from_logits)
        self.smooth = float(smooth)
        self.ignore_index = ignore_index
        self.eps = float(eps)

    def compute_score(self, output, target, axis):
        raise NotImplementedError

    def aggregate_loss(self, loss, num_classes):
        """Per-class losses ``(C,)`` -> scalar: mean or weighted mean."""
        if self.class_weights is not None:
            weights = ops.convert_to_tensor(self.class_weights, loss.dtype)
            if self.classes is not None:
                weights = ops.take(weights, self._class_indices(num_classes))
            return ops.sum(loss * weights) / ops.sum(weights)
        return ops.mean(loss)

    def call(self, y_true, y_pred):
        dtype = y_pred.dtype
        if self.mode == BINARY_MODE:
            y_true, y_pred = _base.prepare_binary(
                y_true, y_pred, self.data_format
            )
            y_true = ops.expand_dims(y_true, -1)  # (N, P, 1)
            y_pred = ops.expand_dims(y_pred, -1)
        elif self.mode == MULTICLASS_MODE:
            y_true, y_pred = _base.prepare_labels(
                y_true, y_pred, self.data_format
            )
        else:
            y_true, y_pred = _base.prepare_multilabel(
                y_true, y_pred, self.data_format
            )
        num_classes = y_pred.shape[-1]
        _base.check_num_classes(self.class_weights, num_classes, "class_weights")
        _base.check_classes_range(self.classes, num_classes)
        self.check_targets(y_true, self.mode, num_classes)

        if self.from_logits:
            # log-then-exp, as SMP does, for well-behaved gradients.
            if self.mode == MULTICLASS_MODE:
                y_pred = ops.exp(ops.log_softmax(y_pred, axis=-1))
            else:
                y_pred = ops.exp(ops.log_sigmoid(y_pred))

        if self.mode == MULTICLASS_MODE:
            if self.ignore_index is not None:
                mask = ops.cast(y_true != self.ignore_index, dtype)  # (N, P)
                y_pred = y_pred * ops.expand_dims(mask, -1)
                labels = ops.where(mask > 0, y_true, ops.zeros_like(y_true))
                y_true = _base.class_one_hot(labels, num_classes, dtype)
                y_true = y_true * ops.expand_dims(mask, -1)
            else:
                y_true = _base.class_one_hot(y_true, num_classes, dtype)
        else:
            y_true = ops.cast(y_true, dtype)
            if self.ignore_index is not None:
                mask = ops.cast(y_true != self.ignore_index, dtype)
                y_pred = y_pred * mask
                y_true = y_true * mask

        axis = (0, 1)  # batch and pixels; one score per class
        scores = self.compute_score(y_pred, y_true, axis)
        if self.log_loss:
            loss = -ops.log(ops.maximum(scores, self.eps))
        else:
            loss = 1.0 - scores

        # Classes without any positive pixel contribute 0 (but still count
        # in the mean), exactly as in SMP.
        present = ops.cast(ops.sum(y_true, axis=axis) > 0, loss.dtype)
        loss = loss * present

        if self.classes is not None:
            loss = ops.take(loss, self._class_indices(num_classes))
        return self.aggregate_loss(loss, num_classes)

    def _class_indices(self, num_classes):
        return [c % num_classes for c in self.classes]


@keras.saving.register_keras_serializable(package="keras_seg")
class DiceLoss(_RegionLoss):
    """Dice loss for binary, multiclass and multilabel segmentation.

    Port of ``segmentation_models_pytorch.losses.DiceLoss`` with the same
    arguments and math, in Keras's call order ``loss(y_true, y_pred)``.

    The soft Dice score of every class is computed over the whole batch and
    all pixels at once: ``(2I + 2s) / (P + T + 2s)`` with ``P = sum(p)``,
    ``T = sum(t)``, ``I = sum(min(p, t))`` and ``s = smooth`` (the smoothing
    term counts twice, as in SMP). The per-class loss is ``1 - score`` (or
    ``-log(max(score, eps))`` with ``log_loss``), set to 0 for classes with no
    positive pixel in ``y_true`` (such classes still count in the mean), then
    restricted to ``classes`` and averaged, or weighted-averaged with
    ``class_weights`` (``sum(l * w) / sum(w)``).

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        classes: optional list of class indices that contribute to the loss.
            Not allowed with ``mode="binary"``.
        log_loss: use ``-log(score)`` instead of ``1 - score``.
        from_logits: ``y_pred`` holds logits (softmax over the channel axis
            in multiclass mode, sigmoid otherwise). With ``False`` it must
            hold probabilities.
        smooth: smoothing constant added to numerator and denominator.
        ignore_index: label value in ``y_true`` marking pixels to ignore.
        eps: lower bound of the denominator (and of the score for
            ``log_loss``).
        class_weights: optional per-class weights (multiclass and multilabel
            only), one per channel of ``y_pred``; need not be normalized.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.
        name, dtype: as for any ``keras.losses.Loss``.

    Shapes (channels-last):
        * binary: ``y_pred`` ``(N, H, W, 1)``, ``y_true`` ``(N, H, W)`` or
          ``(N, H, W, 1)`` with values 0/1 (or ``ignore_index``).
        * multiclass: ``y_pred`` ``(N, H, W, C)``, ``y_true`` integer labels
          ``(N, H, W)`` or ``(N, H, W, 1)``.
        * multilabel: ``y_pred`` and ``y_true`` ``(N, H, W, C)``.

    Returns a scalar equal to SMP's value on the same (NCHW-permuted) inputs.

    ``sample_weight``: the loss is not a sum of per-pixel or per-image
    terms, so it is returned as one scalar and Keras's usual reduction
    applies to it: with ``sample_weight=None`` the value is exactly SMP's;
    with a ``sample_weight`` tensor the result is ``loss * mean(sample_weight)``.
    Use ``ignore_index`` to leave pixels out.
    """

    def compute_score(self, output, target, axis):
        return soft_dice_score(output, target, self.smooth, self.eps, axis)
