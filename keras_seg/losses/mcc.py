"""Matthews correlation coefficient loss."""

import keras
from keras import ops

from keras_seg.losses import _base

__all__ = ["MCCLoss"]


@keras.saving.register_keras_serializable(package="keras_seg")
class MCCLoss(_base.SegmentationLoss):
    """``1 - MCC`` for binary segmentation (Abhishek & Hamarneh 2021).

    Port of ``segmentation_models_pytorch.losses.MCCLoss``. Soft confusion
    counts over the whole batch, each plus ``eps``:
    ``tp = sum(p * t)``, ``tn = sum((1 - p) * (1 - t))``,
    ``fp = sum(p * (1 - t))``, ``fn = sum((1 - p) * t)``;
    ``mcc = (tp * tn - fp * fn) / sqrt((tp + fp)(tp + fn)(tn + fp)(tn + fn))``.

    Args:
        eps: added to every count.
        from_logits: keras-seg extension, default ``False`` as in SMP (which
            has no such argument and expects probabilities). With ``True``
            a sigmoid is applied to ``y_pred`` first.
        data_format, name, dtype: see ``DiceLoss``.

    Shapes: ``y_pred`` ``(N, H, W, 1)`` (or ``(N, H, W)``), ``y_true``
    ``(N, H, W)`` or ``(N, H, W, 1)``.

    ``sample_weight``: ``loss * mean(sample_weight)`` (Keras's reduction of a
    scalar); ``sample_weight=None`` gives exactly SMP's value.
    """

    _config_keys = ("eps", "from_logits")

    def __init__(
        self, eps=1e-5, from_logits=False, data_format=None, name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype, data_format=data_format)
        self.eps = float(eps)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_true, y_pred = _base.prepare_binary(y_true, y_pred, self.data_format)
        self.check_targets(y_true, None)
        y_true = ops.cast(y_true, y_pred.dtype)
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        tp = ops.sum(y_pred * y_true) + self.eps
        tn = ops.sum((1.0 - y_pred) * (1.0 - y_true)) + self.eps
        fp = ops.sum(y_pred * (1.0 - y_true)) + self.eps
        fn = ops.sum((1.0 - y_pred) * y_true) + self.eps
        numerator = tp * tn - fp * fn
        denominator = ops.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return 1.0 - numerator / denominator
