"""Ignored pixels (ignore_index) are left out of every loss and metric that
keras_seg.training.compile_for and the keras-seg CLI build, in every mode."""

import os

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from PIL import Image

from keras_seg import cli, training
from keras_seg.data import FolderDataset, SegmentationDataLoader
from tests._loss_utils import assert_close, nhwc_to_nchw, to_numpy

IGNORE = 255
CLASSES = {"binary": 1, "multiclass": 3, "multilabel": 3}


def batch(mode, seed=0):
    """Channels-last logits and targets with ~30% of the pixels (elements) ignored."""
    rng = np.random.default_rng(seed)
    c = CLASSES[mode]
    logits = rng.normal(0, 2, (2, 8, 8, c)).astype("float32")
    if mode == "multiclass":
        y = rng.integers(0, c, (2, 8, 8))
    else:
        y = rng.integers(0, 2, (2, 8, 8, c))
    y = np.where(rng.random(y.shape) < 0.3, IGNORE, y)
    return logits, y


def at_ignored_changed(mode, logits, y):
    """``logits`` with other values where the target is ignored."""
    ignored = y == IGNORE
    if mode == "multiclass":
        ignored = np.broadcast_to(ignored[..., None], logits.shape)
    return np.where(ignored, -logits + 3.0, logits).astype("float32")


def smp_default_loss(mode, logits, y):
    """SMP's Dice + (soft) cross-entropy with ignore_index, on NCHW tensors."""
    pred = torch.tensor(nhwc_to_nchw(logits))
    if mode == "multiclass":
        target = torch.tensor(y)
        ce = smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0, ignore_index=IGNORE)
    else:
        target = torch.tensor(nhwc_to_nchw(y)).float()
        ce = smp.losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE)
    dice = smp.losses.DiceLoss(mode, ignore_index=IGNORE)
    return float(dice(pred, target) + ce(pred, target))


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_default_loss_leaves_ignored_pixels_out(mode):
    logits, y = batch(mode)
    loss = training.default_loss(mode, data_format="channels_last", ignore_index=IGNORE)
    value = float(to_numpy(loss(y, logits)))
    assert_close(value, smp_default_loss(mode, logits, y), "value")
    assert value >= 0
    assert_close(float(to_numpy(loss(y, at_ignored_changed(mode, logits, y)))), value, "value")


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_default_metrics_leave_ignored_pixels_out(mode):
    logits, y = batch(mode, seed=1)
    changed = at_ignored_changed(mode, logits, y)
    scores = []
    for pred in (logits, changed):
        metrics = training.default_metrics(mode, CLASSES[mode], data_format="channels_last", ignore_index=IGNORE)
        for m in metrics:
            m.update_state(y, pred)
        scores.append([float(to_numpy(m.result())) for m in metrics])
    np.testing.assert_allclose(scores[0], scores[1], rtol=0, atol=1e-6)


def tiny_model(classes):
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Conv2D(classes, 1)(inputs))


def assert_compiled_with_ignore_index(model):
    assert [sub.ignore_index for sub in model.loss.losses] == [IGNORE, IGNORE]
    metrics = model._compile_metrics._user_metrics  # what compile got (built on the first step)
    assert metrics and all(m.ignore_index == IGNORE for m in metrics)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_compile_for_passes_ignore_index(mode):
    model = training.compile_for(tiny_model(CLASSES[mode]), mode, ignore_index=IGNORE)
    assert_compiled_with_ignore_index(model)
    logits, y = batch(mode, seed=2)
    assert_close(float(to_numpy(model.loss(y, logits))), smp_default_loss(mode, logits, y), "value")


def test_compile_for_rejects_ignore_index_that_is_a_class():
    with pytest.raises(ValueError, match="`ignore_index` should be outside the class values range 0..2"):
        training.compile_for(tiny_model(3), "multiclass", ignore_index=2)


def write_binary_folder(root, n=2, size=32):
    """0/1 masks with an unlabeled (255) border."""
    rng = np.random.default_rng(0)
    os.makedirs(root / "images")
    os.makedirs(root / "masks")
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        mask = (rng.random((size, size)) > 0.5).astype(np.uint8)
        mask[:4] = IGNORE
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


class _Stop(Exception):
    pass


def test_cli_train_compiles_with_ignore_index(tmp_path, monkeypatch):
    """keras-seg train --ignore-index 255 in binary mode: 255 never reaches the loss as a target."""
    compiled = {}

    def fake_fit(model, *args, **kwargs):
        compiled["model"] = model
        raise _Stop

    monkeypatch.setattr(training, "fit", fake_fit)
    data = write_binary_folder(tmp_path / "data")
    argv = ["train", "--data", data, "--mode", "binary", "--ignore-index", IGNORE, "--output", tmp_path / "run",
            "--image-size", 32, "--encoder-depth", 2, "--decoder-channels", "16,8", "--batch-size", 1,
            "--val-fraction", 0.5, "--verbose", 0]
    with pytest.raises(_Stop):
        cli.main([str(a) for a in argv])
    assert_compiled_with_ignore_index(compiled["model"])


def test_folder_multilabel_ignored_pixels_stay_ignored(tmp_path):
    """A multilabel target keeps ignore_index in every channel (not all-negative)."""
    data = write_binary_folder(tmp_path / "data", n=1)
    ds = FolderDataset(data, mode="multilabel", classes=2, ignore_index=IGNORE)
    _, target = SegmentationDataLoader(ds, 1, data_format="channels_last")[0]
    assert target.shape == (1, 32, 32, 2)
    assert np.all(target[0, :4] == IGNORE) and set(np.unique(target[0, 4:])) <= {0, 1}
