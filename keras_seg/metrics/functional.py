"""Confusion-matrix metrics: Keras 3 port of ``segmentation_models_pytorch.metrics``.

Two steps, as in SMP:

1. :func:`get_stats` counts true positive, false positive, false negative
   and true negative pixels for every image and class, giving four integer
   tensors of shape ``(N, C)``;
2. a metric function (``iou_score``, ``f1_score``, ``accuracy``, ...)
   turns them into a score with a ``reduction`` over images and classes.

Inputs are channels-last (``data_format="channels_first"`` or
``keras.config.image_data_format()`` switches to channels-first), and only
``keras.ops`` is used, so everything runs on torch, TensorFlow and JAX.

Example::

    tp, fp, fn, tn = get_stats(probs, mask, mode="multilabel", threshold=0.5)
    iou = iou_score(tp, fp, fn, tn, reduction="micro")
    f2 = fbeta_score(tp, fp, fn, tn, beta=2, reduction="macro")
"""

import warnings

import keras
from keras import ops

from backbones.layers.formats import channel_axis, move_channels_last, standardize_data_format
from keras_seg.modes import MODES  # noqa: F401  (re-exported: F.MODES)
from keras_seg.modes import check_mode

__all__ = [
    "get_stats",
    "fbeta_score",
    "f1_score",
    "iou_score",
    "accuracy",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "positive_predictive_value",
    "negative_predictive_value",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "false_omission_rate",
    "positive_likelihood_ratio",
    "negative_likelihood_ratio",
]

REDUCTIONS = (
    "micro",
    "macro",
    "weighted",
    "micro-imagewise",
    "macro-imagewise",
    "weighted-imagewise",
    "none",
    None,
)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def count_dtype():
    """Integer dtype of the statistics: ``int64`` (like SMP's LongTensor),
    except on JAX without ``jax_enable_x64`` where it is ``int32``."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.read("jax_enable_x64"):
            return "int32"
    return "int64"


def _is_float(x):
    return "float" in keras.backend.standardize_dtype(x.dtype)


def _eager_any(x):
    """``bool(any(x))`` when the value is concrete, ``False`` while tracing."""
    try:
        return bool(ops.any(x))
    except Exception:
        return False


def check_zero_division(zero_division):
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(
                f"Invalid `zero_division`: {zero_division!r}. Expected a "
                "number or 'warn'."
            )
        return zero_division
    try:
        return float(zero_division)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"Invalid `zero_division`: {zero_division!r}. Expected a number "
            "or 'warn'."
        ) from e


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid `reduction`: {reduction!r}. Expected one of "
            f"{list(REDUCTIONS)}."
        )
    return reduction


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def stats_from_binary(output, target, valid=None):
    """``output``/``target`` 0/1 integers ``(N, P, C)`` -> four ``(N, C)``.

    Same formulas as SMP (``tp = sum(o * t)``, ``fp = sum(o) - tp``,
    ``fn = sum(t) - tp``, ``tn = P - tp - fp - fn``). ``valid`` (0/1,
    broadcastable to ``(N, P, C)``) restricts the counts to some pixels.
    """
    dtype = count_dtype()
    output = ops.cast(output, dtype)
    target = ops.cast(target, dtype)
    if valid is None:
        total = ops.cast(ops.shape(output)[1], dtype)
    else:
        valid = ops.cast(valid, dtype)
        output = output * valid
        target = target * valid
        total = ops.sum(valid * ops.ones_like(output), axis=1)
    tp = ops.sum(output * target, axis=1)
    fp = ops.sum(output, axis=1) - tp
    fn = ops.sum(target, axis=1) - tp
    tn = total - (tp + fp + fn)
    return tp, fp, fn, tn


def stats_from_labels(output, target, num_classes, valid=None):
    """Integer label maps ``(N, P)`` -> four ``(N, C)`` statistics.

    Labels outside ``0..num_classes-1`` are not counted for any class (SMP's
    ``histc`` behaviour). ``valid`` (0/1, ``(N, P)``) drops pixels: they
    count nowhere, not even as true negatives (SMP's ``ignore_index``).
    """
    dtype = count_dtype()
    classes = ops.arange(num_classes, dtype="int32")
    out_oh = ops.cast(
        ops.expand_dims(ops.cast(output, "int32"), -1) == classes, dtype
    )
    tgt_oh = ops.cast(
        ops.expand_dims(ops.cast(target, "int32"), -1) == classes, dtype
    )
    if valid is None:
        total = ops.cast(ops.shape(output)[1], dtype)
    else:
        valid = ops.expand_dims(ops.cast(valid, dtype), -1)
        out_oh = out_oh * valid
        tgt_oh = tgt_oh * valid
        total = ops.sum(valid, axis=1)  # (N, 1)
    tp = ops.sum(out_oh * tgt_oh, axis=1)
    fp = ops.sum(out_oh, axis=1) - tp
    fn = ops.sum(tgt_oh, axis=1) - tp
    tn = total - tp - fp - fn
    return tp, fp, fn, tn


def _flatten_spatial(x, with_channels):
    n = ops.shape(x)[0]
    if with_channels:
        return ops.reshape(x, (n, -1, x.shape[-1]))
    return ops.reshape(x, (n, -1))


def _threshold(x, threshold):
    if isinstance(threshold, (list, tuple)):
        threshold = ops.convert_to_tensor(threshold, "float32")
    x = ops.cast(x, "float32") if not _is_float(x) else x
    return ops.cast(x >= threshold, "int32")


def get_stats(
    output,
    target,
    mode,
    ignore_index=None,
    threshold=None,
    num_classes=None,
    data_format=None,
):
    """True positive, false positive, false negative and true negative pixel
    counts for every image and class.

    Port of ``segmentation_models_pytorch.metrics.get_stats`` for
    channels-last tensors.

    Args:
        output: model output.

            * ``"binary"``: ``(N, H, W, 1)``, integer or (with
              ``threshold``) float.
            * ``"multilabel"``: ``(N, H, W, C)``, integer or float.
            * ``"multiclass"``: integer predictions ``(N, H, W)`` as in SMP,
              or (keras-seg extension) per-class scores ``(N, H, W, C)``,
              reduced with ``argmax`` over the class axis (logits and
              probabilities give the same result).
        target: integer ground truth: ``(N, H, W, 1)`` (``(N, H, W)`` is
            also accepted) for binary, ``(N, H, W, C)`` for multilabel,
            ``(N, H, W)`` (or ``(N, H, W, 1)``) labels for multiclass.
        mode: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        ignore_index: label to ignore, multiclass only; must lie outside
            ``0..num_classes-1``. Ignored pixels count nowhere.
        threshold: binarization threshold of ``output`` **and** ``target``
            for binary / multilabel (``x >= threshold``), as in SMP; a list
            gives one threshold per class (last axis).
        num_classes: number of classes, required for multiclass with
            integer ``output`` (else inferred from the scores' class axis).
        data_format: ``"channels_last"`` (default from
            ``keras.config.image_data_format()``) or ``"channels_first"``.

    Returns:
        ``(tp, fp, fn, tn)``, integer tensors of shape ``(N, C)``
        (``int64``, or ``int32`` on JAX without x64).

    Raises:
        ValueError: on the same misconfigurations as SMP (float target,
            float output without threshold, float multiclass output of the
            target's shape, unknown mode, threshold in multiclass mode,
            shape mismatch, ignore_index outside multiclass mode, missing
            num_classes, ignore_index inside the class range).
    """
    data_format = standardize_data_format(data_format)
    output = ops.convert_to_tensor(output)
    target = ops.convert_to_tensor(target)

    ax = channel_axis(data_format)
    if mode == "multiclass":
        if (
            len(target.shape) == len(output.shape)
            and len(target.shape) >= 3
            and target.shape[ax] == 1
            and output.shape[ax] not in (1, None)
        ):
            target = ops.squeeze(target, axis=ax)  # (N, H, W, 1) labels
        if len(output.shape) == len(target.shape) + 1:
            # keras-seg extension: per-class scores -> argmax labels
            output = move_channels_last(output, data_format)
            scores_classes = output.shape[-1]
            if num_classes is None:
                num_classes = scores_classes
            elif scores_classes is not None and scores_classes != num_classes:
                raise ValueError(
                    f"`num_classes`={num_classes} does not match the "
                    f"{scores_classes} channels of `output`."
                )
            output = ops.argmax(output, axis=-1)

    _validate(output, target, mode, ignore_index, threshold, num_classes, ax)

    if mode == "multiclass":
        output = _flatten_spatial(output, False)
        target = _flatten_spatial(target, False)
        valid = None
        if ignore_index is not None:
            valid = target != ignore_index
        return stats_from_labels(output, target, num_classes, valid)

    if len(target.shape) == len(output.shape) - 1:  # binary (N, H, W)
        target = ops.expand_dims(target, ax)
    output = move_channels_last(output, data_format)
    target = move_channels_last(target, data_format)
    if threshold is not None:
        output = _threshold(output, threshold)
        target = _threshold(target, threshold)
    return stats_from_binary(
        _flatten_spatial(output, True), _flatten_spatial(target, True)
    )


def _validate(output, target, mode, ignore_index, threshold, num_classes, ax):
    """SMP's checks, in SMP's order."""
    if _is_float(target):
        raise ValueError(
            "`target` should be one of the integer types, got "
            f"{keras.backend.standardize_dtype(target.dtype)}."
        )
    if _is_float(output) and threshold is None:
        raise ValueError(
            "`output` should be one of the integer types if `threshold` is "
            f"None, got {keras.backend.standardize_dtype(output.dtype)}."
        )
    if _is_float(output) and mode == "multiclass":
        raise ValueError(
            "For 'multiclass' mode `output` should be integer labels (or "
            "per-class scores with one more axis than `target`), got "
            f"{keras.backend.standardize_dtype(output.dtype)} of the "
            "target's shape."
        )
    check_mode(mode)
    if mode == "multiclass" and threshold is not None:
        raise ValueError(
            "`threshold` is not supported in 'multiclass' mode (got "
            f"threshold={threshold!r}); valid modes for it are "
            "['binary', 'multilabel']."
        )
    same = tuple(output.shape) == tuple(target.shape)
    binary_no_channel = (
        mode == "binary"
        and len(target.shape) == len(output.shape) - 1
        and output.shape[ax] in (1, None)
    )
    if not (same or binary_no_channel):
        raise ValueError(
            "Dimensions should match, but `output` shape is not equal to "
            f"`target` shape, {tuple(output.shape)} != {tuple(target.shape)}."
        )
    if mode != "multiclass" and ignore_index is not None:
        raise ValueError(
            f"`ignore_index` is not supported in {mode!r} mode (got "
            f"ignore_index={ignore_index!r}); it is only valid for "
            "'multiclass'."
        )
    if mode == "multiclass" and num_classes is None:
        raise ValueError(
            "`num_classes` should not be None for 'multiclass' mode."
        )
    if ignore_index is not None and 0 <= ignore_index <= num_classes - 1:
        raise ValueError(
            "`ignore_index` should be outside the class values range "
            f"0..{num_classes - 1}, got ignore_index={ignore_index}. Hint: "
            "with ignore_index=0, subtract 1 from target and output so that "
            "ignore_index=-1 and classes start at 0."
        )


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------


def handle_zero_division(x, zero_division):
    """Replace NaN (0/0) with ``zero_division`` (0 with a warning for
    ``"warn"``). Infinite values (x/0 with x > 0) are kept, as in SMP."""
    nans = ops.isnan(x)
    if zero_division == "warn":
        if _eager_any(nans):
            warnings.warn("Zero division in metric calculation!", stacklevel=3)
        value = 0.0
    else:
        value = zero_division
    return ops.where(nans, ops.cast(value, x.dtype), x)


def class_weight_tensor(class_weights, num_classes=None):
    if class_weights is None:
        return ops.convert_to_tensor(1.0, "float32")
    weights = ops.cast(ops.convert_to_tensor(class_weights), "float32")
    if (
        num_classes is not None
        and len(weights.shape) == 1
        and weights.shape[0] != num_classes
    ):
        raise ValueError(
            f"`class_weights` has {weights.shape[0]} entries but the "
            f"statistics have {num_classes} classes."
        )
    return weights / ops.sum(weights)


def check_weighted(reduction, class_weights):
    if class_weights is None and reduction is not None and "weighted" in reduction:
        raise ValueError(
            f"`class_weights` should be provided for reduction={reduction!r}."
        )


def _compute_metric(
    metric_fn,
    tp,
    fp,
    fn,
    tn,
    reduction=None,
    class_weights=None,
    zero_division="warn",
    **metric_kwargs,
):
    check_weighted(reduction, class_weights)
    check_reduction(reduction)
    zero_division = check_zero_division(zero_division)
    tp, fp, fn, tn = (
        ops.cast(ops.convert_to_tensor(v), "float32") for v in (tp, fp, fn, tn)
    )
    uses_weights = reduction in (
        "macro", "weighted", "macro-imagewise", "weighted-imagewise"
    )
    weights = class_weight_tensor(
        class_weights, tp.shape[-1] if uses_weights else None
    )

    if reduction == "micro":
        return metric_fn(
            ops.sum(tp), ops.sum(fp), ops.sum(fn), ops.sum(tn), **metric_kwargs
        )
    if reduction in ("macro", "weighted"):
        score = metric_fn(
            ops.sum(tp, 0), ops.sum(fp, 0), ops.sum(fn, 0), ops.sum(tn, 0),
            **metric_kwargs,
        )
        score = handle_zero_division(score, zero_division)
        if reduction == "macro":
            return ops.mean(score * weights)
        return ops.sum(score * weights)
    if reduction == "micro-imagewise":
        score = metric_fn(
            ops.sum(tp, 1), ops.sum(fp, 1), ops.sum(fn, 1), ops.sum(tn, 1),
            **metric_kwargs,
        )
        return ops.mean(handle_zero_division(score, zero_division))
    score = handle_zero_division(
        metric_fn(tp, fp, fn, tn, **metric_kwargs), zero_division
    )
    if reduction in ("macro-imagewise", "weighted-imagewise"):
        return ops.mean(ops.mean(score, 0) * weights)
    return score  # "none" / None


# ---------------------------------------------------------------------------
# Metric formulas
# ---------------------------------------------------------------------------


def _fbeta_score(tp, fp, fn, tn, beta=1.0):
    beta_tp = (1 + beta**2) * tp
    beta_fn = (beta**2) * fn
    return beta_tp / (beta_tp + beta_fn + fp)


def _iou_score(tp, fp, fn, tn):
    return tp / (tp + fp + fn)


def _accuracy(tp, fp, fn, tn):
    return (tp + tn) / (tp + fp + fn + tn)


def _sensitivity(tp, fp, fn, tn):
    return tp / (tp + fn)


def _specificity(tp, fp, fn, tn):
    return tn / (tn + fp)


def _balanced_accuracy(tp, fp, fn, tn):
    return (_sensitivity(tp, fp, fn, tn) + _specificity(tp, fp, fn, tn)) / 2


def _positive_predictive_value(tp, fp, fn, tn):
    return tp / (tp + fp)


def _negative_predictive_value(tp, fp, fn, tn):
    return tn / (tn + fn)


def _false_negative_rate(tp, fp, fn, tn):
    return 1 - _sensitivity(tp, fp, fn, tn)


def _false_positive_rate(tp, fp, fn, tn):
    return 1 - _specificity(tp, fp, fn, tn)


def _false_discovery_rate(tp, fp, fn, tn):
    return 1 - _positive_predictive_value(tp, fp, fn, tn)


def _false_omission_rate(tp, fp, fn, tn):
    return 1 - _negative_predictive_value(tp, fp, fn, tn)


def _positive_likelihood_ratio(tp, fp, fn, tn):
    return _sensitivity(tp, fp, fn, tn) / _false_positive_rate(tp, fp, fn, tn)


def _negative_likelihood_ratio(tp, fp, fn, tn):
    return _false_negative_rate(tp, fp, fn, tn) / _specificity(tp, fp, fn, tn)


_DOC = """

    Args:
        tp, fp, fn, tn: statistics of shape ``(N, C)`` from
            :func:`get_stats`.
        reduction: how to aggregate over images and classes:

            * ``"micro"``: sum the statistics over images and classes, then
              compute the score (no zero-division handling, as in SMP).
            * ``"macro"``: sum over images, score per class, then the mean
              over classes of ``score * w`` (``w`` = normalized
              ``class_weights``, 1 without them).
            * ``"weighted"``: as ``"macro"`` but ``sum(score * w)``;
              requires ``class_weights``.
            * ``"micro-imagewise"``: sum over classes, score per image, mean
              over images.
            * ``"macro-imagewise"`` / ``"weighted-imagewise"``: score per
              image and class, mean over images, then ``mean(score * w)``.
            * ``"none"`` / ``None``: scores per image and class, ``(N, C)``.

        class_weights: optional per-class weights (normalized to sum 1).
        zero_division: value replacing NaN scores (0/0); ``"warn"`` uses 0
            and warns (only when the values are concrete, i.e. not while a
            function is being traced).

    Returns:
        A scalar float32 tensor, or ``(N, C)`` for ``"none"`` / ``None``.
    """


def _make_metric(formula, public_name, doc, with_beta=False):
    if with_beta:

        def metric(
            tp,
            fp,
            fn,
            tn,
            beta=1.0,
            reduction=None,
            class_weights=None,
            zero_division=1.0,
        ):
            return _compute_metric(
                formula,
                tp,
                fp,
                fn,
                tn,
                reduction=reduction,
                class_weights=class_weights,
                zero_division=zero_division,
                beta=beta,
            )

    else:

        def metric(
            tp,
            fp,
            fn,
            tn,
            reduction=None,
            class_weights=None,
            zero_division=1.0,
        ):
            return _compute_metric(
                formula,
                tp,
                fp,
                fn,
                tn,
                reduction=reduction,
                class_weights=class_weights,
                zero_division=zero_division,
            )

    metric.__name__ = public_name
    metric.__qualname__ = public_name
    metric.__doc__ = doc + _DOC
    return metric


fbeta_score = _make_metric(
    _fbeta_score,
    "fbeta_score",
    "F-beta score: ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)``.",
    with_beta=True,
)


def f1_score(tp, fp, fn, tn, reduction=None, class_weights=None,
             zero_division=1.0):
    return fbeta_score(
        tp, fp, fn, tn, beta=1.0, reduction=reduction,
        class_weights=class_weights, zero_division=zero_division,
    )


f1_score.__doc__ = "F1 score (Dice coefficient): F-beta with beta = 1." + _DOC

iou_score = _make_metric(
    _iou_score, "iou_score", "IoU (Jaccard index): ``tp / (tp + fp + fn)``."
)
accuracy = _make_metric(
    _accuracy, "accuracy", "Accuracy: ``(tp + tn) / (tp + fp + fn + tn)``."
)
sensitivity = _make_metric(
    _sensitivity,
    "sensitivity",
    "Sensitivity, recall, true positive rate: ``tp / (tp + fn)``.",
)
specificity = _make_metric(
    _specificity,
    "specificity",
    "Specificity, true negative rate: ``tn / (tn + fp)``.",
)
balanced_accuracy = _make_metric(
    _balanced_accuracy,
    "balanced_accuracy",
    "Balanced accuracy: ``(sensitivity + specificity) / 2``.",
)
positive_predictive_value = _make_metric(
    _positive_predictive_value,
    "positive_predictive_value",
    "Precision, positive predictive value: ``tp / (tp + fp)``.",
)
negative_predictive_value = _make_metric(
    _negative_predictive_value,
    "negative_predictive_value",
    "Negative predictive value: ``tn / (tn + fn)``.",
)
false_negative_rate = _make_metric(
    _false_negative_rate,
    "false_negative_rate",
    "Miss rate, false negative rate: ``1 - sensitivity``.",
)
false_positive_rate = _make_metric(
    _false_positive_rate,
    "false_positive_rate",
    "Fall-out, false positive rate: ``1 - specificity``.",
)
false_discovery_rate = _make_metric(
    _false_discovery_rate,
    "false_discovery_rate",
    "False discovery rate: ``1 - precision``.",
)
false_omission_rate = _make_metric(
    _false_omission_rate,
    "false_omission_rate",
    "False omission rate: ``1 - negative predictive value``.",
)
positive_likelihood_ratio = _make_metric(
    _positive_likelihood_ratio,
    "positive_likelihood_ratio",
    "Positive likelihood ratio: ``sensitivity / false positive rate``.",
)
negative_likelihood_ratio = _make_metric(
    _negative_likelihood_ratio,
    "negative_likelihood_ratio",
    "Negative likelihood ratio: ``false negative rate / specificity``.",
)

precision = positive_predictive_value
recall = sensitivity

#: Formula (tp, fp, fn, tn -> score) of every public metric, by name.
METRIC_FORMULAS = {
    "fbeta_score": _fbeta_score,
    "f1_score": _fbeta_score,
    "iou_score": _iou_score,
    "accuracy": _accuracy,
    "precision": _positive_predictive_value,
    "recall": _sensitivity,
    "sensitivity": _sensitivity,
    "specificity": _specificity,
    "balanced_accuracy": _balanced_accuracy,
    "positive_predictive_value": _positive_predictive_value,
    "negative_predictive_value": _negative_predictive_value,
    "false_negative_rate": _false_negative_rate,
    "false_positive_rate": _false_positive_rate,
    "false_discovery_rate": _false_discovery_rate,
    "false_omission_rate": _false_omission_rate,
    "positive_likelihood_ratio": _positive_likelihood_ratio,
    "negative_likelihood_ratio": _negative_likelihood_ratio,
}
