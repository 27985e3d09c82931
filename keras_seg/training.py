"""Training helpers: compile with keras_seg losses and metrics, mixed precision,
data parallelism, per-epoch checkpoints with resume, evaluation and prediction.

Typical use::

    model = keras_seg.Unet("resnet18", encoder_weights=None, classes=1)
    compile_for(model, "binary")               # Dice + BCE, IoU/F1/... metrics
    train = SegmentationDataLoader(SyntheticSegmentation(512), batch_size=16,
                                   data_format=model.data_format, shuffle=True)
    fit(model, train, epochs=5, checkpoint_dir="runs/a")   # resumable
    print(evaluate_masks(model, val_loader)["iou"])
"""

import contextlib
import glob
import json
import os
import re
import zipfile

import keras
import numpy as np

from keras_seg import optimizers
from keras_seg.data.io import atomic_path, remove_stale_temporaries, write_text
from keras_seg.data.synthetic import check_mode

LOGIT_ACTIVATIONS = (None, "identity", "linear")
PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax", "softmax2d")


# -- modes and outputs -------------------------------------------------------------------


def model_classes(model):
    config = getattr(model, "config", None)
    if isinstance(config, dict) and "classes" in config:
        return int(config["classes"])
    out = model.outputs[0]
    axis = 1 if getattr(model, "data_format", "channels_last") == "channels_first" else -1
    return int(out.shape[axis])


def infer_mode(model):
    """"binary" for one output channel, else "multiclass" (pass "multilabel" explicitly)."""
    return "binary" if model_classes(model) == 1 else "multiclass"


def outputs_logits(model):
    """Whether the model's mask output is logits (no activation) rather than probabilities."""
    activation = (getattr(model, "config", None) or {}).get("activation")
    if activation in LOGIT_ACTIVATIONS:
        return True
    if activation in PROBABILITY_ACTIVATIONS:
        return False
    raise ValueError(
        f"Cannot train a model with activation={activation!r} on masks: use None (logits, recommended), "
        f"or one of {PROBABILITY_ACTIVATIONS}."
    )


def _data_format(model):
    return getattr(model, "data_format", None) or keras.config.image_data_format()


# -- losses ------------------------------------------------------------------------------


def _raw_loss_value(loss, y_true, y_pred):
    """``loss.call`` averaged to a scalar, without Keras's reduction (or its replica scaling)."""
    dtype = getattr(loss, "dtype", None) or "float32"
    value = loss.call(keras.ops.convert_to_tensor(y_true, dtype=dtype), keras.ops.convert_to_tensor(y_pred, dtype=dtype))
    return value if tuple(value.shape) == () else keras.ops.mean(value)


@keras.saving.register_keras_serializable(package="keras_seg")
class SumOfLosses(keras.losses.Loss):
    """``sum_i weights[i] * losses[i](y_true, y_pred)`` (e.g. Dice + BCE), serializable.

    Also correct under ``tf.distribute`` strategies, which a scalar-valued loss is not:
    Keras divides a loss by the number of replicas only when it reduces a per-sample
    vector, so the SMP-style losses (whose ``call`` returns the final scalar) come out
    (and train) ``num_replicas`` times too large under MirroredStrategy. ``call`` here
    returns the total once per sample, so Keras's reduction averages it back to the
    total and applies the replica scaling. ``sample_weight`` multiplies the total by
    its mean.
    """

    def __init__(self, losses, weights=None, name="sum_of_losses", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.losses = [keras.losses.get(l) if isinstance(l, (str, dict)) else l for l in losses]
        if not self.losses:
            raise ValueError("SumOfLosses needs at least one loss.")
        self.weights = [1.0] * len(self.losses) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.losses):
            raise ValueError(f"SumOfLosses: {len(self.weights)} weights for {len(self.losses)} losses.")

    def call(self, y_true, y_pred):
        total = 0.0
        for w, loss in zip(self.weights, self.losses):
            total = total + w * _raw_loss_value(loss, y_true, y_pred)
        batch = keras.ops.shape(y_pred)[0]
        return keras.ops.broadcast_to(keras.ops.cast(total, y_pred.dtype), (batch,))

    def get_config(self):
        config = super().get_config()
        config.update(losses=[keras.saving.serialize_keras_object(l) for l in self.losses], weights=self.weights)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["losses"] = [keras.saving.deserialize_keras_object(l) for l in config["losses"]]
        return cls(**config)


def default_loss(mode, from_logits=True, data_format=None, ignore_index=None):
    """Dice + cross-entropy for ``mode`` (Dice alone when the model outputs probabilities).

    ``ignore_index``: target value left out of both (SMP's semantics: ignored pixels add
    nothing, and cross-entropy's "mean" still divides by all pixels). Wrapped in
    ``SumOfLosses``, which keeps the value right under tf.distribute.
    """
    from keras_seg import losses

    check_mode(mode)
    dice = losses.DiceLoss(mode, from_logits=from_logits, ignore_index=ignore_index, data_format=data_format)
    if not from_logits:
        return SumOfLosses([dice], name="dice")
    ce_class = losses.SoftCrossEntropyLoss if mode == "multiclass" else losses.SoftBCEWithLogitsLoss
    ce = ce_class(ignore_index=ignore_index, data_format=data_format)
    return SumOfLosses([dice, ce], name=f"dice_{'ce' if mode == 'multiclass' else 'bce'}")


# -- metrics -----------------------------------------------------------------------------

METRIC_NAMES = ("iou", "f1", "accuracy", "precision", "recall")


def default_metrics(mode, classes, from_logits=True, threshold=0.5, data_format=None, names=METRIC_NAMES,
                    ignore_index=None):
    """Stateful ``keras_seg.metrics`` for ``model.compile``: IoU, F1, accuracy, precision, recall.

    ``names`` picks a subset (each metric costs time on every training step);
    ``ignore_index`` pixels count nowhere, in every mode.
    Reductions: binary -> "micro" (the foreground class over the whole dataset);
    multiclass / multilabel -> "macro" (per-class scores over the dataset, averaged),
    matching ``evaluate_masks``.
    """
    from keras_seg import metrics as ksm

    check_mode(mode)
    classes_of = {"iou": ksm.IoUScore, "f1": ksm.F1Score, "accuracy": ksm.Accuracy, "precision": ksm.Precision, "recall": ksm.Recall}
    unknown = [n for n in names if n not in classes_of]
    if unknown:
        raise ValueError(f"Unknown metric names {unknown}; valid names are {list(classes_of)}.")
    out = []
    for name in names:
        kwargs = dict(
            mode=mode,
            num_classes=1 if mode == "binary" else classes,
            reduction="micro" if mode == "binary" else "macro",
            from_logits=from_logits,
            data_format=data_format or keras.config.image_data_format(),
            ignore_index=ignore_index,
            name=name,
        )
        if mode != "multiclass":
            kwargs["threshold"] = threshold
        out.append(classes_of[name](**kwargs))
    return out


# -- compile -----------------------------------------------------------------------------


def compile_for(
    model,
    mode=None,
    loss=None,
    metrics=None,
    optimizer="adam",
    learning_rate=1e-3,
    threshold=0.5,
    ignore_index=None,
    **compile_kwargs,
):
    """``model.compile`` with a loss and metrics suited to ``mode``.

    mode: "binary", "multiclass" or "multilabel"; default from the model's classes.
    ignore_index: target value (e.g. 255) left out of the default loss and metrics.
    loss: a loss object (default: Dice + BCE / CE from ``keras_seg.losses``).
    metrics: a list of metric objects, or of names among ``METRIC_NAMES`` (default:
        all of IoU, F1, accuracy, precision, recall, from ``keras_seg.metrics``).
    optimizer: name or instance; ``learning_rate`` applies to a name ("adam" is torch's Adam,
        ``keras_seg.optimizers.TorchAdam``; other names are Keras's optimizers).
    Returns the model. Recompile after ``freeze_encoder`` / ``unfreeze_encoder``.
    """
    mode = check_mode(mode or infer_mode(model))
    classes = model_classes(model)
    if mode == "binary" and classes != 1:
        raise ValueError(f"mode='binary' needs a model with classes=1, this one has classes={classes}.")
    if mode == "multiclass" and classes < 2:
        raise ValueError(f"mode='multiclass' needs classes >= 2, the model has classes={classes}.")
    from_logits = outputs_logits(model)
    data_format = _data_format(model)
    if loss is None:
        loss = default_loss(mode, from_logits, data_format, ignore_index=ignore_index)
    if metrics is None:
        metrics = list(METRIC_NAMES)
    if metrics and all(isinstance(m, str) and m in METRIC_NAMES for m in metrics):
        metrics = default_metrics(mode, classes, from_logits, threshold, data_format, names=metrics,
                                  ignore_index=ignore_index)
    if isinstance(optimizer, str):
        optimizer = optimizers.get(optimizer, learning_rate)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, **compile_kwargs)
    return model


def freeze_encoder_and_compile(model, **compile_kwargs):
    """``model.freeze_encoder()`` then ``compile_for`` (freezing takes effect at compile)."""
    model.freeze_encoder()
    return compile_for(model, **compile_kwargs)


# -- mixed precision ---------------------------------------------------------------------

MIXED_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def dtype_policy(policy):
    """Set the global Keras dtype policy inside the block (models built there use it)."""
    if policy is None:
        yield
        return
    if policy not in MIXED_POLICIES:
        raise ValueError(f"dtype policy must be one of {MIXED_POLICIES}, got {policy!r}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def ensure_float32_outputs(model):
    """Make the layers that produce the model's outputs compute in float32.

    Under ``mixed_float16`` / ``mixed_bfloat16`` every layer computes in half precision,
    the segmentation head included, so masks come out as float16/bfloat16. This sets
    the dtype policy of each output-producing layer (the head's last conv / activation)
    to float32: the layer then casts its input up and returns float32 (its weights are
    float32 under a mixed policy already). Returns the names of the layers changed.
    (Symbolic ``model.outputs`` keep the half dtype; eager, ``fit``, ``predict`` and
    exports produce float32.)
    """
    changed = []
    for out in model.outputs:
        layer = out._keras_history.operation
        if keras.backend.standardize_dtype(layer.compute_dtype) != "float32":
            layer.dtype_policy = "float32"
            changed.append(layer.name)
    return changed


def build_model(arch="unet", dtype_policy_name=None, **kwargs):
    """``keras_seg.create_model`` under a dtype policy, with float32 outputs."""
    import keras_seg

    with dtype_policy(dtype_policy_name):
        model = keras_seg.create_model(arch, **kwargs)
    ensure_float32_outputs(model)
    return model


# -- data parallelism --------------------------------------------------------------------


class _Replicas:
    def __init__(self, kind, num_replicas, handle):
        self.kind, self.num_replicas, self.handle = kind, num_replicas, handle

    def __repr__(self):
        return f"<data parallel: {self.kind}, {self.num_replicas} replicas>"


@contextlib.contextmanager
def data_parallel(devices=None):
    """Synchronous data-parallel training inside the block, by backend.

    * JAX: ``keras.distribution.DataParallel`` over ``devices`` (default: all), set as
      the global distribution inside the block.
    * TensorFlow: ``tf.distribute.MirroredStrategy(devices)``; build and compile the
      model inside the block.
    * torch: Keras has no built-in data parallelism; raises ``NotImplementedError``.

    Yields an object with ``num_replicas``: keep the global batch size divisible by it
    (``SegmentationDataLoader(..., drop_remainder=True)``).
    """
    backend = keras.backend.backend()
    if backend == "jax":
        devices = devices or keras.distribution.list_devices()
        dist = keras.distribution.DataParallel(devices=devices)
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(dist)
        try:
            yield _Replicas("jax DataParallel", len(devices), dist)
        finally:
            keras.distribution.set_distribution(previous)
    elif backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            yield _Replicas("tf MirroredStrategy", strategy.num_replicas_in_sync, strategy)
    else:
        raise NotImplementedError(
            f"Data-parallel training is not built into Keras for the {backend!r} backend. Use the JAX "
            "backend (keras.distribution.DataParallel) or TensorFlow (MirroredStrategy); see docs/training.md."
        )


# -- checkpoints and resume --------------------------------------------------------------

CHECKPOINT_PATTERN = "epoch-{epoch:04d}.keras"
_CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})\.keras$")
STATE_FILE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the whole model (weights, optimizer state, compile config) after each epoch.

    Writes ``directory/epoch-NNNN.keras`` atomically (a temporary file renamed into
    place), then ``state.json`` with the epoch, the checkpoint name and the history so
    far (``history`` seeds it when resuming). Keeps the last ``keep`` checkpoints
    (all when None).
    """

    def __init__(self, directory, keep=2, history=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.keep = keep
        self.history = {k: list(v) for k, v in (history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        name = CHECKPOINT_PATTERN.format(epoch=epoch + 1)
        with atomic_path(os.path.join(self.directory, name)) as tmp:
            self.model.save(tmp)
        state = {"epoch": epoch + 1, "checkpoint": name, "history": self.history}
        write_text(os.path.join(self.directory, STATE_FILE), json.dumps(state, indent=1))
        if self.keep:
            for old in list_checkpoints(self.directory)[: -self.keep]:
                os.remove(old[1])


class LoaderEpoch(keras.callbacks.Callback):
    """``loader.set_epoch(epoch)`` at the start of each epoch of ``fit``.

    A data loader's shuffling and augmentation depend on its epoch; setting it from
    ``fit``'s epoch number (rather than counting epoch ends) makes a resumed run see
    the batches an uninterrupted run sees.
    """

    def __init__(self, loader):
        super().__init__()
        self.loader = loader

    def on_epoch_begin(self, epoch, logs=None):
        self.loader.set_epoch(epoch)


def list_checkpoints(directory):
    """``[(epoch, path), ...]`` of the checkpoints in ``directory``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(os.fspath(directory)), "epoch-*.keras")):
        m = _CHECKPOINT_RE.match(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def last_checkpoint(directory):
    """``(epoch, path, history)`` of the newest checkpoint, or None.

    Reads ``state.json`` when it names an existing file; otherwise the highest-numbered
    ``epoch-NNNN.keras`` (history then unknown: ``{}``).
    """
    state_path = os.path.join(directory, STATE_FILE)
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        path = os.path.join(directory, state["checkpoint"])
        if os.path.exists(path):
            return int(state["epoch"]), path, state.get("history", {})
    found = list_checkpoints(directory)
    if not found:
        return None
    epoch, path = found[-1]
    return epoch, path, {}


def inference_copy(model):
    """An uncompiled copy of ``model`` (same architecture and weights, no optimizer).

    A compiled model's ``.keras`` file names the optimizer's backend module (e.g.
    ``keras.src.backend.torch.optimizers``); loading it on another backend imports
    that backend, and importing torch into a TensorFlow process crashes it. Save and
    export this copy to get a file that loads on every backend.
    """
    if hasattr(model, "config") and hasattr(type(model), "from_config"):
        copy = type(model).from_config(model.get_config())
    else:
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def save_model(model, path, include_optimizer=False):
    """Write ``model`` to a ``.keras`` file atomically; without the optimizer by default."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"A Keras model file must end in '.keras', got {path!r}.")
    target = model if include_optimizer or getattr(model, "optimizer", None) is None else inference_copy(model)
    with atomic_path(path) as tmp:
        target.save(tmp)
    return path


def load_checkpoint(path, compile=True):
    """``keras.saving.load_model`` with keras_seg's classes registered.

    A missing file raises ``FileNotFoundError``; a ``.keras`` file that is not a zip
    archive (truncated, or another format) a ``ValueError`` saying so.
    """
    import keras_seg  # noqa: F401  (registers the architectures)
    import keras_seg.losses  # noqa: F401

    with contextlib.suppress(ImportError):
        import keras_seg.metrics  # noqa: F401
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .keras file: not a zip archive (truncated, or another format).")
    return keras.saving.load_model(path, compile=compile)


def fit(
    model,
    train_data,
    epochs,
    validation_data=None,
    checkpoint_dir=None,
    resume=False,
    keep=2,
    callbacks=(),
    verbose="auto",
    dtype_policy_name=None,
    freeze_encoder=None,
    **fit_kwargs,
):
    """``model.fit`` with per-epoch checkpoints in ``checkpoint_dir`` and optional resume.

    With ``resume=True`` and a checkpoint in ``checkpoint_dir``, the checkpoint's model
    (weights, optimizer state, compile settings) replaces ``model`` and training
    continues at the epoch after it; it is loaded under ``dtype_policy_name`` (give the
    policy the run was trained with) and, with ``freeze_encoder=True``, its encoder is
    frozen again (a ``.keras`` file does not record that). A ``train_data`` with
    ``set_epoch`` (``SegmentationDataLoader``) is put at each epoch's number, so a resumed
    run sees the batches of an uninterrupted one; temporary files a killed run left in
    ``checkpoint_dir`` are removed. Returns ``(model, history dict)``, the history
    covering all epochs.
    """
    initial_epoch, history = 0, {}
    if resume:
        if checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir.")
        last = last_checkpoint(checkpoint_dir)
        if last is not None:
            initial_epoch, path, history = last
            with dtype_policy(dtype_policy_name):
                model = load_checkpoint(path)
            ensure_float32_outputs(model)
            if freeze_encoder:
                model.freeze_encoder()
    callbacks = list(callbacks)
    if hasattr(train_data, "set_epoch"):
        callbacks.insert(0, LoaderEpoch(train_data))
    checkpoint = None
    if checkpoint_dir is not None:
        remove_stale_temporaries(checkpoint_dir)  # what a killed run left
        checkpoint = EpochCheckpoint(checkpoint_dir, keep=keep, history=history)
        callbacks.append(checkpoint)
    if initial_epoch < epochs:
        result = model.fit(
            train_data, validation_data=validation_data, epochs=epochs, initial_epoch=initial_epoch,
            callbacks=callbacks, verbose=verbose, **fit_kwargs,
        )
        if checkpoint is None:
            history = {k: list(map(float, v)) for k, v in result.history.items()}
    if checkpoint is not None:
        history = checkpoint.history
    return model, history


# -- prediction and evaluation -----------------------------------------------------------


def _pad_to_stride(x, model, data_format):
    if not getattr(model, "requires_divisible_input_shape", False):
        return x, None
    stride = model.encoder.output_stride
    hw = (2, 3) if data_format == "channels_first" else (1, 2)
    h, w = x.shape[hw[0]], x.shape[hw[1]]
    ph, pw = -h % stride, -w % stride
    if not ph and not pw:
        return x, None
    widths = [(0, 0)] * 4
    widths[hw[0]], widths[hw[1]] = (0, ph), (0, pw)
    return np.pad(x, widths), (h, w)


def predict_logits(model, images, batch_size=8):
    """Mask output for a numpy batch in the model's data format, as float32 numpy.

    Pads H and W to the encoder's stride when the architecture needs it and crops back.
    Returns only the mask output when the model also has a classification head.
    """
    data_format = _data_format(model)
    images = np.asarray(images, dtype=np.float32)
    x, crop = _pad_to_stride(images, model, data_format)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(out, (list, tuple)):
        out = out[0]
    out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
    if crop is not None:
        h, w = crop
        out = out[:, :, :h, :w] if data_format == "channels_first" else out[:, :h, :w]
    return out


def to_masks(output, mode, from_logits=True, threshold=0.5, data_format="channels_last"):
    """Model output -> masks: class index ``(N, H, W)`` (binary, multiclass) or ``(N, H, W, K)`` 0/1."""
    output = np.asarray(output, dtype=np.float32)
    if data_format == "channels_first":
        output = np.moveaxis(output, 1, -1)
    if mode == "multiclass":
        return output.argmax(axis=-1).astype(np.int32)
    cut = float(np.log(threshold / (1 - threshold))) if from_logits else threshold
    masks = (output >= cut).astype(np.int32)
    return masks[..., 0] if mode == "binary" else masks


def targets_to_masks(targets, mode, data_format="channels_last"):
    """Loader targets -> the layout of ``to_masks`` (channels last, binary squeezed)."""
    targets = np.asarray(targets)
    if mode == "multiclass":
        return targets.astype(np.int32)
    if data_format == "channels_first":
        targets = np.moveaxis(targets, 1, -1)
    t = (targets > 0.5).astype(np.int32)
    return t[..., 0] if mode == "binary" else t


def confusion_counts(pred, true, mode, classes, ignore_index=None):
    """Per-class ``(tp, fp, fn, tn)`` summed over a batch: array ``(C, 4)`` of int64.

    binary: C = 1 (the foreground); multiclass: C = classes, ``ignore_index`` pixels
    skipped; multilabel: C = channels. Counted by ``keras_seg.metrics``.
    """
    from keras_seg.metrics import functional as F

    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"Prediction and target shapes differ: {pred.shape} vs {true.shape}.")
    n = len(pred)
    if mode == "multiclass":
        p, t = pred.reshape(n, -1), true.reshape(n, -1)
        valid = None if ignore_index is None else t != ignore_index
        stats = F.stats_from_labels(p, t, classes, valid)
    else:
        if mode == "binary":
            pred, true = pred[..., None], true[..., None]
        channels = pred.shape[-1]
        stats = F.stats_from_binary(pred.reshape(n, -1, channels).astype(bool), true.reshape(n, -1, channels).astype(bool))
    per_image = np.stack([keras.ops.convert_to_numpy(v).astype(np.int64) for v in stats], axis=-1)  # (N, C, 4)
    return per_image.sum(axis=0)


_SCORE_FUNCTIONS = {"iou": "iou_score", "f1": "f1_score", "accuracy": "accuracy", "precision": "precision", "recall": "recall"}


def scores_from_counts(counts, class_names=None, mode=None):
    """SMP's formulas (``keras_seg.metrics``) per class (zero division -> 1.0) and their mean (SMP "macro").

    ``mode="multiclass"`` adds the pixel accuracy (correct pixels / all pixels).

    Returns ``{"iou", "f1", "accuracy", "precision", "recall": mean over classes,
    "pixel_accuracy", "per_class": {name: {...}}}``.
    """
    from keras_seg import metrics as ksm

    counts = np.asarray(counts, dtype=np.float64)
    stats = [counts[None, :, i] for i in range(4)]  # (1, C) each: the whole dataset as one image
    per = {
        key: np.asarray(keras.ops.convert_to_numpy(getattr(ksm, fn)(*stats, reduction=None, zero_division=1.0)),
                        np.float64)[0]
        for key, fn in _SCORE_FUNCTIONS.items()
    }
    names = list(class_names) if class_names is not None else [f"class_{c}" for c in range(len(counts))]
    result = {k: float(v.mean()) for k, v in per.items()}
    tp = counts[:, 0]
    total = counts[0].sum() if len(counts) else 0
    result["pixel_accuracy"] = float(tp.sum() / total) if mode == "multiclass" and total else result["accuracy"]
    result["per_class"] = {n: {k: float(v[i]) for k, v in per.items()} for i, n in enumerate(names)}
    return result


def evaluate_masks(model, loader, mode=None, threshold=0.5, class_names=None, ignore_index=None):
    """IoU, F1, accuracy, precision, recall of ``model`` on a ``SegmentationDataLoader``.

    Counts are summed over the whole dataset, then SMP's formulas are applied per class
    and averaged (binary: the foreground class only).
    """
    mode = check_mode(mode or getattr(loader, "mode", None) or infer_mode(model))
    data_format = _data_format(model)
    from_logits = outputs_logits(model)
    classes = model_classes(model)
    counts = None
    for i in range(len(loader)):
        images, targets = loader[i]
        out = predict_logits(model, images, batch_size=len(images))
        pred = to_masks(out, mode, from_logits, threshold, data_format)
        true = targets_to_masks(targets, mode, loader.data_format)
        c = confusion_counts(pred, true, mode, classes, ignore_index=ignore_index)
        counts = c if counts is None else counts + c
    if class_names is None:
        class_names = getattr(getattr(loader, "dataset", None), "class_names", None)
    if class_names is not None and len(class_names) != len(counts):
        class_names = None
    return scores_from_counts(counts, class_names, mode)


def format_metrics_table(scores):
    """A text table of per-class and mean scores."""
    cols = METRIC_NAMES
    rows = [(name, [v[c] for c in cols]) for name, v in scores["per_class"].items()]
    if len(rows) > 1:
        rows.append(("mean", [scores[c] for c in cols]))
    width = max(len("class"), *(len(r[0]) for r in rows))
    lines = ["class".ljust(width) + "".join(f"{c:>11}" for c in cols)]
    lines.append("-" * len(lines[0]))
    for name, values in rows:
        lines.append(name.ljust(width) + "".join(f"{v:>11.4f}" for v in values))
    if "pixel_accuracy" in scores and len(scores["per_class"]) > 1:
        lines.append(f"pixel accuracy: {scores['pixel_accuracy']:.4f}")
    return "\n".join(lines)
