"""Jaccard (IoU) loss."""

import keras

from keras_seg.losses._functional import soft_jaccard_score
from keras_seg.losses.dice import _RegionLoss

__all__ = ["JaccardLoss"]


@keras.saving.register_keras_serializable(package="keras_seg")
class JaccardLoss(_RegionLoss):
    """Jaccard (IoU) loss for binary, multiclass and multilabel segmentation.

    Port of ``segmentation_models_pytorch.losses.JaccardLoss``: identical to
    :class:`~keras_seg.losses.DiceLoss` (same arguments, shapes, handling of
    ``ignore_index``, ``classes``, ``class_weights``, empty classes and
    ``sample_weight``) except that the per-class score is the soft Jaccard
    index ``(I + s) / (P + T - I + s)``.
    """

    def compute_score(self, output, target, axis):
        return soft_jaccard_score(output, target, self.smooth, self.eps, axis)
