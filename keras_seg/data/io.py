"""Image and mask files: reading with clear errors, writing atomically.

Everything here is numpy + Pillow, so it runs the same under every Keras backend.
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from weight_ports.atomic import atomic_dir, atomic_path, remove_stale_temporaries, write_text  # noqa: F401

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MASK_EXTENSIONS = (".png",)
LOSSY_EXTENSIONS = (".jpg", ".jpeg")

# Pillow mode -> number of channels it decodes to.
_MODE_CHANNELS = {
    "1": 1, "L": 1, "P": None, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "F": 1,
    "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
    "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4,
}


class DatasetError(ValueError):
    """A problem with a dataset file: unreadable, wrong channels, wrong size, bad labels."""


def _open(path, what):
    try:
        img = Image.open(path)
        img.load()  # decode now: truncated or corrupt files fail here, not later
    except FileNotFoundError:
        raise DatasetError(f"{what} file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"Cannot read {what.lower()} {path}: {e}") from None
    return img


def _channels(img):
    if img.mode == "P":
        return 4 if "transparency" in img.info else 3
    return _MODE_CHANNELS.get(img.mode)


def read_image(path, channels=3, convert_channels=False):
    """Read an image file as a ``uint8`` array ``(H, W, channels)``.

    A palette image counts as RGB. When the file has a different number of channels
    than ``channels`` a ``DatasetError`` is raised, unless ``convert_channels=True``,
    in which case grayscale/RGB/RGBA are converted with Pillow.
    """
    img = _open(path, "Image")
    have = _channels(img)
    if have != channels:
        target = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
        if not convert_channels or target is None:
            raise DatasetError(
                f"Image {path} has {have} channel(s) (Pillow mode {img.mode!r}), expected {channels} "
                f"(in_channels={channels}). Convert the file, or pass convert_channels=True to convert on load."
            )
        img = img.convert(target)
    elif img.mode == "P":
        img = img.convert("RGBA" if have == 4 else "RGB")
    elif img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img)
        raise DatasetError(
            f"Image {path} has {arr.dtype} pixels (Pillow mode {img.mode!r}); only 8-bit images are supported."
        )
    elif img.mode not in ("L", "RGB", "RGBA", "LA"):
        img = img.convert({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[have])
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


def read_mask(path):
    """Read a class-index mask (single-channel PNG) as an ``int32`` array ``(H, W)``.

    Palette PNGs give their palette indices (the usual way of storing class masks).
    Multi-channel masks and lossy (JPEG) masks are rejected with a ``DatasetError``.
    """
    ext = os.path.splitext(str(path))[1].lower()
    if ext in LOSSY_EXTENSIONS:
        raise DatasetError(
            f"Mask {path} is a JPEG: lossy compression changes class indices at edges. Save masks as PNG."
        )
    img = _open(path, "Mask")
    if img.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
        raise DatasetError(
            f"Mask {path} has {_channels(img)} channel(s) (Pillow mode {img.mode!r}); masks must be "
            "single-channel class-index PNGs (mode 'L', 'P' or 16-bit), one integer class per pixel."
        )
    arr = np.asarray(img)
    return arr.astype(np.int32)


# -- atomic writing: weight_ports.atomic (atomic_path, atomic_dir, write_text) ----------------


def write_png(path, array):
    """Write a ``uint8``/``uint16`` array ``(H, W)`` or ``(H, W, 1|3|4)`` as a PNG, atomically."""
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        if arr.dtype.kind in "iu" and arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"Cannot write values outside [0, 65535] to a PNG ({path}).")
        arr = arr.astype(np.uint8 if arr.size == 0 or arr.max() < 256 else np.uint16)
    img = Image.fromarray(arr)
    with atomic_path(path, ".png") as tmp:
        img.save(tmp, format="PNG")
