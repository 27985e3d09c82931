"""Parity of keras_seg.losses with segmentation_models_pytorch 0.6.0.

Every expected number is computed here by SMP on the same inputs (permuted
to NCHW); values and gradients must agree within 1e-5.
"""


import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

from keras_seg import losses as kl
from tests._loss_utils import BACKEND
from tests._loss_utils import assert_close
from tests._loss_utils import report_worst_errors  # noqa: F401
from tests._loss_utils import keras_value_and_grad
from tests._loss_utils import nchw_to_nhwc
from tests._loss_utils import nhwc_to_nchw
from tests._loss_utils import to_numpy
from tests._loss_utils import torch_value_and_grad

B, MC, ML = "binary", "multiclass", "multilabel"

pytestmark = pytest.mark.usefixtures("report_worst_errors")

CLASSES = {
    "dice": (kl.DiceLoss, smp.losses.DiceLoss),
    "jaccard": (kl.JaccardLoss, smp.losses.JaccardLoss),
    "tversky": (kl.TverskyLoss, smp.losses.TverskyLoss),
    "focal": (kl.FocalLoss, smp.losses.FocalLoss),
    "lovasz": (kl.LovaszLoss, smp.losses.LovaszLoss),
    "bce": (kl.SoftBCEWithLogitsLoss, smp.losses.SoftBCEWithLogitsLoss),
    "ce": (kl.SoftCrossEntropyLoss, smp.losses.SoftCrossEntropyLoss),
    "mcc": (kl.MCCLoss, smp.losses.MCCLoss),
}


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def make_data(mode, shape=(2, 8, 8, 3), seed=0, ignore=None, kind="random",
              ignore_frac=0.25, probs=False):
    """Channels-last logits / probabilities and targets.

    Returns ``(y_pred (N,H,W,C) float32, y_true)`` where ``y_true`` is
    ``(N,H,W)`` for binary and multiclass, ``(N,H,W,C)`` for multilabel.
    """
    n, h, w, c = shape
    if mode == B:
        c = 1
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (n, h, w, c)).astype("float32")
    if mode == MC:
        y_true = rng.integers(0, c, (n, h, w))
        if kind == "empty":  # class c-1 absent everywhere
            y_true = rng.integers(0, max(c - 1, 1), (n, h, w))
    elif mode == B:
        y_true = rng.integers(0, 2, (n, h, w))
    else:
        y_true = rng.integers(0, 2, (n, h, w, c))
    if kind == "empty" and mode != MC:
        y_true = np.zeros_like(y_true)
    if kind == "full" and mode != MC:
        y_true = np.ones_like(y_true)
    if ignore is not None:
        if kind == "all_ignored":
            y_true = np.full_like(y_true, ignore)
        else:
            drop = rng.random(y_true.shape) < ignore_frac
            y_true = np.where(drop, ignore, y_true)
    y_true = y_true.astype("int64")
    if probs:
        if mode == MC:
            e = np.exp(logits - logits.max(-1, keepdims=True))
            logits = e / e.sum(-1, keepdims=True)
        else:
            logits = 1.0 / (1.0 + np.exp(-logits))
        logits = logits.astype("float32")
    return logits, y_true


def smp_target(mode, y_true, float_target=True):
    if mode == MC:
        return torch.tensor(y_true, dtype=torch.long)
    t = torch.tensor(nhwc_to_nchw(y_true) if mode == ML else y_true)
    return t.float() if float_target else t


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------


def _case(loss, mode, kw=None, **opts):
    kw = dict(kw or {})
    if mode is not None and loss not in ("bce", "ce", "mcc"):
        kw = {"mode": mode, **kw}
    opt_id = ",".join(f"{k}={v}" for k, v in opts.items())
    kw_id = ",".join(f"{k}={v}" for k, v in kw.items() if k != "mode")
    cid = f"{loss}-{mode}-{kw_id}-{opt_id}".replace(" ", "")
    return pytest.param(loss, mode, kw, opts, id=cid)


def _region_cases():
    cases = []
    for loss in ("dice", "jaccard", "tversky"):
        for mode in (B, MC, ML):
            ii = -1 if mode == MC else 255
            cases += [
                _case(loss, mode),
                _case(loss, mode, {"ignore_index": ii}, ignore=ii, seed=1),
                _case(loss, mode, {"log_loss": True, "smooth": 1.0}, seed=2),
                _case(loss, mode, {"from_logits": False}, probs=True, seed=3),
                _case(loss, mode, {"smooth": 0.5, "eps": 1e-3}, kind="empty"),
            ]
            # Input plumbing shared by the three losses (they only differ
            # in the score formula): checked once, on Dice.
            if loss == "dice":
                cases += [
                    _case(loss, mode, {"ignore_index": ii}, ignore=ii,
                          kind="all_ignored"),
                    _case(loss, mode, {"log_loss": True}, shape=(1, 1, 1, 3)),
                    _case(loss, mode, {}, fmt="channels_first", seed=4),
                ]
                if mode != ML:
                    cases.append(_case(loss, mode, {}, true_channel=True,
                                       seed=5))
            if mode != B:
                cases += [
                    _case(loss, mode, {"classes": [0, 2]}, seed=6),
                    _case(loss, mode, {"class_weights": [0.2, 1.0, 3.0]},
                          seed=7),
                    _case(loss, mode, {"classes": [2, 1],
                                       "class_weights": [0.5, 1.0, 2.0],
                                       "ignore_index": ii},
                          ignore=ii, seed=8),
                    _case(loss, mode, {}, kind="empty", seed=9),
                ]
        if loss == "tversky":
            for mode in (B, MC, ML):
                cases += [
                    _case(loss, mode, {"alpha": 0.3, "beta": 0.7,
                                       "gamma": 2.0}, seed=10),
                    _case(loss, mode, {"alpha": 0.8, "beta": 0.2,
                                       "gamma": 0.75, "smooth": 1.0,
                                       "log_loss": True}, seed=11),
                ]
    return cases


def _focal_cases():
    cases = []
    for mode in (B, MC, ML):
        ii = 255
        # SMP's multilabel FocalLoss cannot index with ignore_index (tested
        # separately), so only binary / multiclass get ignore cases here.
        ign = mode != ML
        cases += [
            _case("focal", mode),
            _case("focal", mode, {"alpha": 0.25, "gamma": 1.5}, seed=1),
            _case("focal", mode, {"normalized": True}, seed=2),
            _case("focal", mode, {"reduced_threshold": 0.5}, seed=3),
            _case("focal", mode, {"from_logits": False, "eps": 1e-4},
                  probs=True, seed=4),
            _case("focal", mode, {"reduction": "sum"}, seed=5),
            _case("focal", mode, {"reduction": "batchwise_mean"}, seed=6),
            _case("focal", mode, {"alpha": 0.7}, kind="empty", seed=7),
            _case("focal", mode, {}, shape=(1, 1, 1, 3), seed=8),
            _case("focal", mode, {}, fmt="channels_first", seed=9),
        ]
        if ign:
            cases += [
                _case("focal", mode, {"ignore_index": ii}, ignore=ii, seed=10),
                _case("focal", mode, {"ignore_index": ii, "normalized": True,
                                      "alpha": 0.4}, ignore=ii, seed=11),
                _case("focal", mode, {"ignore_index": ii,
                                      "reduction": "batchwise_mean"},
                      ignore=ii, seed=12),
                _case("focal", mode, {"ignore_index": ii, "reduction": "sum",
                                      "reduced_threshold": 0.3},
                      ignore=ii, seed=13),
            ]
        if mode == B:
            cases.append(_case("focal", mode, {"reduction": "none"}, seed=14))
            cases.append(_case("focal", mode, {}, true_channel=True, seed=15))
        else:
            cases += [
                _case("focal", mode, {"reduction": "none"}, seed=16),
                _case("focal", mode, {"class_weights": [1.0, 0.5, 2.0]},
                      seed=17),
            ]
    return cases


def _lovasz_cases():
    cases = []
    for mode in (B, MC, ML):
        ii = 255
        for per_image in (False, True):
            kw = {"per_image": per_image}
            cases += [
                _case("lovasz", mode, kw, seed=1),
                _case("lovasz", mode, {**kw, "ignore_index": ii}, ignore=ii,
                      seed=2),
                _case("lovasz", mode, kw, kind="empty", seed=3),
            ]
        if mode != ML:  # one element (multilabel would flatten C of them)
            cases.append(_case("lovasz", mode, {}, shape=(1, 1, 1, 3), seed=4))
        cases.append(_case("lovasz", mode, {}, fmt="channels_first", seed=5))
        if mode != MC:
            cases.append(_case("lovasz", mode, {"ignore_index": ii,
                                                "per_image": True},
                               ignore=ii, kind="all_ignored"))
            cases.append(_case("lovasz", mode, {}, kind="full", seed=6))
    return cases


def _bce_cases():
    return [
        _case("bce", ML),
        _case("bce", ML, {}, ignore=-100, seed=1),
        _case("bce", ML, {"smooth_factor": 0.1}, ignore=-100, seed=2),
        _case("bce", ML, {"weight": [0.5, 1.0, 2.0]}, ignore=-100, seed=3),
        _case("bce", ML, {"pos_weight": [3.0, 1.0, 0.2], "smooth_factor": 0.05},
              seed=4),
        _case("bce", ML, {"weight": 0.7, "pos_weight": [2.0, 1.0, 0.5],
                          "reduction": "sum"}, ignore=-100, seed=5),
        _case("bce", ML, {"reduction": "none"}, ignore=-100, seed=6),
        _case("bce", ML, {"ignore_index": None}, seed=7),
        _case("bce", ML, {"ignore_index": 255}, ignore=255, seed=8),
        _case("bce", ML, {"smooth_factor": 0.2}, fmt="channels_first", seed=9),
        _case("bce", B, {}, ignore=-100, seed=10),
        _case("bce", B, {}, true_channel=True, seed=11),
        _case("bce", ML, {}, kind="empty", seed=12),
        _case("bce", ML, {}, shape=(1, 1, 1, 3), seed=13),
    ]


def _ce_cases():
    return [
        _case("ce", MC, {"smooth_factor": 0.1}),
        _case("ce", MC, {"smooth_factor": 0.1}, ignore=-100, seed=1),
        _case("ce", MC, {"smooth_factor": 0.0}, ignore=-100, seed=2),
        _case("ce", MC, {"smooth_factor": 0.3, "reduction": "sum"},
              ignore=-100, seed=3),
        _case("ce", MC, {"smooth_factor": 0.1, "reduction": "none"},
              ignore=-100, seed=4),
        _case("ce", MC, {"smooth_factor": 0.1, "reduction": "none"}, seed=5),
        _case("ce", MC, {"smooth_factor": 0.2, "ignore_index": None}, seed=6),
        _case("ce", MC, {"smooth_factor": 0.2, "ignore_index": 255},
              ignore=255, seed=7),
        _case("ce", MC, {"smooth_factor": 0.1}, fmt="channels_first", seed=8),
        _case("ce", MC, {"smooth_factor": 0.1}, true_channel=True, seed=9),
        _case("ce", MC, {"smooth_factor": 0.1}, ignore=-100,
              kind="all_ignored", seed=10),
        _case("ce", MC, {"smooth_factor": 0.1}, shape=(1, 1, 1, 3), seed=11),
    ]


def _mcc_cases():
    return [
        _case("mcc", B, {}, probs=True),
        _case("mcc", B, {"eps": 1e-3}, probs=True, seed=1),
        _case("mcc", B, {}, probs=True, kind="empty", seed=2),
        _case("mcc", B, {}, probs=True, kind="full", seed=3),
        _case("mcc", B, {}, probs=True, shape=(1, 1, 1, 1), seed=4),
        _case("mcc", B, {}, probs=True, true_channel=True, seed=5),
        _case("mcc", B, {}, probs=True, fmt="channels_first", seed=6),
    ]


ALL_CASES = (
    _region_cases()
    + _focal_cases()
    + _lovasz_cases()
    + _bce_cases()
    + _ce_cases()
    + _mcc_cases()
)


def _smp_kwargs(loss, kw):
    kw = dict(kw)
    if loss == "bce":
        for key in ("weight", "pos_weight"):
            if key in kw:
                v = torch.tensor(kw[key], dtype=torch.float32)
                kw[key] = v.reshape(-1, 1, 1) if v.ndim == 1 else v
    return kw


def run_parity(loss, mode, kw, opts):
    shape = opts.get("shape", (2, 8, 8, 3))
    fmt = opts.get("fmt", "channels_last")
    true_channel = opts.get("true_channel", False)
    y_pred, y_true = make_data(
        mode,
        shape=shape,
        seed=opts.get("seed", 0),
        ignore=opts.get("ignore"),
        kind=opts.get("kind", "random"),
        probs=opts.get("probs", False),
    )
    k_cls, s_cls = CLASSES[loss]
    smp_loss = s_cls(**_smp_kwargs(loss, kw))
    k_loss = k_cls(**kw, data_format=fmt)

    # SMP inputs (NCHW).
    t_true = smp_target(mode, y_true)
    if loss == "bce" and mode == B:
        t_true = t_true[:, None]  # torch BCE needs equal shapes
    pred_nchw = nhwc_to_nchw(y_pred)
    s_val, s_grad = torch_value_and_grad(lambda p: smp_loss(p, t_true),
                                         pred_nchw)

    # Keras inputs.
    k_true = y_true
    k_pred = y_pred
    if fmt == "channels_first":
        k_pred = pred_nchw
        if mode == ML:
            k_true = nhwc_to_nchw(y_true)
    if true_channel:
        k_true = k_true[:, None] if fmt == "channels_first" else k_true[..., None]
    k_val, k_grad = keras_value_and_grad(
        lambda p: k_loss(k_true, p), k_pred, compiled=opts.get("compiled", False)
    )

    if fmt == "channels_last":
        s_grad = nchw_to_nhwc(s_grad)
    if loss == "bce" and np.ndim(s_val) == 4 and fmt == "channels_last":
        s_val = nchw_to_nhwc(s_val)
    if loss == "ce" and np.ndim(s_val) == 4:
        s_val = s_val[:, 0]
    if loss == "focal" and kw.get("reduction") == "none" and mode == B:
        assert k_val.shape == s_val.shape
    assert np.all(np.isfinite(k_grad))
    assert_close(k_val, s_val, "value")
    assert_close(k_grad, s_grad, "grad")
    return k_val, s_val


@pytest.mark.parametrize("loss,mode,kw,opts", ALL_CASES)
def test_parity_with_smp(loss, mode, kw, opts):
    run_parity(loss, mode, kw, opts)


# --------------------------------------------------------------------------
# Where SMP fails: documented deviations, still checked against SMP
# --------------------------------------------------------------------------


def test_soft_ce_smooth_factor_none_is_plain_cross_entropy():
    y_pred, y_true = make_data(MC, ignore=-100, seed=3)
    with pytest.raises(TypeError):
        smp.losses.SoftCrossEntropyLoss()(
            torch.tensor(nhwc_to_nchw(y_pred)), torch.tensor(y_true)
        )
    ref = smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0)(
        torch.tensor(nhwc_to_nchw(y_pred)), torch.tensor(y_true)
    )
    ref_ce = torch.nn.functional.cross_entropy(
        torch.tensor(nhwc_to_nchw(y_pred)), torch.tensor(y_true),
        ignore_index=-100, reduction="sum",
    ) / y_true.size
    out = kl.SoftCrossEntropyLoss()(y_true, y_pred)
    assert_close(to_numpy(out), ref.numpy())
    assert_close(to_numpy(out), ref_ce.numpy())


@pytest.mark.parametrize("mode", [B, MC])
def test_focal_all_ignored_gives_zero_not_nan(mode):
    y_pred, y_true = make_data(mode, ignore=255, kind="all_ignored")
    ref = smp.losses.FocalLoss(mode, ignore_index=255)(
        torch.tensor(nhwc_to_nchw(y_pred)), smp_target(mode, y_true)
    )
    assert torch.isnan(ref)  # SMP: mean of an empty tensor
    val, grad = keras_value_and_grad(
        lambda p: kl.FocalLoss(mode, ignore_index=255)(y_true, p), y_pred
    )
    assert float(val) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("kw", [{}, {"normalized": True, "alpha": 0.3},
                                {"reduction": "sum"}])
def test_focal_multilabel_ignore_index_is_per_class_binary(kw):
    """SMP raises for multilabel + ignore_index; here the mask is applied per
    class, i.e. the mean of SMP's binary focal loss over the channels."""
    y_pred, y_true = make_data(ML, ignore=255, seed=4)
    with pytest.raises(IndexError):
        smp.losses.FocalLoss(ML, ignore_index=255, **kw)(
            torch.tensor(nhwc_to_nchw(y_pred)), smp_target(ML, y_true)
        )
    per_class = [
        smp.losses.FocalLoss(B, ignore_index=255, **kw)(
            torch.tensor(y_pred[..., c]), torch.tensor(y_true[..., c]).float()
        )
        for c in range(y_pred.shape[-1])
    ]
    ref = torch.stack(per_class).mean().numpy()
    out = kl.FocalLoss(ML, ignore_index=255, **kw)(y_true, y_pred)
    assert_close(to_numpy(out), ref)


@pytest.mark.parametrize("mode", [B, ML])
def test_tversky_gamma_below_one_zero_loss_has_zero_gradient(mode):
    """SMP's ``loss ** gamma`` has a NaN gradient at loss 0 for gamma < 1
    (e.g. a batch without positives); the value matches, the gradient is 0."""
    y_pred, y_true = make_data(mode, kind="empty", seed=3)
    kw = dict(mode=mode, alpha=0.3, beta=0.7, gamma=0.75)
    ref_val, ref_grad = torch_value_and_grad(
        lambda p: smp.losses.TverskyLoss(**kw)(p, smp_target(mode, y_true)),
        nhwc_to_nchw(y_pred),
    )
    assert np.isnan(ref_grad).all()
    val, grad = keras_value_and_grad(
        lambda p: kl.TverskyLoss(**kw)(y_true, p), y_pred
    )
    assert_close(val, ref_val)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_multiclass_all_ignored_gives_zero(per_image):
    y_pred, y_true = make_data(MC, ignore=255, kind="all_ignored")
    ref = smp.losses.LovaszLoss(MC, per_image=per_image, ignore_index=255)(
        torch.tensor(nhwc_to_nchw(y_pred)), smp_target(MC, y_true)
    )
    assert ref.numel() == 0  # SMP returns an empty tensor
    loss = kl.LovaszLoss(MC, per_image=per_image, ignore_index=255)
    val, grad = keras_value_and_grad(lambda p: loss(y_true, p), y_pred)
    assert float(val) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


def test_lovasz_multiclass_one_image_ignored_per_image():
    """One fully ignored image counts as 0 in the per-image mean (SMP gives
    an empty tensor); the other image matches SMP's per-image value."""
    y_pred, y_true = make_data(MC, ignore=255, seed=2)
    y_true[0] = 255
    ref_img1 = smp.losses.LovaszLoss(MC, per_image=True, ignore_index=255)(
        torch.tensor(nhwc_to_nchw(y_pred[1:])), smp_target(MC, y_true[1:])
    )
    out = kl.LovaszLoss(MC, per_image=True, ignore_index=255)(y_true, y_pred)
    assert_close(to_numpy(out), ref_img1.numpy() / 2)


def test_lovasz_from_logits_false_warns_and_is_ignored():
    y_pred, y_true = make_data(MC, seed=1)
    with pytest.warns(UserWarning, match="from_logits"):
        loss = kl.LovaszLoss(MC, from_logits=False)
    ref = smp.losses.LovaszLoss(MC, from_logits=False)(
        torch.tensor(nhwc_to_nchw(y_pred)), smp_target(MC, y_true)
    )
    assert_close(to_numpy(loss(y_true, y_pred)), ref.numpy())


def test_mcc_from_logits_extension():
    logits, y_true = make_data(B, seed=5)
    probs = 1.0 / (1.0 + np.exp(-logits))
    ref = smp.losses.MCCLoss()(
        torch.tensor(nhwc_to_nchw(probs)), torch.tensor(y_true).float()
    )
    out = kl.MCCLoss(from_logits=True)(y_true, logits)
    assert_close(to_numpy(out), ref.numpy())


def test_soft_bce_smp_docstring_example():
    """SMP's own test example (expected number computed by SMP here)."""
    pred = np.array([-9, 9, 1, 9, -9], dtype="float32")
    true = np.array([0, 1, -100, 1, 0], dtype="float32")
    ref = smp.losses.SoftBCEWithLogitsLoss(smooth_factor=0.1)(
        torch.tensor(pred), torch.tensor(true)
    )
    out = kl.SoftBCEWithLogitsLoss(smooth_factor=0.1)(true, pred)
    assert_close(to_numpy(out), ref.numpy())


# --------------------------------------------------------------------------
# Keras integration
# --------------------------------------------------------------------------


def test_global_channels_first_image_data_format():
    y_pred, y_true = make_data(ML, seed=3)
    ref = smp.losses.DiceLoss(ML)(
        torch.tensor(nhwc_to_nchw(y_pred)), smp_target(ML, y_true)
    )
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        loss = kl.DiceLoss(ML)
        assert loss.data_format == "channels_first"
        out = loss(nhwc_to_nchw(y_true), nhwc_to_nchw(y_pred))
    finally:
        keras.config.set_image_data_format(old)
    assert_close(to_numpy(out), ref.numpy())


def _all_losses():
    return [
        kl.DiceLoss(MC, classes=[0, 1], class_weights=[1.0, 2.0, 3.0],
                    ignore_index=255, smooth=0.5, log_loss=True),
        kl.JaccardLoss(ML, from_logits=False, eps=1e-5),
        kl.TverskyLoss(B, alpha=0.3, beta=0.7, gamma=1.5),
        kl.FocalLoss(MC, alpha=0.25, gamma=3.0, ignore_index=255,
                     reduction="sum", normalized=True, reduced_threshold=0.4,
                     class_weights=[1.0, 2.0, 3.0]),
        kl.LovaszLoss(ML, per_image=True, ignore_index=255),
        kl.SoftBCEWithLogitsLoss(weight=[1.0, 2.0, 3.0], pos_weight=2.0,
                                 reduction="sum", smooth_factor=0.1,
                                 ignore_index=255),
        kl.SoftCrossEntropyLoss(reduction="sum", smooth_factor=0.2,
                                ignore_index=255, dim=-1),
        kl.MCCLoss(eps=1e-4, from_logits=True),
    ]


@pytest.mark.parametrize("loss", _all_losses(), ids=lambda x: type(x).__name__)
def test_serialization_round_trip(loss):
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"] == f"keras_seg>{type(loss).__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(loss)
    assert restored.get_config() == config
    mode = getattr(loss, "mode", ML)
    if isinstance(loss, kl.SoftCrossEntropyLoss):
        mode = MC
    if isinstance(loss, kl.MCCLoss):
        mode = B
    ignore = 255 if getattr(loss, "ignore_index", None) == 255 else None
    y_pred, y_true = make_data(mode, seed=2, ignore=ignore)
    a = to_numpy(loss(y_true, y_pred))
    b = to_numpy(restored(y_true, y_pred))
    np.testing.assert_array_equal(a, b)


def test_sample_weight_semantics():
    y_pred, y_true = make_data(MC, seed=6)
    loss = kl.DiceLoss(MC)
    ref = smp.losses.DiceLoss(MC)(
        torch.tensor(nhwc_to_nchw(y_pred)), smp_target(MC, y_true)
    ).numpy()
    plain = to_numpy(loss(y_true, y_pred))
    assert_close(plain, ref)
    # sample_weight=None returns SMP's scalar unchanged (no reduction).
    raw = to_numpy(
        loss.call(keras.ops.convert_to_tensor(y_true, "float32"),
                  keras.ops.convert_to_tensor(y_pred))
    )
    assert float(plain) == float(raw)
    sw = np.array([1.0, 3.0], dtype="float32")
    weighted = to_numpy(loss(y_true, y_pred, sample_weight=sw))
    assert_close(weighted, ref * sw.mean())


def test_focal_binary_reduction_none_shape():
    y_pred, y_true = make_data(B, seed=1, ignore=255)
    out = kl.FocalLoss(B, reduction="none", ignore_index=255)(y_true, y_pred)
    out = to_numpy(out)
    assert out.shape == (y_true.size,)
    kept = y_true.reshape(-1) != 255
    ref = smp.losses.FocalLoss(B, reduction="none", ignore_index=255)(
        torch.tensor(nhwc_to_nchw(y_pred)), torch.tensor(y_true).float()
    ).numpy()
    assert_close(out[kept], ref)
    assert np.all(out[~kept] == 0)


COMPILED_CASES = [
    # Options that change the traced graph, run under jax.jit / tf.function.
    _case("dice", B, {"ignore_index": 255, "log_loss": True}, ignore=255),
    _case("dice", MC, {"ignore_index": 255, "classes": [0, 2],
                       "class_weights": [1.0, 2.0, 3.0]}, ignore=255),
    _case("jaccard", ML, {"ignore_index": 255, "smooth": 1.0}, ignore=255),
    _case("tversky", MC, {"alpha": 0.3, "beta": 0.7, "gamma": 0.75}),
    _case("focal", B, {"ignore_index": 255, "normalized": True}, ignore=255),
    _case("focal", MC, {"ignore_index": 255, "reduced_threshold": 0.5,
                        "reduction": "batchwise_mean"}, ignore=255),
    _case("focal", ML, {"alpha": 0.25, "class_weights": [1.0, 2.0, 3.0],
                        "from_logits": False}, probs=True),
    _case("lovasz", B, {"ignore_index": 255, "per_image": True}, ignore=255),
    _case("lovasz", MC, {"ignore_index": 255}, ignore=255),
    _case("lovasz", ML, {"ignore_index": 255}, ignore=255),
    _case("bce", ML, {"smooth_factor": 0.1, "pos_weight": [1.0, 2.0, 3.0]},
          ignore=-100),
    _case("ce", MC, {"smooth_factor": 0.1, "reduction": "none"}, ignore=-100),
    _case("mcc", B, {}, probs=True),
]


@pytest.mark.skipif(BACKEND == "torch", reason="Keras runs torch eagerly")
@pytest.mark.parametrize("loss,mode,kw,opts", COMPILED_CASES)
def test_parity_with_smp_compiled(loss, mode, kw, opts):
    """Same parity check, with the loss and its gradient traced and compiled
    (jax.jit / tf.function): no Python-side data-dependent logic."""
    run_parity(loss, mode, kw, {**opts, "compiled": True})


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [kl.DiceLoss, kl.JaccardLoss, kl.TverskyLoss,
                                 kl.FocalLoss, kl.LovaszLoss])
def test_invalid_mode(cls):
    with pytest.raises(ValueError, match=r"`mode`.*'multi-class'.*binary"):
        cls("multi-class")


@pytest.mark.parametrize("cls", [kl.DiceLoss, kl.JaccardLoss, kl.TverskyLoss])
def test_binary_rejects_classes_and_class_weights(cls):
    with pytest.raises(ValueError, match=r"`classes`.*binary"):
        cls(B, classes=[0])
    with pytest.raises(ValueError, match=r"`class_weights`.*binary"):
        cls(B, class_weights=[1.0])


def test_focal_binary_rejects_class_weights():
    with pytest.raises(ValueError, match=r"`class_weights`.*binary"):
        kl.FocalLoss(B, class_weights=[1.0])


@pytest.mark.parametrize("cls,kw", [
    (kl.FocalLoss, {"mode": B}),
    (kl.SoftBCEWithLogitsLoss, {}),
    (kl.SoftCrossEntropyLoss, {}),
])
def test_invalid_reduction(cls, kw):
    with pytest.raises(ValueError, match=r"`reduction`.*'avg'.*mean"):
        cls(reduction="avg", **kw)


def test_invalid_data_format():
    with pytest.raises(ValueError, match=r"`data_format`.*'nchw'"):
        kl.DiceLoss(B, data_format="nchw")


def test_class_weights_length_mismatch():
    y_pred, y_true = make_data(MC)
    with pytest.raises(ValueError, match=r"`class_weights` has 2 entries"):
        kl.DiceLoss(MC, class_weights=[1.0, 2.0])(y_true, y_pred)
    with pytest.raises(ValueError, match=r"`class_weights` has 2 entries"):
        kl.FocalLoss(ML, class_weights=[1.0, 2.0])(
            make_data(ML)[1], make_data(ML)[0]
        )


def test_classes_out_of_range():
    y_pred, y_true = make_data(MC)
    with pytest.raises(ValueError, match=r"`classes` contains \[5\]"):
        kl.DiceLoss(MC, classes=[0, 5])(y_true, y_pred)


def test_shape_errors():
    y_pred, y_true = make_data(MC)
    with pytest.raises(ValueError, match="single channel"):
        kl.DiceLoss(B)(y_true, y_pred)  # 3-channel prediction in binary mode
    with pytest.raises(ValueError, match="multiclass"):
        kl.DiceLoss(MC)(np.zeros((2, 8, 8, 3)), y_pred)
    with pytest.raises(ValueError, match="multilabel"):
        kl.DiceLoss(ML)(y_true, y_pred)


# SMP itself raises for out-of-range labels in these losses; FocalLoss and
# LovaszLoss return a number in SMP, keras-seg raises there too.
SMP_RAISES = {"dice", "jaccard", "tversky", "ce"}
LABEL_LOSSES = ["dice", "jaccard", "tversky", "focal", "lovasz", "ce"]


def _label_loss(loss, mode, **kw):
    k_cls, s_cls = CLASSES[loss]
    if loss in ("ce", "bce"):
        kw.setdefault("ignore_index", None)
        if loss == "ce":
            kw["smooth_factor"] = 0.0
    elif loss != "mcc":
        kw["mode"] = mode
    return k_cls(**kw), s_cls(**kw)


@pytest.mark.parametrize("bad", [7, -1])
@pytest.mark.parametrize("loss", LABEL_LOSSES)
def test_multiclass_labels_out_of_range_raise(loss, bad):
    y_pred, y_true = make_data(MC)
    y_true[0, 0, :2] = bad
    k_loss, smp_loss = _label_loss(loss, MC)
    with pytest.raises(ValueError, match=rf"`y_true` has values \[{bad}\] outside the valid range \[0, 3\)"):
        k_loss(y_true, y_pred)
    with pytest.raises(kl.LabelRangeError):  # also a RuntimeError, like SMP's
        k_loss(y_true, y_pred)
    if loss in SMP_RAISES:
        with pytest.raises(RuntimeError):
            smp_loss(torch.tensor(nhwc_to_nchw(y_pred)), torch.tensor(y_true))


@pytest.mark.parametrize("loss", LABEL_LOSSES)
def test_multiclass_ignore_index_is_not_out_of_range(loss):
    y_pred, y_true = make_data(MC, ignore=255, seed=3)
    k_loss, smp_loss = _label_loss(loss, MC, ignore_index=255)
    expected = smp_loss(torch.tensor(nhwc_to_nchw(y_pred)), torch.tensor(y_true))
    assert_close(to_numpy(k_loss(y_true, y_pred)), to_numpy(expected), "value")


BINARY_LOSSES = ["dice", "jaccard", "tversky", "focal", "lovasz", "bce", "mcc"]


@pytest.mark.parametrize("mode", [B, ML])
@pytest.mark.parametrize("loss", BINARY_LOSSES)
def test_binary_targets_outside_0_1_raise(loss, mode):
    if loss == "mcc" and mode == ML:
        pytest.skip("MCCLoss is binary only")
    y_pred, y_true = make_data(mode, ignore=255, seed=4)
    if loss in ("bce", "mcc") and mode == B:
        y_true = y_true[..., None]
    k_loss, _ = _label_loss(loss, mode)
    with pytest.raises(kl.LabelRangeError, match=r"values \[255\] outside the valid range \[0, 1\]"):
        k_loss(y_true, y_pred)
    if loss != "mcc":  # 255 is fine once it is the ignore_index
        k_loss, _ = _label_loss(loss, mode, ignore_index=255)
        assert np.isfinite(to_numpy(k_loss(y_true, y_pred)))


@pytest.mark.skipif(BACKEND == "torch", reason="torch runs losses eagerly")
def test_out_of_range_labels_under_jit_do_not_raise():
    """Under jit a value-dependent check cannot raise (documented): an
    out-of-range label matches no class, like SMP's focal loss treats it."""
    y_pred, y_true = make_data(MC)
    y_true[0, 0, :2] = 7
    for loss in ("ce", "dice", "focal"):
        k_loss, _ = _label_loss(loss, MC)
        value, grad = keras_value_and_grad(lambda p: k_loss(y_true, p), y_pred,
                                           compiled=True)
        assert np.isfinite(value) and np.all(np.isfinite(grad))


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


FIT_CASES = [
    # (head name, loss, mode, activation)
    ("dice", kl.DiceLoss(MC), MC, None),
    ("jaccard", kl.JaccardLoss(ML), ML, None),
    ("tversky", kl.TverskyLoss(B, alpha=0.7, beta=0.3), B, None),
    ("focal", kl.FocalLoss(MC, ignore_index=255), MC, None),
    ("lovasz_mc", kl.LovaszLoss(MC, ignore_index=255), MC, None),
    ("lovasz_bin", kl.LovaszLoss(B, per_image=True), B, None),
    ("bce", kl.SoftBCEWithLogitsLoss(smooth_factor=0.1), ML, None),
    ("ce", kl.SoftCrossEntropyLoss(smooth_factor=0.1, ignore_index=255), MC,
     None),
    ("mcc", kl.MCCLoss(), B, "sigmoid"),
]


# XLA on TensorFlow works too but compiles for ~20 s on 2 CPU cores.
JIT = BACKEND == "jax"


def test_fit_lowers_every_loss():
    """One model with an independent tiny conv head per loss (one compiled
    train step for all of them); every head's loss must go down."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    labels = np.argmax(x, axis=-1)  # learnable targets: functions of x
    targets = {
        MC: np.where(rng.random(labels.shape) < 0.1, 255, labels),
        B: (x[..., 0] > 0).astype("int64"),
        ML: (x > 0).astype("int64"),
    }
    inputs = keras.Input((8, 8, 3))
    outputs, losses, ys = {}, {}, {}
    for name, loss, mode, activation in FIT_CASES:
        h = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                name=f"{name}_conv")(inputs)
        outputs[name] = keras.layers.Conv2D(
            1 if mode == B else 3, 1, activation=activation, name=name
        )(h)
        losses[name] = loss
        y = targets[mode]
        if mode == MC and getattr(loss, "ignore_index", None) != 255:
            y = labels
        ys[name] = y
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss=losses,
        jit_compile=JIT,
    )
    history = model.fit(x, ys, batch_size=4, epochs=8, verbose=0,
                        shuffle=False).history
    for name, *_ in FIT_CASES:
        values = history[f"{name}_loss"]
        assert np.all(np.isfinite(values)), (name, values)
        assert values[-1] < values[0], (name, values)
