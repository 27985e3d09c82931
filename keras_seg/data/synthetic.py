"""A built-in synthetic segmentation dataset: textured shapes on varied backgrounds.

Deterministic: sample ``i`` of split ``split`` depends only on ``(seed, split, i)``, so a
dataset can be regenerated anywhere (other processes, other backends) bit for bit.

Classes: 0 background, 1 circle, 2 rectangle, 3 triangle.

* ``mode="binary"``: target ``(H, W)`` 0/1, any shape is foreground.
* ``mode="multiclass"``: target ``(H, W)`` in 0..3; later shapes occlude earlier ones.
* ``mode="multilabel"``: target ``(H, W, 3)`` 0/1 per shape kind; shapes are drawn
  semi-transparent so overlaps are visible and carry both labels.
"""

import numpy as np

from keras_seg.data.augment import _pair
from keras_seg.modes import MODES, check_mode  # noqa: F401  (re-exported for keras_seg.data)

SHAPES = ("circle", "rectangle", "triangle")
CLASS_NAMES = ("background",) + SHAPES
_SPLITS = {"train": 0, "val": 1, "test": 2}


class SyntheticSegmentation:
    """Random-access synthetic dataset; ``ds[i]`` is ``(image uint8 (H, W, 3), target)``.

    Args:
        num_samples: number of samples.
        image_size: int or (height, width).
        mode: "binary", "multiclass" or "multilabel" (see the module docstring).
        seed: the dataset seed.
        split: "train", "val" or "test" (or an int): independent sample streams.
        min_shapes, max_shapes: shapes per image.
        noise: standard deviation of the pixel noise (fraction of 255).
        cache: keep generated samples in memory.
    """

    def __init__(
        self,
        num_samples=256,
        image_size=64,
        mode="binary",
        seed=0,
        split="train",
        min_shapes=1,
        max_shapes=3,
        noise=0.05,
        cache=True,
    ):
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples!r}.")
        self.num_samples = int(num_samples)
        self.image_size = _pair(image_size, "image_size")
        if min(self.image_size) < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {image_size!r}.")
        self.mode = check_mode(mode)
        self.seed = int(seed)
        if isinstance(split, str):
            if split not in _SPLITS:
                raise ValueError(f"Invalid split {split!r}; expected one of {list(_SPLITS)} or an int.")
            split = _SPLITS[split]
        self.split = int(split)
        if not 1 <= int(min_shapes) <= int(max_shapes):
            raise ValueError(f"Need 1 <= min_shapes <= max_shapes, got {min_shapes}, {max_shapes}.")
        self.min_shapes, self.max_shapes = int(min_shapes), int(max_shapes)
        self.noise = float(noise)
        self._cache = {} if cache else None

    # -- dataset protocol --------------------------------------------------------------
    @property
    def classes(self):
        """Model output channels for this mode (SMP's ``classes``)."""
        return {"binary": 1, "multiclass": len(CLASS_NAMES), "multilabel": len(SHAPES)}[self.mode]

    @property
    def class_names(self):
        return {"binary": ("shape",), "multiclass": CLASS_NAMES, "multilabel": SHAPES}[self.mode]

    in_channels = 3

    def __len__(self):
        return self.num_samples

    def __getitem__(self, i):
        i = int(i)
        if not -self.num_samples <= i < self.num_samples:
            raise IndexError(f"index {i} out of range for {self.num_samples} samples")
        i %= self.num_samples
        if self._cache is not None and i in self._cache:
            image, target = self._cache[i]
        else:
            image, target = self.generate(i)
            if self._cache is not None:
                self._cache[i] = (image, target)
        return image.copy(), target.copy()

    def describe(self):
        return f"synthetic shapes ({self.mode}, {self.num_samples} samples, {self.image_size[0]}x{self.image_size[1]}, split {self.split})"

    # -- generation --------------------------------------------------------------------
    def generate(self, i):
        rng = np.random.default_rng([self.seed, self.split, i])
        h, w = self.image_size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
        image = _background(rng, h, w, yy, xx)
        background = image.copy()
        labels = np.zeros((h, w), np.int32)
        multilabel = np.zeros((h, w, len(SHAPES)), np.uint8)
        alpha = 0.7 if self.mode == "multilabel" else 1.0
        n = int(rng.integers(self.min_shapes, self.max_shapes + 1))
        for _ in range(n):
            kind = int(rng.integers(0, len(SHAPES)))
            inside = _shape_mask(rng, kind, h, w, yy, xx)
            if not inside.any():
                continue
            # contrast with the background under the shape and with what is drawn there now
            color = _contrasting_color(rng, [background[inside].mean(axis=0), image[inside].mean(axis=0)])
            fill = _texture(rng, color, h, w, yy, xx)
            image[inside] = alpha * fill[inside] + (1 - alpha) * image[inside]
            labels[inside] = kind + 1
            multilabel[inside, kind] = 1
        image += rng.normal(0.0, self.noise * 255.0, image.shape).astype(np.float32)
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        if self.mode == "binary":
            target = (labels > 0).astype(np.int32)
        elif self.mode == "multiclass":
            target = labels
        else:
            target = multilabel
        return image, target


def _background(rng, h, w, yy, xx):
    c1 = rng.uniform(0, 255, 3)
    c2 = np.clip(c1 + rng.normal(0, 50, 3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1.0) / 2.0
    image = c1 + (c2 - c1) * t[..., None]
    kind = rng.integers(0, 3)
    if kind == 1:  # stripes
        freq = rng.uniform(2, 8)
        a = rng.uniform(0, np.pi)
        stripes = np.sin(2 * np.pi * freq * (np.cos(a) * xx / w + np.sin(a) * yy / h))
        image = image + stripes[..., None] * rng.uniform(8, 25)
    elif kind == 2:  # smooth blotches: low-resolution noise, upsampled
        gh, gw = max(h // 16, 2), max(w // 16, 2)
        grid = rng.normal(0, rng.uniform(10, 25), (gh, gw, 3))
        rows = np.minimum((yy[:, 0] * gh / h).astype(int), gh - 1)
        cols = np.minimum((xx[0] * gw / w).astype(int), gw - 1)
        image = image + grid[rows][:, cols]
    return image.astype(np.float32)


def _shape_mask(rng, kind, h, w, yy, xx):
    s = min(h, w)
    r = rng.uniform(0.1, 0.24) * s
    cy, cx = rng.uniform(r * 0.6, h - r * 0.6), rng.uniform(r * 0.6, w - r * 0.6)
    if SHAPES[kind] == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    theta = rng.uniform(0, np.pi)
    u = np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)
    v = -np.sin(theta) * (xx - cx) + np.cos(theta) * (yy - cy)
    if SHAPES[kind] == "rectangle":
        a = r * rng.uniform(0.7, 1.2)
        b = r * rng.uniform(0.5, 1.0)
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    # triangle: three vertices around the centre, then a half-plane test per edge
    angles = theta + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
    radius = r * 1.25
    px, py = cx + radius * np.cos(angles), cy + radius * np.sin(angles)
    inside = np.ones((h, w), bool)
    for k in range(3):
        x0, y0, x1, y1 = px[k], py[k], px[(k + 1) % 3], py[(k + 1) % 3]
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def _contrasting_color(rng, references, min_distance=90.0):
    best, best_d = None, -1.0
    for _ in range(30):
        c = rng.uniform(0, 255, 3)
        d = min(float(np.linalg.norm(c - r)) for r in references)
        if d >= min_distance:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _texture(rng, color, h, w, yy, xx):
    kind = rng.integers(0, 4)
    fill = np.broadcast_to(color, (h, w, 3)).astype(np.float32)
    if kind == 1:  # stripes
        freq = rng.uniform(3, 10)
        a = rng.uniform(0, np.pi)
        fill = fill * (1 + 0.2 * np.sin(2 * np.pi * freq * (np.cos(a) * xx / w + np.sin(a) * yy / h)))[..., None]
    elif kind == 2:  # checker
        cell = rng.integers(2, 6)
        checker = ((yy // cell + xx // cell) % 2)[..., None]
        fill = fill * (0.85 + 0.3 * checker)
    elif kind == 3:  # speckle
        fill = fill + rng.normal(0, 15, (h, w, 3))
    return fill.astype(np.float32)
