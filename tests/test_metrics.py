"""Parity of keras_seg.metrics with segmentation_models_pytorch 0.6.0.

Expected values are computed by SMP in the test (inputs permuted to NCHW).
"""

import warnings

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

from keras_seg import losses as kl
from keras_seg import metrics as km
from tests._loss_utils import BACKEND
from tests._loss_utils import assert_close
from tests._loss_utils import report_worst_errors  # noqa: F401
from tests._loss_utils import nhwc_to_nchw
from tests._loss_utils import to_numpy

B, MC, ML = "binary", "multiclass", "multilabel"

pytestmark = pytest.mark.usefixtures("report_worst_errors")

FUNCTIONS = [
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
REDUCTIONS = [
    "micro",
    "macro",
    "weighted",
    "micro-imagewise",
    "macro-imagewise",
    "weighted-imagewise",
    "none",
    None,
]


def _stats_equal(ours, ref):
    for name, a, b in zip("tp fp fn tn".split(), ours, ref):
        a = to_numpy(a)
        b = to_numpy(b)
        assert "int" in str(a.dtype), (name, a.dtype)
        assert a.shape == b.shape, (name, a.shape, b.shape)
        np.testing.assert_array_equal(a, b, err_msg=name)


def _data(mode, shape=(2, 8, 8, 3), seed=0, ignore=None, kind="random"):
    n, h, w, c = shape
    if mode == B:
        c = 1
    rng = np.random.default_rng(seed)
    probs = rng.random((n, h, w, c)).astype("float32")
    if mode == MC:
        target = rng.integers(0, c, (n, h, w))
        if kind == "absent":
            target = np.where(target == c - 1, 0, target)
        if ignore is not None:
            target = np.where(rng.random(target.shape) < 0.25, ignore, target)
            if kind == "all_ignored":
                target[:] = ignore
    else:
        target = rng.integers(0, 2, (n, h, w, c))
        if kind == "empty":
            target[:] = 0
    return probs, target.astype("int64")


# --------------------------------------------------------------------------
# get_stats
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [B, ML])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
@pytest.mark.parametrize("kind", ["random", "empty"])
def test_get_stats_thresholded(mode, threshold, kind):
    probs, target = _data(mode, kind=kind, seed=1)
    ref = smp.metrics.get_stats(
        torch.tensor(nhwc_to_nchw(probs)), torch.tensor(nhwc_to_nchw(target)),
        mode=mode, threshold=threshold,
    )
    _stats_equal(km.get_stats(probs, target, mode, threshold=threshold), ref)


@pytest.mark.parametrize("mode", [B, ML])
def test_get_stats_integer_output(mode):
    probs, target = _data(mode, seed=2)
    output = (probs > 0.4).astype("int64")
    ref = smp.metrics.get_stats(
        torch.tensor(nhwc_to_nchw(output)), torch.tensor(nhwc_to_nchw(target)),
        mode=mode,
    )
    _stats_equal(km.get_stats(output, target, mode), ref)


def test_get_stats_binary_target_without_channel_and_channels_first():
    probs, target = _data(B, seed=3)
    ref = smp.metrics.get_stats(
        torch.tensor(nhwc_to_nchw(probs)), torch.tensor(nhwc_to_nchw(target)),
        mode=B, threshold=0.5,
    )
    _stats_equal(km.get_stats(probs, target[..., 0], B, threshold=0.5), ref)
    _stats_equal(
        km.get_stats(nhwc_to_nchw(probs), nhwc_to_nchw(target), B,
                     threshold=0.5, data_format="channels_first"),
        ref,
    )


def test_get_stats_multilabel_channels_first_and_per_class_threshold():
    probs, target = _data(ML, seed=4)
    ref = smp.metrics.get_stats(
        torch.tensor(nhwc_to_nchw(probs)), torch.tensor(nhwc_to_nchw(target)),
        mode=ML, threshold=0.5,
    )
    _stats_equal(
        km.get_stats(nhwc_to_nchw(probs), nhwc_to_nchw(target), ML,
                     threshold=0.5, data_format="channels_first"),
        ref,
    )
    # A list gives one threshold per class (channels-last axis); compare
    # with SMP run class by class.
    thresholds = [0.2, 0.5, 0.8]
    ours = km.get_stats(probs, target, ML, threshold=thresholds)
    for c, thr in enumerate(thresholds):
        ref_c = smp.metrics.get_stats(
            torch.tensor(probs[..., c:c + 1]).permute(0, 3, 1, 2),
            torch.tensor(target[..., c:c + 1]).permute(0, 3, 1, 2),
            mode=ML, threshold=thr,
        )
        _stats_equal([to_numpy(s)[:, c:c + 1] for s in ours], ref_c)


MC_CASES = [
    dict(ignore=None),
    dict(ignore=-1),
    dict(ignore=255),
    dict(ignore=255, kind="absent"),
    dict(ignore=-1, kind="all_ignored"),
    dict(ignore=None, shape=(1, 1, 1, 4)),
    dict(ignore=None, shape=(3, 5, 7, 5)),
]


@pytest.mark.parametrize("case", MC_CASES, ids=lambda c: str(c))
def test_get_stats_multiclass(case):
    probs, target = _data(MC, shape=case.get("shape", (2, 8, 8, 3)), seed=5,
                          ignore=case["ignore"], kind=case.get("kind", "random"))
    num_classes = probs.shape[-1]
    preds = probs.argmax(-1)
    ref = smp.metrics.get_stats(
        torch.tensor(preds), torch.tensor(target), mode=MC,
        num_classes=num_classes, ignore_index=case["ignore"],
    )
    # SMP's form: integer predictions (N, H, W).
    _stats_equal(
        km.get_stats(preds, target, MC, num_classes=num_classes,
                     ignore_index=case["ignore"]),
        ref,
    )
    # Extension: per-class scores (N, H, W, C) -> argmax; labels (N,H,W,1).
    _stats_equal(
        km.get_stats(probs, target[..., None], MC,
                     ignore_index=case["ignore"]),
        ref,
    )
    _stats_equal(
        km.get_stats(nhwc_to_nchw(probs), target, MC, num_classes=num_classes,
                     ignore_index=case["ignore"], data_format="channels_first"),
        ref,
    )


def test_get_stats_multiclass_out_of_range_predictions():
    """Values outside 0..C-1 are counted for no class (SMP's histc)."""
    rng = np.random.default_rng(6)
    preds = rng.integers(-2, 6, (2, 8, 8))
    target = rng.integers(0, 4, (2, 8, 8))
    ref = smp.metrics.get_stats(torch.tensor(preds), torch.tensor(target),
                                mode=MC, num_classes=4)
    _stats_equal(km.get_stats(preds, target, MC, num_classes=4), ref)


# --------------------------------------------------------------------------
# Metric functions
# --------------------------------------------------------------------------


def _stats_with_zero_divisions():
    """(N, C) statistics with empty classes, some of them only in one image,
    so that every reduction meets 0/0 somewhere."""
    rng = np.random.default_rng(7)
    stats = rng.integers(0, 20, (4, 3, 4))  # (kind, N, C)
    stats[:, 0, 1] = 0  # image 0, class 1: all zero -> 0/0 everywhere
    stats[0, :, 2] = 0  # no tp of class 2 anywhere
    stats[1, 1, 0] = 0  # no fp for image 1, class 0
    stats[3, 2, 3] = 0  # no tn for image 2, class 3
    return [s.astype("int64") for s in stats]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("zero_division", [1.0, 0.0, "warn"])
def test_metric_functions_match_smp(name, zero_division):
    stats = _stats_with_zero_divisions()
    t_stats = [torch.tensor(s) for s in stats]
    ours_fn = getattr(km, name)
    ref_fn = getattr(smp.metrics, name)
    extra = {"beta": 2.0} if name == "fbeta_score" else {}
    for reduction in REDUCTIONS:
        for class_weights in (None, [0.2, 1.0, 3.0, 0.5]):
            kwargs = dict(reduction=reduction, class_weights=class_weights,
                          zero_division=zero_division, **extra)
            if class_weights is None and reduction and "weighted" in reduction:
                with pytest.raises(ValueError):
                    ref_fn(*t_stats, **kwargs)
                with pytest.raises(ValueError, match="class_weights"):
                    ours_fn(*stats, **kwargs)
                continue
            with warnings.catch_warnings(record=True) as ref_w:
                warnings.simplefilter("always")
                ref = ref_fn(*t_stats, **kwargs).numpy()
            with warnings.catch_warnings(record=True) as our_w:
                warnings.simplefilter("always")
                ours = to_numpy(ours_fn(*stats, **kwargs))
            ref_warned = any("Zero division" in str(w.message) for w in ref_w)
            our_warned = any("Zero division" in str(w.message) for w in our_w)
            assert our_warned == ref_warned, (reduction, class_weights)
            assert ours.shape == ref.shape
            assert ours.dtype == np.float32
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
            np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref))
            finite = np.isfinite(ref)
            assert_close(ours[finite], ref[finite], "metric")


def test_metric_functions_keyword_arguments():
    stats = _stats_with_zero_divisions()
    names = dict(zip("tp fp fn tn".split(), stats))
    ref = smp.metrics.fbeta_score(
        **{k: torch.tensor(v) for k, v in names.items()}, beta=0.5,
        reduction="macro",
    )
    ours = km.fbeta_score(**names, beta=0.5, reduction="macro")
    assert_close(to_numpy(ours), ref.numpy(), "metric")
    assert km.precision is km.positive_predictive_value
    assert km.recall is km.sensitivity


def test_metric_functions_on_smp_stats_from_data():
    probs, target = _data(MC, ignore=255, kind="absent", seed=8)
    preds = probs.argmax(-1)
    ref_stats = smp.metrics.get_stats(torch.tensor(preds), torch.tensor(target),
                                      mode=MC, num_classes=3, ignore_index=255)
    ours_stats = km.get_stats(preds, target, MC, num_classes=3,
                              ignore_index=255)
    for name in FUNCTIONS:
        for reduction in ("micro", "macro", "micro-imagewise",
                          "macro-imagewise"):
            ref = getattr(smp.metrics, name)(*ref_stats, reduction=reduction)
            ours = getattr(km, name)(*ours_stats, reduction=reduction)
            ref = ref.numpy()
            ours = to_numpy(ours)
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
            finite = np.isfinite(ref)
            assert_close(ours[finite], ref[finite], "metric")


# --------------------------------------------------------------------------
# Stateful metrics
# --------------------------------------------------------------------------


def _batches(mode, n_batches=3, seed=9, ignore=None):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_batches):
        n = 2 + i % 2  # uneven batch sizes
        if mode == B:
            y_pred = rng.normal(0, 2, (n, 6, 6, 1)).astype("float32")
            y_true = rng.integers(0, 2, (n, 6, 6))
        elif mode == ML:
            y_pred = rng.random((n, 6, 6, 3)).astype("float32")
            y_true = rng.integers(0, 2, (n, 6, 6, 3))
            y_true[0, ..., 2] = 0  # empty class in one image
        else:
            y_pred = rng.normal(0, 2, (n, 6, 6, 4)).astype("float32")
            y_true = rng.integers(0, 4, (n, 6, 6))
            y_true[0] = np.where(y_true[0] == 3, 0, y_true[0])
            if ignore is not None:
                y_true = np.where(rng.random(y_true.shape) < 0.2, ignore, y_true)
        out.append((y_true, y_pred))
    return out


def _smp_reference_stats(mode, batches, ignore=None):
    y_true = np.concatenate([b[0] for b in batches])
    y_pred = np.concatenate([b[1] for b in batches])
    if mode == B:
        output = (1 / (1 + np.exp(-y_pred)) >= 0.5).astype("int64")
        return smp.metrics.get_stats(
            torch.tensor(nhwc_to_nchw(output)), torch.tensor(y_true)[:, None],
            mode=B,
        )
    if mode == ML:
        return smp.metrics.get_stats(
            torch.tensor(nhwc_to_nchw(y_pred)),
            torch.tensor(nhwc_to_nchw(y_true)), mode=ML, threshold=0.5,
        )
    return smp.metrics.get_stats(
        torch.tensor(y_pred.argmax(-1)), torch.tensor(y_true), mode=MC,
        num_classes=4, ignore_index=ignore,
    )


STATEFUL_CASES = [
    (B, "iou_score", "micro", {"from_logits": True}),
    (B, "fbeta_score", "micro-imagewise", {"from_logits": True, "beta": 2.0}),
    (ML, "f1_score", "macro", {"threshold": 0.5}),
    (ML, "iou_score", "macro-imagewise", {}),
    (ML, "precision", "weighted", {"class_weights": [1.0, 2.0, 0.5]}),
    (ML, "recall", "weighted-imagewise", {"class_weights": [1.0, 2.0, 0.5],
                                          "zero_division": 0.0}),
    (MC, "iou_score", "macro", {"ignore_index": 255}),
    (MC, "accuracy", "micro", {}),
    (MC, "balanced_accuracy", "macro-imagewise", {"ignore_index": -1}),
    (MC, "f1_score", "micro-imagewise", {"ignore_index": 255,
                                         "zero_division": 0.0}),
    (MC, "specificity", "weighted",
     {"class_weights": [0.1, 0.2, 0.3, 0.4]}),
    (MC, "negative_likelihood_ratio", "macro", {}),
]


@pytest.mark.parametrize(
    "mode,metric,reduction,kw", STATEFUL_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in STATEFUL_CASES],
)
def test_stateful_metric_equals_functional_on_concatenated_data(
    mode, metric, reduction, kw
):
    kw = dict(kw)
    ignore = kw.get("ignore_index")
    batches = _batches(mode, ignore=ignore)
    num_classes = {B: 1, ML: 3, MC: 4}[mode]
    m = km.ConfusionMatrixMetric(metric, mode, num_classes=num_classes,
                                 reduction=reduction, **kw)
    for y_true, y_pred in batches:
        m.update_state(y_true, y_pred)
    ref_stats = _smp_reference_stats(mode, batches, ignore)
    extra = {"beta": kw["beta"]} if "beta" in kw else {}
    ref = getattr(smp.metrics, metric)(
        *ref_stats, reduction=reduction,
        class_weights=kw.get("class_weights"),
        zero_division=kw.get("zero_division", 1.0), **extra,
    )
    assert_close(to_numpy(m.result()), ref.numpy(), "metric")
    m.reset_state()
    for v in m.variables:
        assert np.all(to_numpy(v) == 0)
    y_true, y_pred = batches[0]
    m.update_state(y_true, y_pred)
    ref_stats = _smp_reference_stats(mode, batches[:1], ignore)
    ref = getattr(smp.metrics, metric)(
        *ref_stats, reduction=reduction,
        class_weights=kw.get("class_weights"),
        zero_division=kw.get("zero_division", 1.0), **extra,
    )
    assert_close(to_numpy(m.result()), ref.numpy(), "metric")


def test_stateful_sample_weight_is_a_pixel_mask():
    """Weight-0 pixels are dropped: equals SMP with those pixels ignored."""
    batches = _batches(MC, seed=10)
    m = km.IoUScore(MC, num_classes=4, reduction="macro")
    masked = []
    rng = np.random.default_rng(11)
    for y_true, y_pred in batches:
        sw = (rng.random(y_true.shape) > 0.3).astype("float32") * 2.5
        m.update_state(y_true, y_pred, sample_weight=sw)
        masked.append((np.where(sw == 0, -1, y_true), y_pred))
    ref = smp.metrics.iou_score(
        *_smp_reference_stats(MC, masked, ignore=-1), reduction="macro"
    )
    assert_close(to_numpy(m.result()), ref.numpy(), "metric")


def test_stateful_sample_weight_per_image():
    batches = _batches(ML, seed=12)
    m = km.F1Score(ML, num_classes=3, reduction="micro-imagewise")
    kept = []
    for y_true, y_pred in batches:
        sw = np.zeros(len(y_true), "float32")
        sw[0] = 1.0
        m.update_state(y_true, y_pred, sample_weight=sw)
        kept.append((y_true[:1], y_pred[:1]))
    # Images with weight 0 are left out of the imagewise mean entirely.
    ref = smp.metrics.f1_score(*_smp_reference_stats(ML, kept),
                               reduction="micro-imagewise")
    assert_close(to_numpy(m.result()), ref.numpy(), "metric")


def test_stateful_zero_division_warn():
    m = km.IoUScore(ML, num_classes=3, reduction="macro-imagewise",
                    zero_division="warn")
    y_true = np.zeros((2, 4, 4, 3), "int64")
    y_pred = np.zeros((2, 4, 4, 3), "float32")
    m.update_state(y_true, y_pred)
    with pytest.warns(UserWarning, match="Zero division"):
        result = to_numpy(m.result())
    ref = smp.metrics.iou_score(
        *smp.metrics.get_stats(torch.tensor(nhwc_to_nchw(y_pred)),
                               torch.tensor(nhwc_to_nchw(y_true)), mode=ML,
                               threshold=0.5),
        reduction="macro-imagewise", zero_division=0.0,
    )
    assert_close(result, ref.numpy(), "metric")


def test_stateful_channels_first():
    batches = _batches(ML, seed=13)
    m = km.IoUScore(ML, num_classes=3, reduction="macro",
                    data_format="channels_first")
    for y_true, y_pred in batches:
        m.update_state(nhwc_to_nchw(y_true), nhwc_to_nchw(y_pred))
    ref = smp.metrics.iou_score(*_smp_reference_stats(ML, batches),
                                reduction="macro")
    assert_close(to_numpy(m.result()), ref.numpy(), "metric")


def test_metric_in_compile_evaluate():
    """Graph-mode accumulation over 3 batches inside evaluate()."""
    rng = np.random.default_rng(14)
    x = rng.normal(size=(6, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, (6, 8, 8))
    y[:, :2] = 255
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    reductions = ["macro", "micro-imagewise", "weighted-imagewise"]
    weights = [0.2, 0.3, 0.5]
    metrics = []
    for r in reductions:
        cw = weights if "weighted" in r else None
        metrics += [
            km.IoUScore(MC, num_classes=3, ignore_index=255, reduction=r,
                        class_weights=cw, name=f"iou_{r}"),
            km.FScore(MC, beta=0.5, num_classes=3, ignore_index=255,
                      reduction=r, class_weights=cw, name=f"f05_{r}"),
        ]
    model.compile(
        loss=kl.SoftCrossEntropyLoss(ignore_index=255),
        metrics=metrics,
        jit_compile=BACKEND == "jax",
    )
    logs = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    preds = to_numpy(model.predict(x, batch_size=6, verbose=0)).argmax(-1)
    stats = smp.metrics.get_stats(torch.tensor(preds), torch.tensor(y),
                                  mode=MC, num_classes=3, ignore_index=255)
    for r in reductions:
        cw = weights if "weighted" in r else None
        assert_close(logs[f"iou_{r}"], smp.metrics.iou_score(
            *stats, reduction=r, class_weights=cw).numpy(), "metric")
        assert_close(logs[f"f05_{r}"], smp.metrics.fbeta_score(
            *stats, beta=0.5, reduction=r, class_weights=cw).numpy(),
            "metric")


@pytest.mark.parametrize("mode", [B, ML])
def test_stateful_metric_ignore_index_binary_multilabel(mode):
    """keras-seg extension (SMP's get_stats has ignore_index in multiclass
    only): ignored elements count nowhere, i.e. the scores equal SMP's on the
    kept elements alone, per class."""
    c = 1 if mode == B else 3
    rng = np.random.default_rng(21)
    y_pred = rng.random((2, 8, 8, c)).astype("float32")
    y_true = rng.integers(0, 2, (2, 8, 8, c))
    y_true = np.where(rng.random(y_true.shape) < 0.3, 255, y_true)
    scores = {}
    for r in ("micro", "macro"):
        m = km.IoUScore(mode, num_classes=c, ignore_index=255, reduction=r)
        m.update_state(y_true[:1], y_pred[:1])
        m.update_state(y_true[1:], y_pred[1:])
        scores[r] = float(to_numpy(m.result()))
    per_class = []
    for k in range(c):
        keep = y_true[..., k] != 255
        out = torch.tensor((y_pred[..., k][keep] >= 0.5).astype("int64"))
        tgt = torch.tensor(y_true[..., k][keep])
        stats = smp.metrics.get_stats(out.view(1, 1, -1), tgt.view(1, 1, -1), mode=B)
        per_class.append(stats)
    total = [sum(s[i] for s in per_class) for i in range(4)]
    assert_close(scores["micro"], smp.metrics.iou_score(*total, reduction="micro").numpy(), "metric")
    macro = np.mean([smp.metrics.iou_score(*s, reduction="micro").numpy() for s in per_class])
    assert_close(scores["macro"], macro, "metric")


def test_metric_in_fit_binary_from_logits():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    y = (x[..., :1] > 0).astype("float32")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    model.compile(
        optimizer="adam",
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[km.IoUScore(B, from_logits=True, name="iou")],
        jit_compile=BACKEND == "jax",
    )
    history = model.fit(x, y, batch_size=2, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["iou"]))
    logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    logits = to_numpy(model.predict(x, verbose=0))
    stats = smp.metrics.get_stats(
        torch.tensor(nhwc_to_nchw((logits >= 0).astype("int64"))),
        torch.tensor(nhwc_to_nchw(y.astype("int64"))), mode=B,
    )
    assert_close(logs["iou"], smp.metrics.iou_score(*stats, reduction="micro")
                 .numpy(), "metric")


# --------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------


def _metric_instances():
    return [
        km.ConfusionMatrixMetric("fbeta_score", ML, num_classes=3, beta=2.0,
                                 threshold=[0.3, 0.5, 0.7],
                                 reduction="weighted",
                                 class_weights=[1, 2, 3]),
        km.IoUScore(MC, num_classes=4, ignore_index=255,
                    reduction="macro-imagewise", zero_division="warn"),
        km.FScore(B, beta=0.5, from_logits=True, reduction="micro-imagewise"),
        km.F1Score(ML, num_classes=2, data_format="channels_first"),
        km.Precision(B, threshold=0.3),
        km.Recall(MC, num_classes=3),
        km.Accuracy(MC, num_classes=3),
        km.Sensitivity(B),
        km.Specificity(B),
        km.BalancedAccuracy(B),
        km.PositivePredictiveValue(B),
        km.NegativePredictiveValue(B),
        km.FalseNegativeRate(B),
        km.FalsePositiveRate(B),
        km.FalseDiscoveryRate(B),
        km.FalseOmissionRate(B),
        km.PositiveLikelihoodRatio(B),
        km.NegativeLikelihoodRatio(B),
    ]


@pytest.mark.parametrize("metric", _metric_instances(),
                         ids=lambda m: type(m).__name__ + "-" + m.metric)
def test_metric_serialization_round_trip(metric):
    config = metric.get_config()
    clone = type(metric).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == f"keras_seg>{type(metric).__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(metric)
    assert restored.get_config() == config


def test_named_metrics_use_their_function():
    rng = np.random.default_rng(16)
    y_pred = rng.random((3, 4, 4, 1)).astype("float32")
    y_true = rng.integers(0, 2, (3, 4, 4, 1))
    for m in _metric_instances():
        if m.mode != B:
            continue
        m.update_state(y_true, y_pred)
        threshold = 0.5 if m.threshold is None else m.threshold
        output = 1 / (1 + np.exp(-y_pred)) if m.from_logits else y_pred
        stats = smp.metrics.get_stats(
            torch.tensor(nhwc_to_nchw(output)),
            torch.tensor(nhwc_to_nchw(y_true)), mode=B, threshold=threshold,
        )
        extra = {"beta": m.beta} if m.metric == "fbeta_score" else {}
        ref = getattr(smp.metrics, m.metric)(*stats, reduction=m.reduction,
                                             **extra)
        assert_close(to_numpy(m.result()), ref.numpy(), "metric")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def _smp_error(fn, *args, **kwargs):
    with pytest.raises(ValueError):
        fn(*args, **kwargs)


def test_get_stats_validation_errors_mirror_smp():
    f = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32")
    i = (f > 0.5).astype("int64")
    lbl = i[..., 0]
    tf_, ti = torch.tensor(nhwc_to_nchw(f)), torch.tensor(nhwc_to_nchw(i))
    cases = [
        # (ours args, smp args, message pattern)
        ((i, f, ML), (ti, tf_, ML), "`target` should be one of the integer"),
        ((f, i, ML), (tf_, ti, ML), "`output` should be one of the integer"),
        ((f[..., 0], lbl, MC, None, 0.5), (tf_[:, 0], ti[:, 0], MC, None, 0.5),
         "'multiclass' mode `output` should be integer"),
        ((i, i, "multi"), (ti, ti, "multi"), "`mode`"),
        ((lbl, lbl, MC, None, 0.5, 3), (ti[:, 0], ti[:, 0], MC, None, 0.5, 3),
         "`threshold` is not supported"),
        ((i, i[:, :2], ML), (ti, ti[:, :, :2], ML), "Dimensions should match"),
        ((i, i, ML, -1), (ti, ti, ML, -1), "`ignore_index` is not supported"),
        ((lbl, lbl, MC), (ti[:, 0], ti[:, 0], MC), "`num_classes` should not"),
        ((lbl, lbl, MC, 1, None, 3), (ti[:, 0], ti[:, 0], MC, 1, None, 3),
         "`ignore_index` should be outside"),
    ]
    for ours, ref, pattern in cases:
        _smp_error(smp.metrics.get_stats, *ref)
        with pytest.raises(ValueError, match=pattern):
            km.get_stats(*ours)


def test_metric_function_errors():
    stats = _stats_with_zero_divisions()
    with pytest.raises(ValueError, match="`reduction`.*'mean'"):
        km.iou_score(*stats, reduction="mean")
    _smp_error(smp.metrics.iou_score, *[torch.tensor(s) for s in stats],
               reduction="mean")
    with pytest.raises(ValueError, match="class_weights"):
        km.iou_score(*stats, reduction="weighted")
    with pytest.raises(ValueError, match="`zero_division`.*'nan'"):
        km.iou_score(*stats, reduction="macro", zero_division="nan")
    with pytest.raises(ValueError, match="`class_weights` has 2 entries"):
        km.iou_score(*stats, reduction="macro", class_weights=[1.0, 2.0])


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(metric="dice", mode=B), "`metric`.*'dice'"),
    (dict(metric="iou_score", mode="multi"), "`mode`.*'multi'"),
    (dict(metric="iou_score", mode=B, reduction="none"), "not supported"),
    (dict(metric="iou_score", mode=B, reduction=None), "not supported"),
    (dict(metric="iou_score", mode=B, reduction="avg"), "`reduction`"),
    (dict(metric="iou_score", mode=ML, num_classes=2, reduction="weighted"),
     "class_weights"),
    (dict(metric="iou_score", mode=MC, num_classes=3, threshold=0.5),
     "`threshold`"),
    (dict(metric="iou_score", mode=B, ignore_index=1),
     r"`ignore_index` should be outside the target values range 0\.\.1"),
    (dict(metric="iou_score", mode=ML, num_classes=2, ignore_index=0),
     "outside the target values range"),
    (dict(metric="iou_score", mode=MC), "`num_classes`"),
    (dict(metric="iou_score", mode=ML), "`num_classes`"),
    (dict(metric="iou_score", mode=B, num_classes=2), "`num_classes`"),
    (dict(metric="iou_score", mode=MC, num_classes=3, ignore_index=2),
     "outside the class values range"),
    (dict(metric="iou_score", mode=ML, num_classes=3, class_weights=[1, 2]),
     "`class_weights` has 2"),
    (dict(metric="iou_score", mode=B, zero_division="x"), "`zero_division`"),
])
def test_stateful_metric_constructor_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        km.ConfusionMatrixMetric(**kwargs)


def test_stateful_metric_shape_errors():
    m = km.IoUScore(ML, num_classes=3)
    with pytest.raises(ValueError, match="channels"):
        m.update_state(np.zeros((2, 4, 4, 2)), np.zeros((2, 4, 4, 2)))
    m = km.IoUScore(MC, num_classes=3)
    with pytest.raises(ValueError, match="channels"):
        m.update_state(np.zeros((2, 4, 4)), np.zeros((2, 4, 4, 5)))
