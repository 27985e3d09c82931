"""timm's ``resample_abs_pos_embed``: a learned position embedding resampled to another patch grid
with torch's ``F.interpolate(mode="bicubic", align_corners=False, antialias=...)``.

The interpolation is a fixed linear map along each axis, so it is computed here as an explicit
``(out, in)`` weight matrix from torch's own index arithmetic (``upsample_bicubic2d`` with its
A = -0.75 kernel and clamped border taps; the antialiased ``_upsample_bicubic2d_aa`` with PIL's
A = -0.5 kernel stretched by the downscale factor, cut to the image and normalised per output),
then applied as one einsum: the same numbers on every backend, which ``keras.ops.image.resize``
does not give. Sizes may be Python ints or (dynamic) scalar tensors.
"""

from keras import ops


def _cubic(x, a):
    """Keys' cubic convolution kernel with coefficient ``a`` (zero for |x| >= 2)."""
    x = ops.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return ops.where(x < 1.0, near, ops.where(x < 2.0, far, ops.zeros_like(x)))


def bicubic_matrix(in_size, out_size, antialias=True):
    """``(out_size, in_size)`` float32 matrix M with ``M @ v`` = torch's bicubic resize of ``v`` along
    one axis (``align_corners=False``); ``in_size`` is a Python int."""
    in_f = float(in_size)
    scale = in_f / ops.cast(out_size, "float32")
    i = ops.cast(ops.arange(out_size), "float32")[:, None]
    j = ops.cast(ops.arange(in_size), "float32")[None, :]
    if antialias:
        stretch = ops.maximum(scale, 1.0)  # the kernel widens only when downsampling
        support = 2.0 * stretch
        center = scale * (i + 0.5)
        lo = ops.maximum(ops.floor(center - support + 0.5), 0.0)
        hi = ops.minimum(ops.floor(center + support + 0.5), in_f)
        w = _cubic((j - center + 0.5) / stretch, -0.5)
        w = ops.where(ops.logical_and(j >= lo, j < hi), w, ops.zeros_like(w))
        total = ops.sum(w, axis=1, keepdims=True)
        return w / ops.where(total == 0.0, ops.ones_like(total), total)
    src = scale * (i + 0.5) - 0.5
    base = ops.floor(src)
    t = src - base
    matrix = ops.zeros_like(src * j)
    for k in (-1, 0, 1, 2):  # taps at base - 1 .. base + 2, clamped to the border
        tap = ops.clip(base + float(k), 0.0, in_f - 1.0)
        matrix = matrix + ops.where(j == tap, _cubic(t - float(k), -0.75), 0.0)
    return matrix


def resample_grid(grid, new_size, antialias=True):
    """``grid`` ``(h, w, C)`` (static h, w) resampled to ``new_size`` ``(H, W)``: ``(H, W, C)``."""
    rows = ops.cast(bicubic_matrix(grid.shape[0], new_size[0], antialias), grid.dtype)
    cols = ops.cast(bicubic_matrix(grid.shape[1], new_size[1], antialias), grid.dtype)
    return ops.einsum("hi,wj,ijc->hwc", rows, cols, grid)


def resample_abs_pos_embed(pos_embed, new_size, old_size, num_prefix_tokens=1, antialias=True):
    """timm's ``resample_abs_pos_embed`` (bicubic): ``(1, P + h * w, C)`` with its ``old_size`` grid
    of ``h * w`` patch positions -> ``(1, P + H * W, C)`` for ``new_size``; the first
    ``num_prefix_tokens`` (class / register) positions are kept as they are."""
    if all(isinstance(s, int) for s in new_size) and tuple(old_size) == tuple(new_size):
        return pos_embed  # timm's early exit
    dim = pos_embed.shape[-1]
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    grid = ops.reshape(patches, (old_size[0], old_size[1], dim))
    patches = ops.reshape(resample_grid(grid, new_size, antialias), (1, -1, dim))
    return ops.concatenate([prefix, patches], axis=1) if num_prefix_tokens else patches
