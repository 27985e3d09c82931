"""keras_seg.training: compile_for, losses/metrics choice, mixed precision, freezing,
checkpoints and resume, evaluation and prediction helpers."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg import training
from keras_seg.data import SegmentationDataLoader, SyntheticSegmentation

BACKEND = keras.backend.backend()
FAST_FORMAT = "channels_first" if BACKEND == "torch" else "channels_last"
TINY = dict(encoder_name="resnet18", encoder_depth=2, encoder_weights=None, decoder_channels=(16, 8))
# XLA compilation costs more than these one- or two-step fits on TensorFlow; JAX needs jit.
JIT = dict(jit_compile=False) if BACKEND == "tensorflow" else {}


def tiny(classes=1, data_format=FAST_FORMAT, **kwargs):
    return keras_seg.Unet(classes=classes, data_format=data_format, **{**TINY, **kwargs})


def loader(mode="binary", n=4, size=32, batch=2, data_format=FAST_FORMAT, **kwargs):
    return SegmentationDataLoader(SyntheticSegmentation(n, size, mode=mode), batch, data_format=data_format, **kwargs)


def as_numpy(x):
    return keras.ops.convert_to_numpy(x)


# -- compile_for ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,classes", [("multiclass", 4), ("multilabel", 3)])  # binary: test_fit_checkpoints_and_resume
def test_compile_for_trains_each_mode(mode, classes):
    model = tiny(classes)
    training.compile_for(model, mode, metrics=["iou", "f1"], **JIT)
    assert isinstance(model.loss, training.SumOfLosses)
    history = model.fit(loader(mode), epochs=1, verbose=0).history
    assert set(history) == {"loss", "iou", "f1"}
    assert np.isfinite(history["loss"][0]) and 0 <= history["iou"][0] <= 1


def test_compile_for_defaults_and_errors():
    model = tiny(1)
    training.compile_for(model)  # binary from classes=1, all five metrics
    assert [m.name for m in model._compile_metrics._user_metrics] == list(training.METRIC_NAMES)
    assert training.infer_mode(tiny(3)) == "multiclass"
    with pytest.raises(ValueError, match="classes=1"):
        training.compile_for(tiny(3), "binary")
    with pytest.raises(ValueError, match="classes >= 2"):
        training.compile_for(model, "multiclass")
    with pytest.raises(ValueError, match="mode"):
        training.compile_for(model, "semantic")
    with pytest.raises(ValueError, match="Unknown metric names"):
        training.default_metrics("binary", 1, names=["miou"])
    probs = tiny(1, activation="sigmoid")
    assert training.outputs_logits(probs) is False and training.outputs_logits(model) is True
    training.compile_for(probs)
    assert [l.from_logits for l in probs.loss.losses] == [False]
    with pytest.raises(ValueError, match="activation='tanh'"):
        training.compile_for(tiny(1, activation="tanh"))


def test_sum_of_losses_value_and_serialization():
    from keras_seg.losses import DiceLoss, SoftBCEWithLogitsLoss

    rng = np.random.default_rng(0)
    y = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    p = rng.normal(size=(2, 8, 8, 1)).astype("float32")
    dice, bce = DiceLoss("binary", data_format="channels_last"), SoftBCEWithLogitsLoss(data_format="channels_last")
    total = training.SumOfLosses([dice, bce], weights=[1.0, 0.5])
    expected = float(as_numpy(dice(y, p))) + 0.5 * float(as_numpy(bce(y, p)))
    np.testing.assert_allclose(float(as_numpy(total(y, p))), expected, rtol=1e-5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(total))
    np.testing.assert_allclose(float(as_numpy(again(y, p))), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="weights"):
        training.SumOfLosses([dice], weights=[1, 2])


# -- mixed precision --------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_outputs_float32(policy):
    model = training.build_model("unet", dtype_policy_name=policy, classes=4, data_format=FAST_FORMAT, **TINY)
    assert keras.config.dtype_policy().name == "float32"  # restored after building
    assert model.get_layer("segmentation_head-0").compute_dtype == "float32"
    assert model.encoder.layers[2].compute_dtype == policy.split("_")[1]
    x = np.random.default_rng(0).random((2, 3, 32, 32) if FAST_FORMAT == "channels_first" else (2, 32, 32, 3), "float32")
    assert keras.backend.standardize_dtype(model(x).dtype) == "float32"
    if policy == "mixed_float16":  # one training run (the loss-scaled one) is enough
        training.compile_for(model, "multiclass", metrics=["iou"], **JIT)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        history = model.fit(loader("multiclass", n=2), epochs=1, verbose=0).history
        assert np.isfinite(history["loss"][0])
        assert model.predict(x, verbose=0).dtype == np.float32
    with pytest.raises(ValueError, match="dtype policy"):
        with training.dtype_policy("float64"):
            pass


# -- freezing -------------------------------------------------------------------------------


def test_freeze_encoder_keeps_encoder_weights():
    model = tiny(1)
    training.freeze_encoder_and_compile(model, mode="binary", metrics=[], optimizer="adam", learning_rate=0.05, **JIT)
    encoder_before = [as_numpy(w).copy() for w in model.encoder.weights]
    decoder = model.get_layer("segmentation_head-0")
    head_before = as_numpy(decoder.kernel).copy()
    model.fit(loader(n=2), epochs=1, verbose=0)
    for before, after in zip(encoder_before, model.encoder.weights):  # incl. BatchNorm statistics
        np.testing.assert_array_equal(before, as_numpy(after))
    assert not np.allclose(head_before, as_numpy(decoder.kernel))
    frozen_count = len(model.trainable_weights)
    model.unfreeze_encoder()
    assert len(model.trainable_weights) > frozen_count and model.encoder.trainable


# -- checkpoints and resume -------------------------------------------------------------------


def test_fit_checkpoints_and_resume(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    model = training.compile_for(tiny(1), "binary", metrics=["iou"], **JIT)
    train, val = loader(n=4), loader(n=2)
    model, history = training.fit(model, train, 1, validation_data=val, checkpoint_dir=ckpt, keep=1, verbose=0)
    assert [e for e, _ in training.list_checkpoints(ckpt)] == [1]
    assert len(history["loss"]) == 1 and "val_iou" in history
    epoch, path, saved_history = training.last_checkpoint(ckpt)
    assert epoch == 1 and saved_history == history

    fresh = training.compile_for(tiny(1), "binary", metrics=["iou"], **JIT)
    resumed, history = training.fit(fresh, train, 2, validation_data=val, checkpoint_dir=ckpt, resume=True, keep=1, verbose=0)
    assert resumed is not fresh  # the checkpoint's model (weights + optimizer state) took over
    assert int(as_numpy(resumed.optimizer.iterations)) == 4  # 2 steps per epoch, 2 epochs
    assert len(history["loss"]) == 2 and history["loss"][0] == saved_history["loss"][0]
    assert [e for e, _ in training.list_checkpoints(ckpt)] == [2]  # keep=1 pruned epoch 1
    with open(os.path.join(ckpt, training.STATE_FILE)) as f:
        assert json.load(f)["epoch"] == 2
    # resuming a finished run trains no more
    done, history = training.fit(fresh, train, 2, checkpoint_dir=ckpt, resume=True, verbose=0)
    assert len(history["loss"]) == 2
    assert [f for f in os.listdir(ckpt) if ".tmp" in f] == []
    with pytest.raises(ValueError, match="checkpoint_dir"):
        training.fit(fresh, train, 1, resume=True)


class RecordingLoader(SegmentationDataLoader):
    """Records ``{fit epoch: {batch index: checksum}}`` of the batches it gives out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = {}
        self.fit_epoch = None  # None: batches read before training (Keras peeks at the data's shapes)

    def __getitem__(self, idx):
        images, masks = super().__getitem__(idx)
        self.seen.setdefault(self.fit_epoch, {})[idx] = float(images.sum()) + float(masks.sum())
        return images, masks


class FitEpoch(keras.callbacks.Callback):
    def __init__(self, loader):
        super().__init__()
        self.loader = loader

    def on_epoch_begin(self, epoch, logs=None):
        self.loader.fit_epoch = epoch


def _recording_fit(epochs, checkpoint_dir, resume=False):
    loader = _recording_loader()
    _, history = training.fit(_fresh_compiled(), loader, epochs, checkpoint_dir=checkpoint_dir, resume=resume,
                              callbacks=[FitEpoch(loader)], verbose=0)
    return loader.seen, history


def _recording_loader():
    from keras_seg.data import augment

    ds = SyntheticSegmentation(8, 32, seed=5)
    return RecordingLoader(ds, 4, shuffle=True, seed=1, augmentation=augment.Compose([augment.HorizontalFlip()]),
                           data_format=FAST_FORMAT)


def _fresh_compiled():
    keras.utils.set_random_seed(0)
    return training.compile_for(tiny(1), "binary", metrics=[], **JIT)


def test_resumed_fit_sees_the_batches_of_an_uninterrupted_one(tmp_path):
    full, full_history = _recording_fit(2, str(tmp_path / "a"))
    first, _ = _recording_fit(1, str(tmp_path / "b"))
    resumed, history = _recording_fit(2, str(tmp_path / "b"), resume=True)  # a fresh loader, as in a new process
    assert sorted(resumed, key=str) == [1, None] and len(full[1]) == 2
    assert resumed[1] == full[1] and first[0] == full[0]
    assert set(full[1].values()) != set(full[0].values())  # epochs differ: shuffled and augmented anew
    # same data, same start: the losses agree (a reloaded TensorFlow graph rounds a little differently,
    # which Adam's first steps amplify to ~1e-3)
    np.testing.assert_allclose(history["loss"], full_history["loss"], rtol=1e-2)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        training.load_checkpoint(tmp_path / "missing.keras")
    (tmp_path / "cut.keras").write_bytes(b"PK\x03\x04 the first bytes of a zip")
    with pytest.raises(ValueError, match="cut.keras is not a readable .keras file: not a zip archive"):
        training.load_checkpoint(tmp_path / "cut.keras")


def test_checkpoint_failure_leaves_no_file(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    model = tiny(1)

    def broken_save(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    callback = training.EpochCheckpoint(str(ckpt))
    callback.set_model(model)
    with pytest.raises(OSError, match="disk full"):
        callback.on_epoch_end(0, {"loss": 1.0})
    assert os.listdir(ckpt) == []
    assert training.last_checkpoint(str(ckpt)) is None


def test_save_model_is_uncompiled_and_portable(tmp_path):
    model = training.compile_for(tiny(1), "binary", metrics=["iou"])
    path = training.save_model(model, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    assert not config.get("compile_config")  # no backend-specific optimizer module inside
    loaded = training.load_checkpoint(path, compile=False)
    x = np.random.default_rng(0).random((1, 3, 32, 32) if FAST_FORMAT == "channels_first" else (1, 32, 32, 3), "float32")
    np.testing.assert_allclose(as_numpy(loaded(x)), as_numpy(model(x)), atol=1e-5)
    with pytest.raises(ValueError, match=".keras"):
        training.save_model(model, tmp_path / "m.h5")


# -- evaluation and prediction ----------------------------------------------------------------


def test_confusion_counts_and_scores():
    pred = np.array([[[0, 1], [2, 2]]])
    true = np.array([[[0, 1], [1, 255]]])
    counts = training.confusion_counts(pred, true, "multiclass", 3, ignore_index=255)
    np.testing.assert_array_equal(counts, [[1, 0, 0, 2], [1, 0, 1, 1], [0, 1, 0, 2]])
    scores = training.scores_from_counts(counts, ["a", "b", "c"], mode="multiclass")
    assert scores["per_class"]["b"]["iou"] == 0.5 and scores["per_class"]["c"]["recall"] == 1.0  # 0/0 -> 1
    assert scores["pixel_accuracy"] == pytest.approx(2 / 3)
    binary = training.confusion_counts(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]), "binary", 1)
    np.testing.assert_array_equal(binary, [[1, 1, 1, 1]])
    table = training.format_metrics_table(scores)
    assert "iou" in table and "precision" in table and "mean" in table and "pixel accuracy" in table
    with pytest.raises(ValueError, match="shapes differ"):
        training.confusion_counts(np.zeros((1, 2)), np.zeros((1, 3)), "binary", 1)


@pytest.mark.parametrize("mode,classes", [("binary", 1), ("multiclass", 4), ("multilabel", 3)])
def test_evaluate_masks_matches_keras_seg_metrics(mode, classes):
    from keras_seg import metrics

    model = tiny(classes)
    dl = loader(mode, n=4, batch=2)
    scores = training.evaluate_masks(model, dl)
    xs, ys = zip(*(dl[i] for i in range(len(dl))))
    out = np.concatenate([training.predict_logits(model, x) for x in xs])
    y = np.concatenate(ys).astype("int32")
    reduction = "micro" if mode == "binary" else "macro"
    if mode == "multiclass":
        pred = out.argmax(axis=1 if FAST_FORMAT == "channels_first" else -1)
        stats = metrics.get_stats(pred, y, mode, num_classes=classes, data_format=FAST_FORMAT)
    else:
        probs = 1 / (1 + np.exp(-out))
        stats = metrics.get_stats(probs, y, mode, threshold=0.5, data_format=FAST_FORMAT)
    for name, fn in (("iou", metrics.iou_score), ("f1", metrics.f1_score), ("precision", metrics.precision), ("recall", metrics.recall)):
        expected = float(as_numpy(fn(*stats, reduction=reduction)))
        assert scores[name] == pytest.approx(expected, abs=1e-6), name


def test_predict_logits_pads_to_stride_and_to_masks():
    class Stub:  # an architecture that needs H, W divisible by 8
        requires_divisible_input_shape = True
        data_format = "channels_last"
        encoder = type("E", (), {"output_stride": 8})()
        config = {"activation": None, "classes": 1}

        def predict(self, x, batch_size=None, verbose=0):
            assert x.shape[1] % 8 == 0 and x.shape[2] % 8 == 0
            return x[..., :1] - 0.5

    x = np.random.default_rng(0).random((2, 13, 10, 3), "float32")
    out = training.predict_logits(Stub(), x)
    assert out.shape == (2, 13, 10, 1)
    np.testing.assert_allclose(out, x[..., :1] - 0.5)
    masks = training.to_masks(out, "binary")
    np.testing.assert_array_equal(masks, (x[..., 0] >= 0.5).astype(np.int32))
    assert training.to_masks(np.ones((1, 4, 2, 2)), "multilabel", data_format="channels_first").shape == (1, 2, 2, 4)
    assert training.to_masks(np.zeros((1, 2, 2, 1)) + 0.7, "binary", from_logits=False).all()


def test_data_parallel_on_torch_raises():
    if BACKEND != "torch":
        pytest.skip("torch backend only (JAX/TF: tests/test_distributed.py)")
    with pytest.raises(NotImplementedError, match="JAX backend"):
        with training.data_parallel():
            pass
