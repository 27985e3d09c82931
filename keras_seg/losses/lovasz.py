"""Lovasz hinge / Lovasz-Softmax loss."""

import warnings

import keras
from keras import ops

from keras_seg.losses import _base
from keras_seg.losses._functional import lovasz_hinge_rows
from keras_seg.losses._functional import lovasz_softmax_rows
from keras_seg.losses.constants import BINARY_MODE
from keras_seg.losses.constants import MULTICLASS_MODE

__all__ = ["LovaszLoss"]


@keras.saving.register_keras_serializable(package="keras_seg")
class LovaszLoss(_base.SegmentationLoss):
    """Lovasz loss (Berman et al. 2018), a convex surrogate of the IoU.

    Port of ``segmentation_models_pytorch.losses.LovaszLoss``:

    * binary and multilabel: Lovasz hinge on the **raw logits** of
      ``y_pred``, all pixels (and classes) flattened together, or per image
      with ``per_image=True`` and then averaged over images.
    * multiclass: softmax over the channel axis, then Lovasz-Softmax over the
      classes present in ``y_true`` (mean over present classes, 0 if none).

    Pixels whose label equals ``ignore_index`` are left out (implemented
    with a mask: they are sorted last and contribute nothing, which equals
    SMP's removal and keeps shapes static for ``jax.jit`` / XLA).

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        per_image: compute the loss per image, then average over the batch.
        ignore_index: label value in ``y_true`` marking pixels to ignore.
        from_logits: accepted for signature compatibility and **ignored**,
            exactly as in SMP: ``y_pred`` must always hold logits (a warning
            is emitted when ``False`` is passed).
        data_format, name, dtype: see ``DiceLoss``.

    Deviation from SMP: in multiclass mode, when every pixel (of the batch,
    or of one image with ``per_image``) is ignored, SMP returns an empty
    tensor; here that batch / image contributes 0 (as the binary hinge does
    in SMP).

    ``sample_weight``: ``loss * mean(sample_weight)`` (Keras's reduction of a
    scalar); ``sample_weight=None`` gives exactly SMP's value.
    """

    _config_keys = ("mode", "per_image", "ignore_index", "from_logits")

    def __init__(
        self,
        mode,
        per_image=False,
        ignore_index=None,
        from_logits=True,
        data_format=None,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype, data_format=data_format)
        self.mode = _base.check_mode(mode)
        self.per_image = bool(per_image)
        self.ignore_index = ignore_index
        self.from_logits = bool(from_logits)
        if not self.from_logits:
            warnings.warn(
                "LovaszLoss ignores `from_logits` (as SMP does): `y_pred` is "
                "always treated as logits.",
                stacklevel=2,
            )

    def call(self, y_true, y_pred):
        dtype = y_pred.dtype
        if self.mode == MULTICLASS_MODE:
            labels, logits = _base.prepare_labels(
                y_true, y_pred, self.data_format
            )
            num_classes = logits.shape[-1]
            self.check_targets(labels, self.mode, num_classes)
            probas = ops.softmax(logits, axis=-1)
            if not self.per_image:
                labels = ops.reshape(labels, (1, -1))
                probas = ops.reshape(probas, (1, -1, num_classes))
            if self.ignore_index is None:
                valid = ops.ones_like(ops.cast(labels, dtype))
            else:
                valid = ops.cast(labels != self.ignore_index, dtype)
            fg = _base.class_one_hot(labels, num_classes, dtype)
            fg = fg * ops.expand_dims(valid, -1)
            return ops.mean(lovasz_softmax_rows(probas, fg, valid))

        if self.mode == BINARY_MODE:
            labels, logits = _base.prepare_binary(
                y_true, y_pred, self.data_format
            )
        else:
            labels, logits = _base.prepare_multilabel(
                y_true, y_pred, self.data_format
            )
            n = ops.shape(logits)[0]
            labels = ops.reshape(labels, (n, -1))
            logits = ops.reshape(logits, (n, -1))
        self.check_targets(labels, self.mode)
        labels = ops.cast(labels, dtype)
        if not self.per_image:
            labels = ops.reshape(labels, (1, -1))
            logits = ops.reshape(logits, (1, -1))
        if self.ignore_index is None:
            valid = ops.ones_like(labels)
        else:
            valid = ops.cast(labels != self.ignore_index, dtype)
        return ops.mean(lovasz_hinge_rows(logits, labels, valid))
