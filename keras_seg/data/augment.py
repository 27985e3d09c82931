"""Joint image-and-mask augmentation with numpy and Pillow (backend independent).

A transform is a callable ``t(image, target, rng) -> (image, target)``:

* ``image``: ``(H, W, C)`` array (``uint8`` or float);
* ``target``: a class-index map ``(H, W)`` or a multi-label stack ``(H, W, K)``;
* ``rng``: a ``numpy.random.Generator``; the loaders seed it from (seed, epoch, index),
  so augmentation is reproducible whatever the number of workers.

Geometric transforms move image and mask together; masks are always resized with
nearest neighbour, so class indices stay class indices.
"""

import numpy as np
from PIL import Image


def _pair(size, name):
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a (height, width) pair, got {size!r}.") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive, got {size!r}.")
    return h, w


def _check_prob(p):
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}.")
    return float(p)


def resize_image(image, size):
    """Bilinear resize of ``(H, W, C)`` to ``size=(h, w)`` (Pillow; float for unusual channel counts)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    if image.dtype == np.uint8 and image.shape[2] in (1, 3, 4):
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        out = np.asarray(pil.resize((w, h), Image.BILINEAR))
        return out[..., None] if out.ndim == 2 else out
    chans = [
        np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
        for c in range(image.shape[2])
    ]
    out = np.stack(chans, axis=-1)
    if image.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(image.dtype, copy=False)


def resize_mask(target, size):
    """Nearest-neighbour resize (pixel centres, as Pillow NEAREST) of ``(H, W)`` or ``(H, W, K)``."""
    h, w = size
    in_h, in_w = target.shape[:2]
    if (in_h, in_w) == (h, w):
        return target
    rows = np.minimum(((np.arange(h) + 0.5) * in_h / h).astype(np.int64), in_h - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * in_w / w).astype(np.int64), in_w - 1)
    return target[rows][:, cols]


def _pad(array, top, bottom, left, right, value):
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="constant", constant_values=value)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ValueError(f"Compose: every transform must be callable, got {t!r}.")

    def __call__(self, image, target, rng):
        for t in self.transforms:
            image, target = t(image, target, rng)
        return image, target

    def __repr__(self):
        return f"Compose({self.transforms!r})"


class Resize:
    """Resize to ``size`` (int or (height, width)): image bilinear, mask nearest."""

    def __init__(self, size):
        self.size = _pair(size, "size")

    def __call__(self, image, target, rng):
        return resize_image(image, self.size), resize_mask(target, self.size)

    def __repr__(self):
        return f"Resize({self.size})"


class HorizontalFlip:
    def __init__(self, p=0.5):
        self.p = _check_prob(p)

    def __call__(self, image, target, rng):
        if rng.random() < self.p:
            image, target = image[:, ::-1], target[:, ::-1]
        return image, target

    def __repr__(self):
        return f"HorizontalFlip(p={self.p})"


class VerticalFlip:
    def __init__(self, p=0.5):
        self.p = _check_prob(p)

    def __call__(self, image, target, rng):
        if rng.random() < self.p:
            image, target = image[::-1], target[::-1]
        return image, target

    def __repr__(self):
        return f"VerticalFlip(p={self.p})"


class RandomRotate90:
    """Rotate by a random multiple of 90 degrees (square outputs keep their size)."""

    def __init__(self, p=0.5):
        self.p = _check_prob(p)

    def __call__(self, image, target, rng):
        if rng.random() < self.p:
            k = int(rng.integers(1, 4))
            image, target = np.rot90(image, k, axes=(0, 1)), np.rot90(target, k, axes=(0, 1))
        return image, target

    def __repr__(self):
        return f"RandomRotate90(p={self.p})"


class RandomCrop:
    """Crop a random ``size`` window; smaller inputs are padded first (mask with ``mask_fill``)."""

    def __init__(self, size, fill=0, mask_fill=0):
        self.size = _pair(size, "size")
        self.fill, self.mask_fill = fill, mask_fill

    def __call__(self, image, target, rng):
        h, w = self.size
        ih, iw = image.shape[:2]
        if ih < h or iw < w:
            ph, pw = max(h - ih, 0), max(w - iw, 0)
            image = _pad(image, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, self.fill)
            target = _pad(target, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, self.mask_fill)
            ih, iw = image.shape[:2]
        top = int(rng.integers(0, ih - h + 1))
        left = int(rng.integers(0, iw - w + 1))
        return image[top : top + h, left : left + w], target[top : top + h, left : left + w]

    def __repr__(self):
        return f"RandomCrop({self.size})"


class CenterCrop:
    """Crop the central ``size`` window (inputs must be at least that large)."""

    def __init__(self, size):
        self.size = _pair(size, "size")

    def __call__(self, image, target, rng):
        h, w = self.size
        ih, iw = image.shape[:2]
        if ih < h or iw < w:
            raise ValueError(f"CenterCrop{self.size}: input {ih}x{iw} is smaller than the crop.")
        top, left = (ih - h) // 2, (iw - w) // 2
        return image[top : top + h, left : left + w], target[top : top + h, left : left + w]

    def __repr__(self):
        return f"CenterCrop({self.size})"


class RandomResizedCrop:
    """Crop a random area fraction ``scale`` with aspect ratio in ``ratio``, resize to ``size``."""

    def __init__(self, size, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = _pair(size, "size")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale!r}.")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio!r}.")
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def __call__(self, image, target, rng):
        ih, iw = image.shape[:2]
        area = ih * iw
        for _ in range(10):
            a = area * rng.uniform(*self.scale)
            r = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            w = int(round(np.sqrt(a * r)))
            h = int(round(np.sqrt(a / r)))
            if 0 < h <= ih and 0 < w <= iw:
                top = int(rng.integers(0, ih - h + 1))
                left = int(rng.integers(0, iw - w + 1))
                break
        else:
            h, w, top, left = ih, iw, 0, 0
        image, target = image[top : top + h, left : left + w], target[top : top + h, left : left + w]
        return resize_image(image, self.size), resize_mask(target, self.size)

    def __repr__(self):
        return f"RandomResizedCrop({self.size}, scale={self.scale})"


class PadToMultiple:
    """Pad bottom/right so height and width are multiples of ``multiple`` (for stride checks)."""

    def __init__(self, multiple=32, fill=0, mask_fill=0):
        self.multiple = int(multiple)
        self.fill, self.mask_fill = fill, mask_fill

    def __call__(self, image, target, rng):
        ih, iw = image.shape[:2]
        ph, pw = -ih % self.multiple, -iw % self.multiple
        if ph or pw:
            image = _pad(image, 0, ph, 0, pw, self.fill)
            target = _pad(target, 0, ph, 0, pw, self.mask_fill)
        return image, target


class RandomBrightnessContrast:
    """Image-only: scale contrast by 1 +- ``contrast`` and shift brightness by +- ``brightness`` (of 255)."""

    def __init__(self, brightness=0.2, contrast=0.2, p=0.5):
        self.brightness, self.contrast, self.p = float(brightness), float(contrast), _check_prob(p)

    def __call__(self, image, target, rng):
        if rng.random() >= self.p:
            return image, target
        alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
        beta = rng.uniform(-self.brightness, self.brightness) * (255.0 if image.dtype == np.uint8 else 1.0)
        x = image.astype(np.float32)
        x = (x - x.mean()) * alpha + x.mean() + beta
        if image.dtype == np.uint8:
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return x, target


def train_augmentation(image_size=None, rotate=True, color=True):
    """A reasonable default: random resized crop (or nothing) + flips (+ 90° turns, colour)."""
    ts = []
    if image_size is not None:
        ts.append(RandomResizedCrop(image_size, scale=(0.6, 1.0)))
    ts += [HorizontalFlip(0.5), VerticalFlip(0.5)]
    if rotate and image_size is not None and len(set(_pair(image_size, "image_size"))) == 1:
        ts.append(RandomRotate90(0.5))  # only when the output is square: batch shapes stay equal
    if color:
        ts.append(RandomBrightnessContrast(0.1, 0.1, p=0.5))
    return Compose(ts)


def eval_transform(image_size=None):
    """Resize to ``image_size`` (or leave as is)."""
    return Compose([Resize(image_size)] if image_size is not None else [])
