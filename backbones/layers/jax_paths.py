"""Fast paths on the JAX backend on a CPU: the same numbers, without XLA's slow CPU convolutions.

XLA's CPU convolutions are fast only for dense convolutions (a plain ``conv_general_dilated``).
Measured on a 2-core AMD EPYC (batch 4, float32), against torch's oneDNN:

- depthwise (``feature_group_count`` = channels), 64x64x128, 3x3: forward 70-95 ms (torch 6 ms),
  forward + backward 190 ms (torch 12 ms);
- grouped (ResNeXt's 32 groups), 64x64x128: forward 50-85 ms, backward 5.8 s (torch 16 ms for both);
  groups of 32 channels still 0.8 s backward;
- transposed (Linknet's 4x4 stride 2), 128x128x32 -> 32: forward 136 ms, backward 720 ms
  (torch 46 ms for both);
- dilated with most of the kernel in the padding (DeepLab's ASPP, rates 12 / 24 / 36 on a 32x32 map,
  512 -> 256): forward 56 ms each, backward 200-380 ms (torch 14-27 ms and 85-92 ms: oneDNN skips
  what reads only padding);
- max-pool backward (ResNet's 3x3 stride 2 at 128x128x64): 55 ms of index arithmetic (torch 3 ms);
- nearest upsampling by an integer factor (``jnp.repeat``): a gather, and a scatter-add backward;
- bilinear / bicubic resizing (gathers): a scatter-add backward of 30-80 ms per FPN upsampling.

Here each is rewritten into what XLA's CPU backend does fast, with the same arithmetic:

- ``depthwise_conv``: a sum over the kernel taps of strided slices times per-channel weights (one
  fused elementwise loop), with a hand-written gradient (the input gradient the same kind of sum:
  over the padded gradient by the flipped kernel, or of zero-interleaved gradients for strides; the
  kernel gradient one reduction per tap);
- ``grouped_conv``: dense convolutions over chunks of about 32 input channels, each with the
  block-diagonal kernel of the groups in it;
- ``conv_transpose``: one stride-1 convolution whose s*s output phases are interleaved (the
  sub-pixel form of a stride-s transposed convolution): the gradients are plain convolutions;
- ``sparse_dilated_conv``: one matrix product per kernel tap over just the output pixels whose input
  for that tap is not padding (taps that read only padding are skipped), summed;
- ``max_pool``: the maximum of the window's strided slices, with torch's gradient (all of it to the
  first maximum of each window, in row-major order) as the same kind of sum as the depthwise one;
- ``repeat_pixels``: a broadcast and a reshape (whose gradient is a reshape and a sum);
- ``gather_forward_matrix_backward``: the resize's gathers forward, its gradient a product with the
  transposed interpolation matrix.

Only on the CPU (on GPUs XLA calls cuDNN, which has none of these problems), and only where the
arguments are the kit's (float inputs; transposed: "valid", no dilation or output padding).
"""

import functools

import keras

from backbones.layers.padding import same_total

BACKEND = keras.backend.backend() == "jax"
GROUP_CHUNK = 32  # input channels per dense convolution in grouped_conv (fastest measured: 16-32)

if BACKEND:
    import jax
    import jax.numpy as jnp
    from jax import lax


def enabled():
    """Whether these paths apply: the JAX backend computing on the CPU."""
    return BACKEND and _platform() == "cpu"


@functools.cache
def _platform():
    return jax.default_backend()


def _static(x):
    """Whether ``x`` has concrete sizes (not the symbolic ones of Keras's shape inference)."""
    return all(isinstance(d, int) for d in x.shape)


def _axes(data_format):
    return (1, 2, 3) if data_format == "channels_last" else (2, 3, 1)  # height, width, channels


def _same_pads(size, kernel, stride, dilation):
    """Keras / TensorFlow "same" padding (before, after) of one spatial axis."""
    total = same_total(size, kernel, stride, dilation)
    return total // 2, total - total // 2


def _explicit(x, kernel_hw, strides, padding, dilation, data_format):
    """``x`` zero-padded as Keras's ``padding`` ("valid" / "same") would, for a following valid conv."""
    if padding == "valid":
        return x
    h, w, _ = _axes(data_format)
    widths = [(0, 0)] * 4
    for axis, k, s, d in zip((h, w), kernel_hw, strides, dilation):
        widths[axis] = _same_pads(x.shape[axis], k, s, d)
    return jnp.pad(x, widths)


def conv2d(layer, x):
    """The kit ``Conv2D`` ``layer``'s convolution of ``x`` (before its bias) where a path applies: grouped,
    or dilated with explicit padding and most taps in it; else None."""
    padding = layer.explicit_padding
    if layer.groups == 1:
        if padding is None or max(layer.dilation_rate) == 1 or max(layer.strides) > 1:
            return None
        return sparse_dilated_conv(x, layer.kernel, padding, layer.dilation_rate, layer.data_format)
    return grouped_conv(layer.convolution_op, _pad_explicit(x, padding, layer.data_format), layer.kernel, layer.groups,
                        layer.data_format)


def _pad_explicit(x, padding, data_format):
    """``x`` zero-padded by explicit ((top, bottom), (left, right)) ``padding`` (None: as it is)."""
    if padding is None:
        return x
    h, w, _ = _axes(data_format)
    widths = [(0, 0)] * 4
    widths[h], widths[w] = padding
    return jnp.pad(x, widths)


def depthwise_conv2d(layer, x):
    """The kit ``DepthwiseConv2D`` ``layer``'s convolution of ``x`` (before its bias): the tap form that skips
    padding for a dilated conv with explicit padding mostly read by its taps, else ``depthwise_conv`` of the
    padded input; None for symbolic sizes or integer inputs."""
    padding = layer.explicit_padding
    if padding is not None and max(layer.dilation_rate) > 1 and max(layer.strides) == 1 and layer.kernel.shape[-1] == 1 \
            and jnp.issubdtype(x.dtype, jnp.floating):
        out = sparse_dilated_conv(x, layer.kernel, padding, layer.dilation_rate, layer.data_format, depthwise=True)
        if out is not None:
            return out
    return depthwise_conv(_pad_explicit(x, padding, layer.data_format), layer.kernel, layer.strides, layer.padding,
                          layer.dilation_rate, layer.data_format)


# ----------------------------------------------------------------------------- depthwise


def depthwise_conv(x, kernel, strides, padding, dilation_rate, data_format):
    """``keras.ops.depthwise_conv`` (kernel (kh, kw, C, multiplier)); None for an integer input or symbolic
    sizes (Keras's own op then)."""
    if not jnp.issubdtype(x.dtype, jnp.floating) or not _static(x):
        return None
    kernel, strides, dilation = jnp.asarray(kernel), _pair(strides), _pair(dilation_rate)
    x = _explicit(x, kernel.shape[:2], strides, padding, dilation, data_format)
    kh, kw, c, multiplier = kernel.shape
    if multiplier > 1:  # output channel c * multiplier + m reads input channel c
        x = jnp.repeat(x, multiplier, axis=_axes(data_format)[2])
    kernel = kernel.reshape(kh, kw, c * multiplier, 1)
    dtype = x.dtype
    work = jnp.promote_types(dtype, jnp.float32)  # half-precision inputs summed in float32, as a conv does
    out = _depthwise(x.astype(work), kernel[:, :, :, 0].astype(work), strides, dilation, data_format)
    return out.astype(dtype)


def _pair(value):
    return (int(value),) * 2 if isinstance(value, int) else tuple(int(v) for v in value)


def _tap_weight(w, i, j, data_format):
    """Tap (i, j) of the (kh, kw, C) kernel, shaped to broadcast over the channel axis."""
    return w[i, j] if data_format == "channels_last" else w[i, j][:, None, None]


def _out_size(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def _tap(x, i, j, out_hw, strides, dilation, data_format):
    """The input pixels that kernel tap (i, j) meets, for every output pixel (a strided slice)."""
    h, w, _ = _axes(data_format)
    start, limit, step = [0] * 4, list(x.shape), [1] * 4
    for axis, offset, n, s in ((h, i * dilation[0], out_hw[0], strides[0]), (w, j * dilation[1], out_hw[1], strides[1])):
        start[axis], limit[axis], step[axis] = offset, offset + (n - 1) * s + 1, s
    return lax.slice(x, start, limit, step)


def _untap(g, i, j, in_hw, strides, dilation, data_format):
    """The transpose of ``_tap``: ``g`` placed at the pixels tap (i, j) read, zeros elsewhere."""
    h, w, _ = _axes(data_format)
    config = [(0, 0, 0)] * 4
    for axis, offset, n, s in ((h, i * dilation[0], in_hw[0], strides[0]), (w, j * dilation[1], in_hw[1], strides[1])):
        config[axis] = (offset, n - offset - (g.shape[axis] - 1) * s - 1, s - 1)
    return lax.pad(g, jnp.zeros((), g.dtype), config)


def _tap_sum(x, w, strides, dilation, data_format):
    """sum over taps of ``_tap(x) * w[tap]``: a valid depthwise convolution of ``x`` by ``w`` (kh, kw, C)."""
    h, wa, _ = _axes(data_format)
    kh, kw = w.shape[:2]
    out_hw = (_out_size(x.shape[h], kh, strides[0], dilation[0]), _out_size(x.shape[wa], kw, strides[1], dilation[1]))
    out = None
    for i in range(kh):
        for j in range(kw):
            term = _tap(x, i, j, out_hw, strides, dilation, data_format) * _tap_weight(w, i, j, data_format)
            out = term if out is None else out + term
    return out


if BACKEND:

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
    def _depthwise(x, w, strides, dilation, data_format):
        return _tap_sum(x, w, strides, dilation, data_format)

    def _depthwise_fwd(x, w, strides, dilation, data_format):
        return _tap_sum(x, w, strides, dilation, data_format), (x, w)

    def _depthwise_bwd(strides, dilation, data_format, residuals, g):
        x, w = residuals
        h, wa, c = _axes(data_format)
        kh, kw = w.shape[:2]
        in_hw, out_hw = (x.shape[h], x.shape[wa]), (g.shape[h], g.shape[wa])
        reduce_axes = tuple(a for a in range(4) if a != c)
        if strides == (1, 1):
            # input gradient: the forward's tap sum over the gradient padded once, by the flipped kernel;
            # kernel gradient: one reduction per tap over the zero-placed gradient (the fast reduction form
            # on XLA's CPU backend; over slices of the input it is ~6x slower)
            widths = [(0, 0)] * 4
            widths[h], widths[wa] = ((kh - 1) * dilation[0],) * 2, ((kw - 1) * dilation[1],) * 2
            dx = _tap_sum(jnp.pad(g, widths), w[::-1, ::-1], strides, dilation, data_format)
            dw = [jnp.sum(x * _untap(g, i, j, in_hw, strides, dilation, data_format), axis=reduce_axes)
                  for i in range(kh) for j in range(kw)]
        else:  # strided: the input gradient as zero-placed gradients, the kernel's over the input's strided slices
            dx = None
            for i in range(kh):
                for j in range(kw):
                    term = _untap(g, i, j, in_hw, strides, dilation, data_format) * _tap_weight(w, i, j, data_format)
                    dx = term if dx is None else dx + term
            dw = [jnp.sum(_tap(x, i, j, out_hw, strides, dilation, data_format) * g, axis=reduce_axes)
                  for i in range(kh) for j in range(kw)]
        return dx, jnp.stack(dw).reshape(w.shape)

    _depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


# ----------------------------------------------------------------------------- grouped


def grouped_conv(conv, x, kernel, groups, data_format):
    """A grouped convolution (``groups`` > 1, kernel (kh, kw, C / groups, O)) as dense convolutions
    ``conv(x_chunk, dense_kernel)`` over chunks of about ``GROUP_CHUNK`` input channels, each with the
    block-diagonal kernel of the groups in it; the outputs concatenated on the channel axis. None for
    symbolic sizes."""
    if not _static(x):
        return None
    kernel = jnp.asarray(kernel)
    kh, kw, in_per_group, out_channels = kernel.shape
    out_per_group = out_channels // groups
    per_chunk = max(1, min(groups, GROUP_CHUNK // in_per_group))
    c = _axes(data_format)[2]
    outputs = []
    for first in range(0, groups, per_chunk):
        n = min(per_chunk, groups - first)
        xs = lax.slice_in_dim(x, first * in_per_group, (first + n) * in_per_group, axis=c)
        ks = kernel[..., first * out_per_group:(first + n) * out_per_group]
        outputs.append(conv(xs, _block_diagonal(ks, n)))
    return outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=c)


def _block_diagonal(kernel, groups):
    """(kh, kw, I, groups * O) grouped kernel -> (kh, kw, groups * I, groups * O), zeros off the groups."""
    kh, kw, i, out = kernel.shape
    if groups == 1:
        return kernel
    per_group = kernel.reshape(kh, kw, i, groups, out // groups)
    dense = jnp.einsum("hwigo,Gg->hwGigo", per_group, jnp.eye(groups, dtype=kernel.dtype))
    return dense.reshape(kh, kw, groups * i, out)


# ----------------------------------------------------------------------------- dilated

SPARSE_DILATED_MAX_WORK = 0.6  # the tap form where it computes at most this share of the dense conv's products


def sparse_dilated_conv(x, kernel, padding, dilation, data_format, depthwise=False):
    """A stride-1 conv of ``x`` by ``kernel`` (dense: (kh, kw, C, O); ``depthwise``: (kh, kw, C, 1)) with
    symmetric zero ``padding`` ((ph, ph), (pw, pw)) and ``dilation``, as a sum over the kernel taps of
    products (matrix products; per-channel for depthwise) restricted to the output pixels whose input pixel
    for that tap lies inside ``x``. None where that would not save at least ``1 - SPARSE_DILATED_MAX_WORK``
    of the products, or for symbolic sizes."""
    if not _static(x):
        return None
    kernel = jnp.asarray(kernel)
    kh, kw = kernel.shape[:2]
    h, w, c = _axes(data_format)
    dilation = _pair(dilation)
    rows = _tap_ranges(x.shape[h], kh, padding[0][0], dilation[0])
    cols = _tap_ranges(x.shape[w], kw, padding[1][0], dilation[1])
    out_h, out_w = x.shape[h] + 2 * padding[0][0] - dilation[0] * (kh - 1), x.shape[w] + 2 * padding[1][0] - dilation[1] * (kw - 1)
    work = sum((r[1] - r[0]) * (q[1] - q[0]) for r in rows for q in cols)
    if work > SPARSE_DILATED_MAX_WORK * kh * kw * out_h * out_w:
        return None
    spec = "nhwc,co->nhwo" if data_format == "channels_last" else "nchw,co->nohw"
    out = None
    for i, (o0, o1) in enumerate(rows):
        for j, (q0, q1) in enumerate(cols):
            if o0 >= o1 or q0 >= q1:
                continue  # this tap reads only padding
            start, limit = [0] * 4, list(x.shape)
            start[h], limit[h] = o0 + i * dilation[0] - padding[0][0], o1 + i * dilation[0] - padding[0][0]
            start[w], limit[w] = q0 + j * dilation[1] - padding[1][0], q1 + j * dilation[1] - padding[1][0]
            taken = lax.slice(x, start, limit)
            if depthwise:
                part = taken * _tap_weight(kernel[:, :, :, 0].astype(x.dtype), i, j, data_format)
            else:
                part = jnp.einsum(spec, taken, kernel[i, j].astype(x.dtype))
            widths = [(0, 0)] * 4
            widths[h], widths[w] = (o0, out_h - o1), (q0, out_w - q1)
            part = jnp.pad(part, widths)
            out = part if out is None else out + part
    return out


def _tap_ranges(size, k, pad, dilation):
    """Per kernel tap along one axis: the output range [first, last) whose input index lies in [0, size)."""
    out = size + 2 * pad - dilation * (k - 1)
    return [(min(max(0, pad - t * dilation), out), max(min(out, size + pad - t * dilation), 0)) for t in range(k)]


# ----------------------------------------------------------------------------- transposed


def conv_transpose(x, kernel, strides, data_format):
    """``keras.ops.conv_transpose(x, kernel, strides, padding="valid")`` (kernel (kh, kw, O, I), dilation 1,
    no output padding) as one stride-1 convolution computing the s*s output phases side by side, which are
    then interleaved: output row ``q * s + r`` of phase ``r`` is ``sum_m x[q - m] * kernel[m * s + r]``.
    None for symbolic sizes."""
    if not _static(x):
        return None
    kernel, (sh, sw) = jnp.asarray(kernel), _pair(strides)
    kh, kw, out_channels, in_channels = kernel.shape
    mh, mw = -(-kh // sh), -(-kw // sw)  # taps per phase
    # kernel (kh, kw, O, I) -> zero-filled to (mh * sh, mw * sw), phases split out, taps flipped (a correlation)
    k = jnp.pad(kernel, ((0, mh * sh - kh), (0, mw * sw - kw), (0, 0), (0, 0)))
    k = k.reshape(mh, sh, mw, sw, out_channels, in_channels)[::-1, :, ::-1]
    k = k.transpose(0, 2, 5, 1, 3, 4).reshape(mh, mw, in_channels, sh * sw * out_channels)
    channels_last = data_format == "channels_last"
    h, w, _ = _axes(data_format)
    widths = [(0, 0)] * 4
    widths[h], widths[w] = (mh - 1, mh - 1), (mw - 1, mw - 1)
    y = lax.conv_general_dilated(jnp.pad(x, widths), k.astype(x.dtype), (1, 1), "VALID",
                                 dimension_numbers=("NHWC" if channels_last else "NCHW", "HWIO", "NHWC" if channels_last else "NCHW"))
    n = y.shape[0]
    qh, qw = (y.shape[1], y.shape[2]) if channels_last else (y.shape[2], y.shape[3])
    if channels_last:  # (N, qh, qw, sh, sw, O) -> (N, qh, sh, qw, sw, O)
        y = y.reshape(n, qh, qw, sh, sw, out_channels).transpose(0, 1, 3, 2, 4, 5).reshape(n, qh * sh, qw * sw, out_channels)
        return y[:, : (x.shape[1] - 1) * sh + kh, : (x.shape[2] - 1) * sw + kw]
    y = y.reshape(n, sh, sw, out_channels, qh, qw).transpose(0, 3, 4, 1, 5, 2).reshape(n, out_channels, qh * sh, qw * sw)
    return y[:, :, : (x.shape[2] - 1) * sh + kh, : (x.shape[3] - 1) * sw + kw]


# ----------------------------------------------------------------------------- max-pool, upsampling


def max_pool(x, pool_size, strides, data_format):
    """``keras.ops.max_pool(x, pool_size, strides, padding="valid")``; None for symbolic sizes or non-float input."""
    if not _static(x) or not jnp.issubdtype(x.dtype, jnp.floating):
        return None
    return _max_pool(x, _pair(pool_size), _pair(strides), data_format)


def _window_max(x, pool, strides, data_format):
    h, w, _ = _axes(data_format)
    out_hw = (_out_size(x.shape[h], pool[0], strides[0], 1), _out_size(x.shape[w], pool[1], strides[1], 1))
    taps = [_tap(x, i, j, out_hw, strides, (1, 1), data_format) for i in range(pool[0]) for j in range(pool[1])]
    out = taps[0]
    for tap in taps[1:]:
        out = jnp.maximum(out, tap)
    return out, out_hw


if BACKEND:

    @functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
    def _max_pool(x, pool, strides, data_format):
        return _window_max(x, pool, strides, data_format)[0]

    def _max_pool_fwd(x, pool, strides, data_format):
        out = _window_max(x, pool, strides, data_format)[0]
        return out, (x, out)

    def _max_pool_bwd(pool, strides, data_format, residuals, g):
        x, out = residuals
        h, w, _ = _axes(data_format)
        in_hw, out_hw = (x.shape[h], x.shape[w]), (out.shape[h], out.shape[w])
        taken = jnp.zeros(out.shape, bool)
        zero = jnp.zeros((), g.dtype)
        dx = None
        for i in range(pool[0]):
            for j in range(pool[1]):
                hit = (_tap(x, i, j, out_hw, strides, (1, 1), data_format) == out) & ~taken
                taken = taken | hit
                term = _untap(jnp.where(hit, g, zero), i, j, in_hw, strides, (1, 1), data_format)
                dx = term if dx is None else dx + term
        return (dx,)

    _max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def repeat_pixels(x, factors, data_format):
    """Every pixel repeated ``factors`` (fh, fw) times along height and width (nearest upsampling by
    integers), as a broadcast and a reshape; None for symbolic sizes or ``factors`` None."""
    if factors is None or not _static(x):
        return None
    fh, fw = factors
    if data_format == "channels_last":
        n, height, width, c = x.shape
        y = jnp.broadcast_to(x[:, :, None, :, None, :], (n, height, fh, width, fw, c))
        return y.reshape(n, height * fh, width * fw, c)
    n, c, height, width = x.shape
    y = jnp.broadcast_to(x[:, :, :, None, :, None], (n, c, height, fh, width, fw))
    return y.reshape(n, c, height * fh, width * fw)


def gather_forward_matrix_backward(forward, matrix, x, axis):
    """``forward(x)``, a linear map along ``axis`` equal to the product with ``matrix`` (out, in), whose gradient
    is the product with the transposed matrix (XLA's CPU scatter-add, the gradient of a gather, is slow)."""

    @jax.custom_vjp
    def apply(t, m):
        return forward(t)

    def apply_fwd(t, m):
        return forward(t), m

    def apply_bwd(m, g):
        letters = "abcd"[: g.ndim]
        out = letters.replace(letters[axis], "z")
        return jnp.einsum(f"{letters[axis]}z,{letters}->{out}", m.astype(g.dtype), g), jnp.zeros_like(m)

    apply.defvjp(apply_fwd, apply_bwd)
    return apply(x, lax.stop_gradient(matrix))
