"""Spatial resizing that computes exactly what torch's ``F.interpolate`` computes.

``keras.ops.image.resize`` has no ``align_corners``, its "nearest" is torch's
"nearest-exact", and its bicubic kernel differs on TF and JAX. This layer resizes
one spatial axis at a time with gathers (nearest, bilinear, bicubic) or an averaging
matrix (area), from index arithmetic that mirrors torch's. It works with dynamic
sizes on every backend and exports to SavedModel and TFLite.
"""

import keras
from keras import ops

from backbones.layers import jax_paths, spatial_axes, standardize_data_format, torch_paths

MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
_CUBIC_A = -0.75  # torch's bicubic kernel coefficient


def _linear_source(out_idx, in_size, out_size, inv_scale, align_corners):
    if align_corners:
        ratio = ops.where(out_size > 1, (in_size - 1.0) / ops.maximum(out_size - 1.0, 1.0), 0.0)
        return out_idx * ratio
    return (out_idx + 0.5) * inv_scale - 0.5


def _cubic_weights(t):
    a = _CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def _broadcast(w, axis, ndim, dtype):
    shape = [1] * ndim
    shape[axis] = -1
    return ops.cast(ops.reshape(w, shape), dtype)


def resize_axis(x, axis, out_size, mode, align_corners=False, scale_factor=None):
    """Resize ``x`` along ``axis`` to ``out_size`` as torch's interpolate does on that axis."""
    in_size_int = ops.shape(x)[axis]
    in_size = ops.cast(in_size_int, "float32")
    out_f = ops.cast(out_size, "float32")
    if scale_factor is not None:
        inv_scale = ops.cast(1.0 / scale_factor, "float32")
    else:
        inv_scale = in_size / out_f
    out_idx = ops.cast(ops.arange(out_size), "float32")
    last = in_size_int - 1
    ndim = len(x.shape)

    def clip(i):
        return ops.clip(i, 0, last)

    if mode in ("nearest", "nearest-exact"):
        offset = 0.5 if mode == "nearest-exact" else 0.0
        idx = ops.minimum(ops.cast(ops.floor((out_idx + offset) * inv_scale), "int32"), last)
        return ops.take(x, idx, axis=axis)
    if mode == "bilinear":
        src = _linear_source(out_idx, in_size, out_f, inv_scale, align_corners)
        src = ops.maximum(src, 0.0)
        i0 = ops.minimum(ops.cast(ops.floor(src), "int32"), last)
        i1 = ops.minimum(i0 + 1, last)
        w1 = src - ops.cast(i0, "float32")
        w1 = _broadcast(w1, axis, ndim, x.dtype)
        return ops.take(x, i0, axis=axis) * (1.0 - w1) + ops.take(x, i1, axis=axis) * w1
    if mode == "bicubic":
        src = _linear_source(out_idx, in_size, out_f, inv_scale, align_corners)
        base = ops.floor(src)
        t = src - base
        base = ops.cast(base, "int32")
        out = None
        for k, w in zip(range(-1, 3), _cubic_weights(t)):
            term = ops.take(x, clip(base + k), axis=axis) * _broadcast(w, axis, ndim, x.dtype)
            out = term if out is None else out + term
        return out
    if mode == "area":
        # torch's adaptive average pooling bins: [floor(i*in/out), ceil((i+1)*in/out)).
        # Integer arithmetic: XLA may turn float division into a reciprocal multiply.
        i = ops.arange(out_size, dtype="int32")
        n_in = ops.cast(in_size_int, "int32")
        n_out = ops.cast(out_size, "int32")
        start = (i * n_in) // n_out
        end = ((i + 1) * n_in + n_out - 1) // n_out
        pos = ops.arange(in_size_int, dtype="int32")
        member = ops.logical_and(pos[None, :] >= start[:, None], pos[None, :] < end[:, None])
        matrix = ops.cast(member, "float32") / ops.cast(end - start, "float32")[:, None]  # (out, in)
        matrix = ops.cast(matrix, x.dtype)
        moved = ops.moveaxis(x, axis, -1)
        out = ops.matmul(moved, ops.transpose(matrix))
        return ops.moveaxis(out, -1, axis)
    raise ValueError(f"Unknown interpolation mode {mode!r}; valid modes are {MODES}.")


@keras.saving.register_keras_serializable(package="keras_seg")
class Resize(keras.layers.Layer):
    """torch ``F.interpolate`` for 4D feature maps.

    Give exactly one target: ``size=(h, w)``, ``scale_factor`` (a number), or call the
    layer on ``[x, reference]`` to resize ``x`` to ``reference``'s spatial size.
    ``mode`` is one of "nearest" (torch's legacy floor indexing), "nearest-exact",
    "bilinear", "bicubic" or "area"; ``align_corners`` applies to bilinear and bicubic.
    """

    def __init__(self, mode="nearest", align_corners=None, size=None, scale_factor=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"Unknown interpolation mode {mode!r}; valid modes are {MODES}.")
        if align_corners and mode not in ("bilinear", "bicubic"):
            raise ValueError(f"align_corners=True only applies to 'bilinear' and 'bicubic', not {mode!r}.")
        if size is not None and scale_factor is not None:
            raise ValueError("Give either size or scale_factor to Resize, not both.")
        self.mode = mode
        self.align_corners = bool(align_corners)
        self.size = tuple(size) if size is not None else None
        self.scale_factor = scale_factor
        self.data_format = standardize_data_format(data_format)

    def _target(self, x, reference):
        axes = spatial_axes(self.data_format)
        if reference is not None:
            return [ops.shape(reference)[a] for a in axes]
        if self.size is not None:
            return list(self.size)
        if self.scale_factor is None:
            raise ValueError("Resize needs size, scale_factor, or a reference tensor.")
        return [_scaled(ops.shape(x)[a], self.scale_factor) for a in axes]

    def call(self, inputs):
        x, reference = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, None)
        axes = spatial_axes(self.data_format)
        targets = self._target(x, reference)
        factor = self.scale_factor if reference is None and self.size is None else None
        if torch_paths.ENABLED:
            size = None if factor is not None else [int(t) for t in targets]
            return torch_paths.interpolate(x, size, factor, self.mode, self.align_corners, self.data_format)
        if self.mode in ("nearest", "nearest-exact") and jax_paths.enabled():
            repeated = jax_paths.repeat_pixels(x, _integer_ratios(x, targets, axes), self.data_format)
            if repeated is not None:
                return repeated
        if factor is not None and float(factor).is_integer() and self.mode in ("nearest", "nearest-exact"):
            for a in axes:
                x = ops.repeat(x, int(factor), axis=a)
            return x
        by_matrix = self.mode in ("bilinear", "bicubic") and jax_paths.enabled() and _static(x, targets, axes)
        resize = resize_by_matrix if by_matrix else resize_axis
        for a, t in zip(axes, targets):
            x = resize(x, a, t, self.mode, self.align_corners, factor)
        return x

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            x_shape, ref_shape = input_shape[0], input_shape[1]
        else:
            x_shape, ref_shape = input_shape, None
        shape = list(x_shape)
        for i, a in enumerate(spatial_axes(self.data_format)):
            if ref_shape is not None:
                shape[a] = ref_shape[a]
            elif self.size is not None:
                shape[a] = self.size[i]
            elif shape[a] is not None:
                shape[a] = _scaled(shape[a], self.scale_factor)
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "mode": self.mode,
            "align_corners": self.align_corners,
            "size": list(self.size) if self.size is not None else None,
            "scale_factor": self.scale_factor,
            "data_format": self.data_format,
        }


def resize_by_matrix(x, axis, out_size, mode, align_corners=False, scale_factor=None):
    """``resize_axis`` (JAX on the CPU) whose gradient is a product with the transposed (out, in) interpolation
    matrix, ``resize_axis`` of the identity, instead of a scatter-add (XLA's CPU scatter-add costs 30-80 ms
    per FPN upsampling; FPN's JAX training step 1.35-1.40 -> 1.26-1.29 s)."""
    matrix = resize_axis(ops.eye(x.shape[axis], dtype="float32"), 0, out_size, mode, align_corners, scale_factor)
    return jax_paths.gather_forward_matrix_backward(
        lambda t: resize_axis(t, axis, out_size, mode, align_corners, scale_factor), matrix, x, axis)


def _static(x, targets, axes):
    """Whether the sizes along ``axes`` and their ``targets`` are known integers (the matrices need them)."""
    return all(isinstance(x.shape[a], int) and isinstance(t, int) for a, t in zip(axes, targets))


def _integer_ratios(x, targets, axes):
    """(target / size) per spatial axis where every one is a whole number (nearest resizing is then
    pixel repetition in torch's both rules), else None."""
    sizes = [x.shape[a] for a in axes]
    if not all(isinstance(n, int) and isinstance(t, int) and n > 0 and t % n == 0 for n, t in zip(sizes, targets)):
        return None
    return tuple(t // n for n, t in zip(sizes, targets))


def _scaled(n, factor):
    """torch's output size for a scale factor: floor(n * factor)."""
    if isinstance(n, int):
        return int(n * factor)
    return ops.cast(ops.floor(ops.cast(n, "float32") * factor), "int32")
