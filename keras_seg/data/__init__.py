"""Data for training keras-seg models: datasets, augmentation, preprocessing, batching.

* ``SyntheticSegmentation``: built-in textured-shapes dataset (binary, multiclass,
  multilabel), deterministic from a seed; the default of the demo and the tests.
* ``FolderDataset``: ``images/`` + ``masks/`` (class-index PNGs) paired by file stem.
* ``keras_seg.data.augment``: joint image/mask transforms (numpy + Pillow).
* ``get_preprocessing_params`` / ``get_preprocessing_fn`` / ``preprocess_input``: SMP's.
* ``SegmentationDataLoader``: a ``keras.utils.PyDataset`` yielding batches in the
  model's data format with masks shaped for ``keras_seg.losses``.
"""

from keras_seg.data import augment
from keras_seg.data.folder import FolderDataset, has_splits
from keras_seg.data.io import DatasetError, atomic_dir, atomic_path, read_image, read_mask, write_png, write_text
from keras_seg.data.loader import SegmentationDataLoader, Subset, format_target, split_dataset
from keras_seg.data.preprocessing import get_preprocessing_fn, get_preprocessing_params, preprocess_input
from keras_seg.data.synthetic import CLASS_NAMES, MODES, SHAPES, SyntheticSegmentation

__all__ = [
    "CLASS_NAMES",
    "MODES",
    "SHAPES",
    "DatasetError",
    "FolderDataset",
    "SegmentationDataLoader",
    "Subset",
    "SyntheticSegmentation",
    "atomic_dir",
    "atomic_path",
    "augment",
    "format_target",
    "get_preprocessing_fn",
    "get_preprocessing_params",
    "has_splits",
    "preprocess_input",
    "read_image",
    "read_mask",
    "split_dataset",
    "write_png",
    "write_text",
]
