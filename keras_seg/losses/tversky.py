"""Tversky loss."""

import keras
from keras import ops

from keras_seg.losses._functional import soft_tversky_score
from keras_seg.losses.dice import _RegionLoss

__all__ = ["TverskyLoss"]


@keras.saving.register_keras_serializable(package="keras_seg")
class TverskyLoss(_RegionLoss):
    """Tversky loss; ``alpha`` weighs false positives, ``beta`` false
    negatives (``alpha = beta = 0.5`` gives the Dice loss).

    Port of ``segmentation_models_pytorch.losses.TverskyLoss``: as
    :class:`~keras_seg.losses.DiceLoss` with the per-class score
    ``(I + s) / max(I + alpha * FP + beta * FN + s, eps)`` and the final
    (weighted) mean raised to the power ``gamma`` (focal Tversky loss).

    Args:
        mode, classes, log_loss, from_logits, smooth, ignore_index, eps,
        class_weights, data_format, name, dtype: see ``DiceLoss``.
        alpha: weight of false positives.
        beta: weight of false negatives.
        gamma: exponent applied to the aggregated loss.

    Deviation from SMP (gradient only): when the aggregated loss is exactly
    0, e.g. for a batch without positive pixels, SMP's ``loss ** gamma``
    has a NaN gradient for ``gamma < 1``; here the gradient is 0 there.
    Values are identical.
    """

    _config_keys = _RegionLoss._config_keys + ("alpha", "beta", "gamma")

    def __init__(
        self,
        mode,
        classes=None,
        log_loss=False,
        from_logits=True,
        smooth=0.0,
        ignore_index=None,
        eps=1e-7,
        alpha=0.5,
        beta=0.5,
        gamma=1.0,
        class_weights=None,
        data_format=None,
        name=None,
        dtype=None,
    ):
        super().__init__(
            mode,
            classes=classes,
            log_loss=log_loss,
            from_logits=from_logits,
            smooth=smooth,
            ignore_index=ignore_index,
            eps=eps,
            class_weights=class_weights,
            data_format=data_format,
            name=name,
            dtype=dtype,
        )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)

    def compute_score(self, output, target, axis):
        return soft_tversky_score(
            output, target, self.alpha, self.beta, self.smooth, self.eps, axis
        )

    def aggregate_loss(self, loss, num_classes):
        loss = super().aggregate_loss(loss, num_classes)
        if self.gamma == 1.0:
            return loss
        # Same value as SMP's `loss ** gamma`, but where the loss is exactly
        # 0 (e.g. a batch without any positive pixel) the gradient is 0
        # instead of NaN for gamma < 1.
        positive = loss > 0
        safe = ops.where(positive, loss, ops.ones_like(loss))
        return ops.where(positive, ops.power(safe, self.gamma), 0.0 * loss)
