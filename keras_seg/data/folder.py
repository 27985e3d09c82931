"""A dataset read from a folder: ``images/`` and ``masks/`` paired by file stem.

    root/
      images/  a.png  b.jpg  ...     (PNG or JPEG, RGB by default)
      masks/   a.png  b.png  ...     (single-channel PNG, one class index per pixel)

``root`` may also hold ``train/`` and ``val/`` (and ``test/``) folders of that layout;
``FolderDataset(root, split="train")`` then reads ``root/train``.
"""

import os

import numpy as np

from keras_seg.data.io import IMAGE_EXTENSIONS, LOSSY_EXTENSIONS, DatasetError, read_image, read_mask
from keras_seg.data.synthetic import check_mode

_MAX_LISTED = 10


def _listing(folder, extensions, what):
    if not os.path.isdir(folder):
        raise DatasetError(f"{what} folder not found: {folder}")
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        stem, ext = os.path.splitext(name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        if ext.lower() not in extensions:
            continue
        if stem in found:
            raise DatasetError(
                f"Two {what.lower()} files share the stem {stem!r} in {folder}: "
                f"{os.path.basename(found[stem])} and {name}. Keep one."
            )
        found[stem] = path
    return found


def _short_list(items):
    items = sorted(items)
    more = f" ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def has_splits(root):
    """Whether ``root`` holds ``train/`` (with images/ and masks/) instead of images/ directly."""
    return os.path.isdir(os.path.join(root, "train", "images"))


class FolderDataset:
    """Image/mask pairs from ``root/images`` and ``root/masks``; ``ds[i]`` is ``(image, target)``.

    Args:
        root: the dataset folder (or the folder holding split folders, with ``split``).
        mode: "binary" (mask values 0/1), "multiclass" (0..classes-1) or "multilabel"
            (0..classes-1, one-hot encoded to ``classes`` channels).
        classes: model output channels (SMP's ``classes``); 1 for binary. Required for
            multiclass/multilabel.
        split: optional sub-folder name ("train", "val", ...).
        in_channels: channels every image must have (3: RGB).
        convert_channels: convert images with another channel count instead of raising.
        ignore_index: a mask value allowed outside the class range (e.g. 255 for unlabeled
            pixels), passed through unchanged (in multilabel mode, into every channel).
        label_map: optional ``{raw value: class index}`` applied to masks first (for
            example ``{0: 0, 255: 1}`` for binary masks saved as 0/255).
        class_names: optional names, for reports.

    Files are checked when read (``DatasetError`` with the file name); ``validate()``
    checks every pair up front and reports all problems at once.
    """

    def __init__(
        self,
        root,
        mode="binary",
        classes=None,
        split=None,
        in_channels=3,
        convert_channels=False,
        ignore_index=None,
        label_map=None,
        class_names=None,
    ):
        self.mode = check_mode(mode)
        if mode == "binary":
            if classes not in (None, 1):
                raise ValueError(f"mode='binary' has one output channel: classes must be 1 (or None), got {classes!r}.")
            classes = 1
        elif classes is None or int(classes) < (2 if mode == "multiclass" else 1):
            raise ValueError(
                f"mode={mode!r} needs classes= (the number of classes{', background included' if mode == 'multiclass' else ''}), got {classes!r}."
            )
        self.classes = int(classes)
        self.root = os.fspath(root)
        self.folder = os.path.join(self.root, split) if split else self.root
        self.split = split
        self.in_channels = int(in_channels)
        self.convert_channels = bool(convert_channels)
        self.ignore_index = ignore_index
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        if class_names is not None and len(class_names) != self.classes:
            raise ValueError(f"class_names has {len(class_names)} names for {self.classes} classes.")
        self.class_names = tuple(class_names) if class_names else tuple(f"class_{c}" for c in range(self.classes))

        if split is None and not os.path.isdir(os.path.join(self.root, "images")) and has_splits(self.root):
            raise DatasetError(f"{self.root} holds split folders (train/, ...): pass split='train' (or 'val').")
        images = _listing(os.path.join(self.folder, "images"), IMAGE_EXTENSIONS, "Image")
        masks = _listing(os.path.join(self.folder, "masks"), IMAGE_EXTENSIONS, "Mask")
        lossy = [os.path.basename(p) for p in masks.values() if os.path.splitext(p)[1].lower() in LOSSY_EXTENSIONS]
        if lossy:
            raise DatasetError(
                f"Masks must be PNG (JPEG compression changes class indices at edges); found JPEG masks in "
                f"{os.path.join(self.folder, 'masks')}: {_short_list(lossy)}"
            )
        no_mask = set(images) - set(masks)
        no_image = set(masks) - set(images)
        if no_mask or no_image:
            parts = []
            if no_mask:
                parts.append(f"{len(no_mask)} image(s) without a mask: {_short_list(no_mask)}")
            if no_image:
                parts.append(f"{len(no_image)} mask(s) without an image: {_short_list(no_image)}")
            raise DatasetError(
                f"Unpaired files in {self.folder} (images/ and masks/ are paired by file stem): " + "; ".join(parts)
            )
        if not images:
            raise DatasetError(f"No images found in {os.path.join(self.folder, 'images')} (extensions {IMAGE_EXTENSIONS}).")
        self.stems = sorted(images)
        self.image_paths = [images[s] for s in self.stems]
        self.mask_paths = [masks[s] for s in self.stems]

    # -- dataset protocol --------------------------------------------------------------
    def __len__(self):
        return len(self.stems)

    def describe(self):
        return f"folder {self.folder} ({self.mode}, {len(self)} pairs)"

    @property
    def label_range(self):
        """Valid mask values (after label_map): 0..num_labels-1."""
        return 2 if self.mode == "binary" else self.classes

    def __getitem__(self, i):
        image = read_image(self.image_paths[i], self.in_channels, self.convert_channels)
        labels = read_mask(self.mask_paths[i])
        if image.shape[:2] != labels.shape:
            raise DatasetError(
                f"Image and mask sizes differ for {self.stems[i]!r}: image {self.image_paths[i]} is "
                f"{image.shape[0]}x{image.shape[1]} (HxW), mask {self.mask_paths[i]} is {labels.shape[0]}x{labels.shape[1]}."
            )
        labels = self._check_labels(labels, self.mask_paths[i])
        return image, self._target(labels)

    def _check_labels(self, labels, path):
        if self.label_map:
            mapped = labels.copy()
            for raw, cls in self.label_map.items():
                mapped[labels == raw] = cls
            labels = mapped
        n = self.label_range
        bad = (labels < 0) | (labels >= n)
        if self.ignore_index is not None:
            bad &= labels != self.ignore_index
        if bad.any():
            values = np.unique(labels[bad])
            hint = ""
            if self.mode == "binary" and set(values.tolist()) <= {255}:
                hint = " For 0/255 binary masks pass label_map={0: 0, 255: 1}."
            elif self.ignore_index is None:
                hint = " Use ignore_index= for an 'unlabeled' value."
            raise DatasetError(
                f"Mask {path} has values {values[:10].tolist()} outside the class range [0, {n - 1}] "
                f"(mode={self.mode!r}, classes={self.classes}).{hint}"
            )
        return labels

    def _target(self, labels):
        if self.mode != "multilabel":
            return labels.astype(np.int32)
        ii = self.ignore_index
        dtype = np.uint8 if ii is None or 0 <= ii <= 255 else np.int32
        target = (labels[..., None] == np.arange(self.classes)).astype(dtype)
        if ii is not None:
            target[labels == ii] = ii  # ignored in every channel, not a negative
        return target

    # -- checks ------------------------------------------------------------------------
    def validate(self, max_errors=20):
        """Read every pair; raise one ``DatasetError`` listing every problem found."""
        errors = []
        for i in range(len(self)):
            try:
                self[i]
            except DatasetError as e:
                errors.append(str(e))
                if len(errors) >= max_errors:
                    errors.append("(stopped after the first problems)")
                    break
        if errors:
            raise DatasetError(f"{len(errors)} problem(s) in {self.folder}:\n  " + "\n  ".join(errors))
        return self
