"""Batching for ``model.fit``: a ``keras.utils.PyDataset`` over any indexable dataset.

A dataset here is anything with ``len(ds)`` and ``ds[i] -> (image (H, W, C), target)``,
where ``target`` is a class-index map ``(H, W)`` or a multi-label stack ``(H, W, K)``
(``SyntheticSegmentation``, ``FolderDataset``, ``Subset``, or your own).

Batches come out as the losses expect them, in the model's ``data_format``:

=============  =======================  =========================  ======================
mode           images                   masks, channels_last       masks, channels_first
=============  =======================  =========================  ======================
binary         (N, H, W, C) / (N, C,    (N, H, W, 1) float32        (N, 1, H, W) float32
               H, W) float32
multiclass     same                     (N, H, W) int32            (N, H, W) int32
multilabel     same                     (N, H, W, K) float32       (N, K, H, W) float32
=============  =======================  =========================  ======================
"""

import math

import keras
import numpy as np

from backbones.layers.formats import standardize_data_format
from keras_seg.data.preprocessing import resolve_preprocessing
from keras_seg.modes import check_mode


class Subset:
    """The samples ``indices`` of ``dataset`` (keeps its mode, classes and names)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not 0 <= i < n]
        if bad:
            raise IndexError(f"Subset indices {bad[:5]} out of range for a dataset of {n} samples.")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]

    def __getattr__(self, name):
        if name == "dataset":  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def describe(self):
        inner = self.dataset.describe() if hasattr(self.dataset, "describe") else type(self.dataset).__name__
        return f"{len(self)} of {inner}"


def split_dataset(dataset, val_fraction=0.2, seed=0):
    """Deterministic random split into ``(train Subset, val Subset)``."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}.")
    n = len(dataset)
    n_val = max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise ValueError(f"Cannot split {n} sample(s) into non-empty train and validation parts.")
    order = np.random.default_rng(seed).permutation(n)
    return Subset(dataset, sorted(order[n_val:])), Subset(dataset, sorted(order[:n_val]))


def format_target(target, mode, classes=None, data_format="channels_last"):
    """One sample's target ``(H, W)`` / ``(H, W, K)`` -> the array the losses expect (no batch axis)."""
    target = np.asarray(target)
    if mode == "binary":
        if target.ndim == 3:
            target = target.max(axis=-1) if target.shape[-1] > 1 else target[..., 0]
        out = target.astype(np.float32)[..., None]
    elif mode == "multiclass":
        if target.ndim == 3:
            if target.shape[-1] != 1:
                raise ValueError(f"mode='multiclass' needs a class-index map (H, W), got a target of shape {target.shape}.")
            target = target[..., 0]
        return target.astype(np.int32)
    else:
        if target.ndim == 2:
            if classes is None:
                raise ValueError("mode='multilabel' with class-index masks needs classes= to one-hot encode them.")
            target = target[..., None] == np.arange(classes)
        out = target.astype(np.float32)
    if data_format == "channels_first":
        out = np.moveaxis(out, -1, 0)
    return out


def format_image(image, data_format="channels_last"):
    image = np.asarray(image, dtype=np.float32)
    return np.moveaxis(image, -1, 0) if data_format == "channels_first" else image


class SegmentationDataLoader(keras.utils.PyDataset):
    """Batches ``(images, masks)`` from ``dataset`` for ``model.fit`` / ``evaluate`` / ``predict``.

    Args:
        dataset: indexable dataset (see the module docstring).
        batch_size: samples per batch.
        mode: "binary", "multiclass" or "multilabel"; defaults to ``dataset.mode``.
        classes: number of classes for one-hot multilabel targets (default ``dataset.classes``).
        augmentation: joint transform ``t(image, target, rng)`` (``keras_seg.data.augment``).
        preprocessing: ``None`` (scale to [0, 1]), a dict of ``preprocess_input`` parameters
            (``get_preprocessing_params(encoder, "imagenet")``) or a callable on HWC arrays.
        data_format: "channels_last" or "channels_first" (use ``model.data_format``);
            default ``keras.config.image_data_format()``.
        shuffle: reshuffle the samples every epoch (deterministic from ``seed``).
        drop_remainder: drop the last incomplete batch (keeps every batch divisible
            by the number of replicas in data-parallel training).
        seed: seed of shuffling and augmentation.
        workers, use_multiprocessing, max_queue_size: as ``keras.utils.PyDataset``.

    Augmentation for sample ``i`` in epoch ``e`` draws from ``default_rng([seed, e, i])``,
    so batches do not depend on the number or kind of workers. ``set_epoch(e)`` puts the
    loader at epoch ``e`` (``keras_seg.training.fit`` does so at the start of each epoch,
    so a resumed run sees the batches of an uninterrupted one); ``on_epoch_end`` advances it.
    """

    def __init__(
        self,
        dataset,
        batch_size=8,
        mode=None,
        classes=None,
        augmentation=None,
        preprocessing=None,
        data_format=None,
        shuffle=False,
        drop_remainder=False,
        seed=0,
        workers=1,
        use_multiprocessing=False,
        max_queue_size=10,
    ):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
        if len(dataset) == 0:
            raise ValueError("The dataset is empty.")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.mode = check_mode(mode if mode is not None else getattr(dataset, "mode", None))
        self.classes = classes if classes is not None else getattr(dataset, "classes", None)
        self.augmentation = augmentation
        self.preprocessing = resolve_preprocessing(preprocessing)
        self.data_format = standardize_data_format(data_format)
        self.shuffle = bool(shuffle)
        self.drop_remainder = bool(drop_remainder)
        if self.drop_remainder and len(dataset) < self.batch_size:
            raise ValueError(f"drop_remainder=True with {len(dataset)} samples < batch_size={batch_size} leaves no batch.")
        self.seed = int(seed)
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch):
        """Shuffle and augment as in epoch ``epoch`` (0-based) from now on."""
        self.epoch = int(epoch)
        self._order = self._make_order()

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def sample(self, index):
        """Sample ``index`` augmented, preprocessed and formatted: ``(image, mask)`` without batch axis."""
        image, target = self.dataset[index]
        image, target = np.asarray(image), np.asarray(target)
        if self.augmentation is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            image, target = self.augmentation(image, target, rng)
        image = self.preprocessing(image)
        return format_image(image, self.data_format), format_target(target, self.mode, self.classes, self.data_format)

    def __getitem__(self, idx):
        if not 0 <= idx < len(self):
            raise IndexError(f"batch {idx} out of range ({len(self)} batches)")
        indices = self._order[idx * self.batch_size : (idx + 1) * self.batch_size]
        samples = [self.sample(i) for i in indices]
        shapes = {s[0].shape for s in samples}
        if len(shapes) > 1:
            raise ValueError(
                f"Images in a batch have different sizes {sorted(shapes)}: resize or crop them to one size "
                "(image_size=, or a Resize / RandomCrop augmentation)."
            )
        images = np.stack([s[0] for s in samples])
        masks = np.stack([s[1] for s in samples])
        return images, masks

    def images(self):
        """All (preprocessed) images, in dataset order, as one array; for small datasets."""
        return np.stack([self.sample(i)[0] for i in range(len(self.dataset))])
