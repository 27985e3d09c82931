"""Pictures of masks and training: colourised masks, overlays, prediction grids, curves.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend
change); every file is written atomically.
"""

import numpy as np

from keras_seg.data.io import atomic_path

# Class 0 (background) is black; then well-separated colours.
_PALETTE = np.array(
    [
        (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
        (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
        (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0),
        (255, 215, 180), (0, 0, 128), (128, 128, 128), (255, 255, 255),
    ],
    dtype=np.uint8,
)


def palette(n):
    """``(n, 3)`` uint8 colours, class 0 black."""
    if n <= len(_PALETTE):
        return _PALETTE[:n].copy()
    rng = np.random.default_rng(0)
    extra = rng.integers(0, 256, (n - len(_PALETTE), 3), dtype=np.uint8)
    return np.concatenate([_PALETTE, extra])


def colorize(mask, num_classes=None):
    """Class-index ``(H, W)`` -> RGB; multi-label ``(H, W, K)`` -> mixed colours of the labels set."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        colors = palette(mask.shape[-1] + 1)[1:].astype(np.float32)
        on = mask.astype(np.float32)
        count = on.sum(-1, keepdims=True)
        rgb = (on @ colors) / np.maximum(count, 1)
        return np.clip(rgb, 0, 255).astype(np.uint8)
    n = int(num_classes or (mask.max() + 1 if mask.size else 1))
    pal = palette(max(n, 2))
    return pal[np.clip(mask, 0, len(pal) - 1)]


def overlay(image, mask, alpha=0.5, num_classes=None):
    """Blend the colourised ``mask`` onto an RGB ``uint8`` image where a class is present."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    image = image[..., :3].astype(np.float32)
    color = colorize(mask, num_classes).astype(np.float32)
    present = (np.asarray(mask) > 0)
    if present.ndim == 3:
        present = present.any(-1)
    out = np.where(present[..., None], (1 - alpha) * image + alpha * color, image)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")


def save_prediction_grid(path, images, true_masks, pred_masks, num_classes=None, titles=None, max_rows=8):
    """Rows of (image, ground truth, prediction, overlay of the prediction) as a PNG."""
    n = min(len(images), max_rows)
    fig = _figure(8, 2 * n + 0.4)
    heads = titles or ("image", "ground truth", "prediction", "overlay")
    for r in range(n):
        pictures = [
            np.asarray(images[r])[..., :3],
            colorize(true_masks[r], num_classes),
            colorize(pred_masks[r], num_classes),
            overlay(images[r], pred_masks[r], 0.5, num_classes),
        ]
        for c, pic in enumerate(pictures):
            ax = fig.add_subplot(n, 4, r * 4 + c + 1)
            ax.imshow(pic, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(heads[c], fontsize=10)
    _save(fig, path)


def save_history_plot(path, history, title=None):
    """Loss and every metric (with its ``val_`` twin) against the epoch, as a PNG."""
    keys = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    if not keys:
        raise ValueError("The history holds no training curves to plot.")
    keys = ["loss"] + sorted(k for k in keys if k != "loss") if "loss" in keys else sorted(keys)
    fig = _figure(4.2 * len(keys), 3.4)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        for k, style in ((key, "-o"), (f"val_{key}", "--s")):
            if k in history and len(history[k]):
                epochs = np.arange(1, len(history[k]) + 1)
                ax.plot(epochs, history[k], style, markersize=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
