"""Stateful ``keras.metrics.Metric`` wrappers of the functional metrics."""

import warnings

import keras
from keras import ops

from keras_seg.metrics import functional as F
from keras_seg.modes import check_mode

__all__ = [
    "ConfusionMatrixMetric",
    "IoUScore",
    "FScore",
    "F1Score",
    "Accuracy",
    "Precision",
    "Recall",
    "Sensitivity",
    "Specificity",
    "BalancedAccuracy",
    "PositivePredictiveValue",
    "NegativePredictiveValue",
    "FalseNegativeRate",
    "FalsePositiveRate",
    "FalseDiscoveryRate",
    "FalseOmissionRate",
    "PositiveLikelihoodRatio",
    "NegativeLikelihoodRatio",
]

_IMAGEWISE = ("micro-imagewise", "macro-imagewise", "weighted-imagewise")


def _check_ignore_index(ignore_index, mode, num_classes):
    """``ignore_index`` must not be a valid target value: a class label, or 0/1 targets."""
    if ignore_index is None:
        return
    low, high = (0, num_classes - 1) if mode == "multiclass" else (0, 1)
    if low <= ignore_index <= high:
        raise ValueError(
            f"`ignore_index` should be outside the {'class' if mode == 'multiclass' else 'target'} "
            f"values range {low}..{high} of mode={mode!r}, got ignore_index={ignore_index}."
        )


@keras.saving.register_keras_serializable(package="keras_seg")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Any confusion-matrix metric of :mod:`keras_seg.metrics`, accumulated
    over batches during ``fit`` / ``evaluate``.

    ``update_state(y_true, y_pred)`` computes :func:`get_stats` on the batch
    and accumulates it; ``result()`` applies the metric function with the
    chosen ``reduction``. The result after any number of batches equals the
    functional metric on the concatenation of all batches:

    * ``"micro"``, ``"macro"``, ``"weighted"`` only need the statistics
      summed over images, so four ``(C,)`` integer counters are kept;
    * the imagewise reductions average per-image scores, so the running
      sum of the per-image scores (zero-division already applied, per image
      and class or per image) and the number of images are kept - no per-image
      storage, and the same value as the functional metric on all images.
    * ``"none"`` / ``None`` (one score per image) is not supported by the
      stateful metric: use the functional API.

    The counters are ``int64`` (``int32`` on JAX unless ``jax_enable_x64``
    is set, i.e. at most 2**31 - 1 pixels per class over the whole
    evaluation there).

    Args:
        metric: name of a function of :mod:`keras_seg.metrics.functional`
            (``"iou_score"``, ``"fbeta_score"``, ``"accuracy"``, ...).
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        threshold: binarization threshold for binary / multilabel, applied
            to ``y_pred`` (after the sigmoid with ``from_logits``) and to
            ``y_true`` (``x >= threshold``, as ``get_stats`` does). Defaults
            to 0.5. Not allowed in multiclass mode.
        num_classes: number of classes (channels); required for multiclass
            and multilabel (variables are created up front), 1 for binary.
        ignore_index: value of ``y_true`` to ignore: such pixels (elements, in
            multilabel mode) count nowhere. Multiclass: outside
            ``0..num_classes-1``, as in SMP. Binary / multilabel (a keras-seg
            extension; SMP's ``get_stats``, and keras-seg's, take it in
            multiclass mode only): not 0 or 1, e.g. 255; compared with the raw
            ``y_true`` before thresholding.
        reduction: one of ``"micro"`` (default), ``"macro"``,
            ``"weighted"``, ``"micro-imagewise"``, ``"macro-imagewise"``,
            ``"weighted-imagewise"``.
        class_weights: per-class weights (required by weighted reductions).
        zero_division: value for 0/0 scores, or ``"warn"`` (0 and a warning
            when ``result()`` runs eagerly).
        from_logits: ``y_pred`` holds logits. Binary / multilabel: a sigmoid
            is applied before thresholding. Multiclass: the prediction is
            always the ``argmax`` over the class axis, which is the same for
            logits and probabilities, so the flag changes nothing there.
            Default ``False`` (probabilities, or integer predictions).
        beta: F-beta's beta (only used by ``"fbeta_score"``).
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.
        name, dtype: as for any Keras metric.

    Inputs of ``update_state(y_true, y_pred, sample_weight=None)``
    (channels-last):
        * binary: ``y_pred`` ``(N, H, W, 1)``, ``y_true`` ``(N, H, W)`` or
          ``(N, H, W, 1)`` with 0/1 values;
        * multilabel: both ``(N, H, W, C)``;
        * multiclass: ``y_pred`` scores ``(N, H, W, C)`` (argmax taken) or
          integer predictions ``(N, H, W)``; ``y_true`` labels ``(N, H, W)``
          or ``(N, H, W, 1)``.
        Float ``y_true`` is accepted (Keras often casts targets to float)
        and converted to integers.

    ``sample_weight``: SMP's statistics are counts, so a weight acts as a
    mask: pixels (or whole images, for a ``(N,)`` weight) with weight 0
    are left out of every count, any non-zero weight counts as 1. With an
    imagewise reduction, an image whose pixels all have weight 0 is left
    out of the average (an image whose pixels are all ``ignore_index``
    still counts, with the ``zero_division`` score, as in SMP).
    """

    def __init__(
        self,
        metric,
        mode,
        threshold=None,
        num_classes=None,
        ignore_index=None,
        reduction="micro",
        class_weights=None,
        zero_division=1.0,
        from_logits=False,
        beta=1.0,
        data_format=None,
        name=None,
        dtype=None,
    ):
        if metric not in F.METRIC_FORMULAS:
            raise ValueError(
                f"Invalid `metric`: {metric!r}. Expected one of "
                f"{sorted(F.METRIC_FORMULAS)}."
            )
        check_mode(mode)
        F.check_reduction(reduction)
        if reduction in ("none", None):
            raise ValueError(
                f"reduction={reduction!r} (one score per image) is not "
                "supported by the stateful metric; use one of "
                f"{[r for r in F.REDUCTIONS if r not in ('none', None)]} or "
                "the functional API (get_stats + metric function)."
            )
        F.check_weighted(reduction, class_weights)
        zero_division = F.check_zero_division(zero_division)
        if mode == "multiclass" and threshold is not None:
            raise ValueError(
                "`threshold` is not supported in 'multiclass' mode (got "
                f"threshold={threshold!r}); valid modes for it are "
                "['binary', 'multilabel']."
            )
        if mode == "binary":
            if num_classes not in (None, 1):
                raise ValueError(
                    f"`num_classes` should be 1 (or None) in 'binary' mode, "
                    f"got {num_classes!r}."
                )
            num_classes = 1
        elif num_classes is None:
            raise ValueError(
                f"`num_classes` should not be None for {mode!r} mode."
            )
        num_classes = int(num_classes)
        _check_ignore_index(ignore_index, mode, num_classes)
        if class_weights is not None:
            class_weights = [float(w) for w in class_weights]
            if len(class_weights) != num_classes:
                raise ValueError(
                    f"`class_weights` has {len(class_weights)} entries but "
                    f"num_classes={num_classes}."
                )
        if isinstance(threshold, (list, tuple)):
            threshold = [float(t) for t in threshold]
        elif threshold is not None:
            threshold = float(threshold)

        super().__init__(name=name or metric, dtype=dtype)
        self.metric = metric
        self.mode = mode
        self.threshold = threshold
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.class_weights = class_weights
        self.zero_division = zero_division
        self.from_logits = bool(from_logits)
        self.beta = float(beta)
        self.data_format = F.standardize_data_format(data_format)

        count = F.count_dtype()
        c = num_classes
        if reduction in _IMAGEWISE:
            width = 1 if reduction == "micro-imagewise" else c
            self.score_sum = self.add_variable(
                shape=(width,), initializer="zeros", dtype=self.dtype,
                name="score_sum",
            )
            self.image_count = self.add_variable(
                shape=(), initializer="zeros", dtype=count, name="image_count"
            )
            self.zero_divisions = self.add_variable(
                shape=(), initializer="zeros", dtype=count,
                name="zero_divisions",
            )
        else:
            self.tp = self.add_variable(
                shape=(c,), initializer="zeros", dtype=count, name="tp"
            )
            self.fp = self.add_variable(
                shape=(c,), initializer="zeros", dtype=count, name="fp"
            )
            self.fn = self.add_variable(
                shape=(c,), initializer="zeros", dtype=count, name="fn"
            )
            self.tn = self.add_variable(
                shape=(c,), initializer="zeros", dtype=count, name="tn"
            )

    # -- helpers -------------------------------------------------------------

    def _formula(self, tp, fp, fn, tn):
        formula = F.METRIC_FORMULAS[self.metric]
        if self.metric == "fbeta_score":
            return formula(tp, fp, fn, tn, beta=self.beta)
        return formula(tp, fp, fn, tn)

    def _zero_division_value(self):
        return 0.0 if self.zero_division == "warn" else self.zero_division

    def _mask(self, sample_weight, like, with_channels):
        """0/1 mask broadcastable to the flattened ``like`` tensor."""
        if sample_weight is None:
            return None
        sw = ops.convert_to_tensor(sample_weight)
        sw = ops.cast(ops.not_equal(sw, 0), "int32")
        n = ops.shape(like)[0]
        rank = len(sw.shape)
        if rank <= 1:
            sw = ops.reshape(ops.broadcast_to(sw, (n,)), (n, 1, 1))
            return sw if with_channels else ops.reshape(sw, (n, 1))
        if with_channels:
            # `like` is (N, *spatial, C); sw is (N, *spatial) or with C / 1.
            if rank == len(like.shape) - 1:
                sw = ops.expand_dims(sw, -1)
            sw = ops.reshape(sw, (n, -1, sw.shape[-1]))
        else:
            # `like` is (N, *spatial) labels; sw maybe with a size-1 axis.
            if rank == len(like.shape) + 1:
                sw = ops.squeeze(sw, axis=-1)
            sw = ops.reshape(sw, (n, -1))
        return sw

    def _batch_stats(self, y_true, y_pred, sample_weight):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        cf = self.data_format == "channels_first"
        ax = 1 if cf else -1
        if sample_weight is not None and cf:
            sample_weight = ops.convert_to_tensor(sample_weight)
            if len(sample_weight.shape) == len(y_pred.shape):
                sample_weight = ops.moveaxis(sample_weight, 1, -1)

        if self.mode == "multiclass":
            if (
                len(y_true.shape) == len(y_pred.shape)
                and len(y_true.shape) >= 3
                and y_true.shape[ax] == 1
                and y_pred.shape[ax] not in (1, None)
            ):
                y_true = ops.squeeze(y_true, axis=ax)
            if len(y_pred.shape) == len(y_true.shape) + 1:
                if y_pred.shape[ax] not in (None, self.num_classes):
                    raise ValueError(
                        f"`y_pred` has {y_pred.shape[ax]} channels but "
                        f"num_classes={self.num_classes}."
                    )
                y_pred = ops.argmax(y_pred, axis=ax)
            elif tuple(y_pred.shape) != tuple(y_true.shape):
                raise ValueError(
                    "multiclass metric expects `y_pred` scores (N, H, W, C) "
                    "or integer predictions (N, H, W) next to `y_true` "
                    f"(N, H, W); got {tuple(y_pred.shape)} and "
                    f"{tuple(y_true.shape)}."
                )
            labels = ops.cast(y_true, "int32")
            preds = ops.cast(y_pred, "int32")
            n = ops.shape(labels)[0]
            labels = ops.reshape(labels, (n, -1))
            preds = ops.reshape(preds, (n, -1))
            weight_mask = self._mask(sample_weight, y_true, with_channels=False)
            valid = weight_mask
            if self.ignore_index is not None:
                keep = ops.cast(labels != self.ignore_index, "int32")
                valid = keep if valid is None else valid * keep
            stats = F.stats_from_labels(preds, labels, self.num_classes, valid)
            return stats, self._images_kept(weight_mask)

        # binary / multilabel
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, ax)
        if tuple(y_true.shape) != tuple(y_pred.shape):
            raise ValueError(
                f"{self.mode} metric expects `y_true` and `y_pred` of the same "
                f"shape; got {tuple(y_true.shape)} and {tuple(y_pred.shape)}."
            )
        if y_pred.shape[ax] not in (None, self.num_classes):
            raise ValueError(
                f"`y_pred` has {y_pred.shape[ax]} channels but "
                f"num_classes={self.num_classes}."
            )
        if cf:
            y_pred = ops.moveaxis(y_pred, 1, -1)
            y_true = ops.moveaxis(y_true, 1, -1)
        if self.from_logits:
            y_pred = ops.sigmoid(ops.cast(y_pred, "float32"))
        threshold = 0.5 if self.threshold is None else self.threshold
        preds = F._threshold(y_pred, threshold)
        target = F._threshold(y_true, threshold)
        n = ops.shape(preds)[0]
        preds = ops.reshape(preds, (n, -1, self.num_classes))
        target = ops.reshape(target, (n, -1, self.num_classes))
        weight_mask = self._mask(sample_weight, y_pred, with_channels=True)
        valid = weight_mask
        if self.ignore_index is not None:
            raw = ops.reshape(y_true, (n, -1, self.num_classes))
            keep = ops.cast(raw != self.ignore_index, "int32")
            valid = keep if valid is None else valid * keep
        stats = F.stats_from_binary(preds, target, valid)
        return stats, self._images_kept(weight_mask)

    @staticmethod
    def _images_kept(weight_mask):
        """(N,) 1/0: does the image have any pixel with non-zero weight."""
        if weight_mask is None:
            return None
        n = ops.shape(weight_mask)[0]
        return ops.max(ops.reshape(weight_mask, (n, -1)), axis=1)

    # -- Metric API ------------------------------------------------------------

    def update_state(self, y_true, y_pred, sample_weight=None):
        (tp, fp, fn, tn), kept = self._batch_stats(
            y_true, y_pred, sample_weight
        )
        if self.reduction not in _IMAGEWISE:
            for var, value in ((self.tp, tp), (self.fp, fp), (self.fn, fn),
                               (self.tn, tn)):
                var.assign_add(ops.cast(ops.sum(value, axis=0), var.dtype))
            return
        tp, fp, fn, tn = (ops.cast(v, self.dtype) for v in (tp, fp, fn, tn))
        if self.reduction == "micro-imagewise":
            tp, fp, fn, tn = (
                ops.sum(v, axis=1, keepdims=True) for v in (tp, fp, fn, tn)
            )
        score = self._formula(tp, fp, fn, tn)  # (N, C) or (N, 1)
        nans = ops.isnan(score)
        score = ops.where(
            nans, ops.cast(self._zero_division_value(), score.dtype), score
        )
        count_dtype = self.image_count.dtype
        if kept is None:
            n_images = ops.shape(score)[0]
        else:
            # Images whose pixels all have weight 0 are left out entirely.
            kept_f = ops.expand_dims(ops.cast(kept, score.dtype), -1)
            score = score * kept_f
            nans = ops.logical_and(nans, kept_f > 0)
            n_images = ops.sum(ops.cast(kept, "int32"))
        self.score_sum.assign_add(ops.sum(score, axis=0))
        self.image_count.assign_add(ops.cast(n_images, count_dtype))
        self.zero_divisions.assign_add(
            ops.cast(ops.sum(ops.cast(nans, "int32")), count_dtype)
        )

    def result(self):
        if self.reduction not in _IMAGEWISE:
            stats = [
                ops.expand_dims(v, 0) for v in (self.tp, self.fp, self.fn, self.tn)
            ]
            kwargs = {"beta": self.beta} if self.metric == "fbeta_score" else {}
            return F._compute_metric(
                F.METRIC_FORMULAS[self.metric],
                *stats,
                reduction=self.reduction,
                class_weights=self.class_weights,
                zero_division=self.zero_division,
                **kwargs,
            )
        if self.zero_division == "warn" and F._eager_any(
            self.zero_divisions > 0
        ):
            warnings.warn("Zero division in metric calculation!", stacklevel=2)
        count = ops.cast(self.image_count, self.dtype)
        mean_score = ops.divide_no_nan(self.score_sum, count)
        if self.reduction == "micro-imagewise":
            return mean_score[0]
        weights = F.class_weight_tensor(self.class_weights)
        return ops.mean(mean_score * weights)

    def get_config(self):
        config = super().get_config()
        config.update(
            metric=self.metric,
            mode=self.mode,
            threshold=self.threshold,
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            class_weights=self.class_weights,
            zero_division=self.zero_division,
            from_logits=self.from_logits,
            beta=self.beta,
            data_format=self.data_format,
        )
        return config


class _NamedMetric(ConfusionMatrixMetric):
    """A :class:`ConfusionMatrixMetric` with a fixed metric function."""

    _metric = None

    def __init__(
        self,
        mode,
        threshold=None,
        num_classes=None,
        ignore_index=None,
        reduction="micro",
        class_weights=None,
        zero_division=1.0,
        from_logits=False,
        data_format=None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        super().__init__(
            self._metric,
            mode,
            threshold=threshold,
            num_classes=num_classes,
            ignore_index=ignore_index,
            reduction=reduction,
            class_weights=class_weights,
            zero_division=zero_division,
            from_logits=from_logits,
            data_format=data_format,
            name=name,
            dtype=dtype,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.pop("metric")
        if self._metric != "fbeta_score":
            config.pop("beta")
        return config


def _named(class_name, metric, description):
    doc = (
        f"{description}\n\n    Stateful version of "
        f"``keras_seg.metrics.{metric}``; arguments and behaviour as in "
        ":class:`ConfusionMatrixMetric` (without ``metric``)."
    )
    cls = type(class_name, (_NamedMetric,), {"_metric": metric, "__doc__": doc})
    cls.__module__ = __name__
    return keras.saving.register_keras_serializable(package="keras_seg")(cls)


IoUScore = _named("IoUScore", "iou_score", "IoU (Jaccard index).")
F1Score = _named("F1Score", "f1_score", "F1 score (Dice coefficient).")
Accuracy = _named("Accuracy", "accuracy", "Pixel accuracy.")
Precision = _named("Precision", "precision", "Precision (PPV).")
Recall = _named("Recall", "recall", "Recall (sensitivity).")
Sensitivity = _named("Sensitivity", "sensitivity", "Sensitivity (recall).")
Specificity = _named("Specificity", "specificity", "Specificity (TNR).")
BalancedAccuracy = _named(
    "BalancedAccuracy", "balanced_accuracy", "Balanced accuracy."
)
PositivePredictiveValue = _named(
    "PositivePredictiveValue", "positive_predictive_value",
    "Positive predictive value (precision).",
)
NegativePredictiveValue = _named(
    "NegativePredictiveValue", "negative_predictive_value",
    "Negative predictive value.",
)
FalseNegativeRate = _named(
    "FalseNegativeRate", "false_negative_rate", "False negative rate."
)
FalsePositiveRate = _named(
    "FalsePositiveRate", "false_positive_rate", "False positive rate."
)
FalseDiscoveryRate = _named(
    "FalseDiscoveryRate", "false_discovery_rate", "False discovery rate."
)
FalseOmissionRate = _named(
    "FalseOmissionRate", "false_omission_rate", "False omission rate."
)
PositiveLikelihoodRatio = _named(
    "PositiveLikelihoodRatio", "positive_likelihood_ratio",
    "Positive likelihood ratio.",
)
NegativeLikelihoodRatio = _named(
    "NegativeLikelihoodRatio", "negative_likelihood_ratio",
    "Negative likelihood ratio.",
)


@keras.saving.register_keras_serializable(package="keras_seg")
class FScore(_NamedMetric):
    """F-beta score (stateful version of ``keras_seg.metrics.fbeta_score``).

    Arguments as in :class:`ConfusionMatrixMetric` (without ``metric``),
    plus ``beta`` (default 1.0).
    """

    _metric = "fbeta_score"

    def __init__(self, mode, beta=1.0, **kwargs):
        super().__init__(mode, beta=beta, **kwargs)
