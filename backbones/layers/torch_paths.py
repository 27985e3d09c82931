"""Fast paths on the torch backend: the same numbers, without Keras's per-call copies.

Keras's torch convolution permutes the (kh, kw, in, out) kernel to torch's (out, in, kh, kw)
on every call, and torch then copies that strided view into a contiguous kernel: on a 2-core
CPU this copy (and its gradient's) took ~40% of a Unet-resnet34 training step at 128x128. It
also copies channels_last activations twice per convolution. Here:

- every convolution runs on channels_last memory (torch's ``memory_format=torch.channels_last``),
  whatever the model's data format: a channels_first model's NCHW tensors are channels_last-strided
  (a copy at the first convolution; torch's BatchNorm, activations, adds, concatenations and
  resizes keep that layout), a channels_last model's NHWC tensors are passed as NCHW views. On the
  CPU oneDNN then skips its per-call reorders of activations (Unet-resnet34 channels_first: forward
  ~20%, training ~10% faster), and on a GPU it is cuDNN's NHWC path (what SMP runs at its best);
- the kernel is copied once into torch's layout as one 2-D transpose (kh*kw*in, out) ->
  (out, kh*kw*in), i.e. (out, kh, kw, in) memory viewed as NCHW, in an autograd function whose
  gradient is the same transpose back; under ``torch.no_grad`` (inference) the result is cached
  per layer until the variable changes (its version counter or storage);
- resizing is torch's ``F.interpolate`` (what SMP calls; ``Resize`` reproduces it with gathers,
  two index_selects for a nearest upsampling);
- a Dense layer is torch's ``F.linear`` (one addmm with the bias, the kernel's transpose a view;
  Keras's is a matmul and a separate add), exact GELU is ``F.gelu`` (one kernel; the kit writes it
  with erf, three elementwise kernels here). MiT-b0 Segformer forward: 36 -> 29 ms of matrix
  products, 12 -> 6 ms of GELU.

The convolution arithmetic is torch's own ``F.conv2d``, as in SMP.
"""

import weakref

import keras

ENABLED = keras.backend.backend() == "torch"

if ENABLED:
    import torch
    import torch.nn.functional as F

    class _ToTorchKernel(torch.autograd.Function):
        """(kh, kw, in, out) -> (out, in, kh, kw) with channels_last strides (memory (out, kh, kw, in));
        gradient: the inverse."""

        @staticmethod
        def forward(ctx, kernel, depthwise):
            ctx.shape = kernel.shape
            return _to_torch(kernel, depthwise)

        @staticmethod
        def backward(ctx, grad):  # grad (o, i, kh, kw) -> memory (o, kh, kw, i) -> (kh, kw, i, o), the kernel's shape
            o = grad.shape[0]
            return grad.permute(0, 2, 3, 1).reshape(o, -1).t().contiguous().reshape(ctx.shape), None


def _to_torch(kernel, depthwise=False):
    """A Keras conv kernel (kh, kw, in, out) in torch's layout (out, in, kh, kw); a depthwise one
    (kh, kw, C, multiplier) as torch's (C * multiplier, 1, kh, kw)."""
    kh, kw, i, o = kernel.shape
    if depthwise:
        i, o = 1, i * o
    return kernel.reshape(kh * kw * i, o).t().contiguous().reshape(o, kh, kw, i).permute(0, 3, 1, 2)


_CACHE = weakref.WeakKeyDictionary()  # layer -> (key, torch-layout kernel), inference only


def torch_kernel(layer, kernel):
    """The torch-layout kernel of ``layer`` (``kernel``: its Keras-layout tensor), channels_last strides."""
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    if torch.is_grad_enabled() and kernel.requires_grad:
        return _ToTorchKernel.apply(kernel, depthwise)
    if kernel.device.type == "meta" or torch.compiler.is_compiling() or kernel is not layer.kernel.value:
        return _to_torch(kernel, depthwise)  # symbolic, traced, or a cast copy (mixed precision)
    key = (kernel.data_ptr(), kernel._version)
    cached = _CACHE.get(layer)
    if cached is None or cached[0] != key:
        cached = (key, _to_torch(kernel, depthwise))
        _CACHE[layer] = cached
    return cached[1]


def conv_padding(layer):
    """torch's ``padding`` for a keras Conv2D: 0 for "valid" (the kit's ``explicit_padding`` where set),
    the symmetric padding of a stride-1
    odd-kernel "same"; None where "same" pads asymmetrically (Keras's own path then)."""
    if layer.padding == "valid":
        folded = getattr(layer, "explicit_padding", None)
        return 0 if folded is None else (folded[0][0], folded[1][0])
    if max(layer.strides) == 1 and all(k % 2 for k in layer.kernel_size):
        return tuple(d * (k - 1) // 2 for k, d in zip(layer.kernel_size, layer.dilation_rate))
    return None


def conv2d(layer, inputs, padding):
    """``layer``'s convolution (a keras Conv2D or DepthwiseConv2D) of ``inputs``, bias included (added by
    torch's conv itself), ``padding`` from ``conv_padding``."""
    channels_last = layer.data_format == "channels_last"
    x = inputs.permute(0, 3, 1, 2) if channels_last else inputs.contiguous(memory_format=torch.channels_last)
    weight = torch_kernel(layer, keras.ops.convert_to_tensor(layer.kernel))  # an autocast copy under a mixed policy
    bias = keras.ops.cast(layer.bias, weight.dtype) if layer.use_bias else None
    groups = x.shape[1] // weight.shape[1]
    out = F.conv2d(x, weight, bias, layer.strides, padding, layer.dilation_rate, groups)
    return out.permute(0, 2, 3, 1) if channels_last else out


def max_pool2d(layer, inputs):
    """A kit MaxPooling2D with folded padding as torch's ``F.max_pool2d(..., padding=p)`` (its implicit -inf
    padding; the layer's 0 for a non-negative input gives the same maxima, p <= pool // 2 keeps a valid pixel
    in every window)."""
    channels_last = layer.data_format == "channels_last"
    out = F.max_pool2d(inputs.permute(0, 3, 1, 2) if channels_last else inputs, layer.pool_size, layer.strides,
                       (layer.explicit_padding[0][0], layer.explicit_padding[1][0]))
    return out.permute(0, 2, 3, 1) if channels_last else out


def interpolate(x, size, scale_factor, mode, align_corners, data_format):
    """torch's own ``F.interpolate`` (``size`` or ``scale_factor``), which keras-seg's ``Resize`` mirrors."""
    channels_last = data_format == "channels_last"
    corners = align_corners if mode in ("bilinear", "bicubic") else None
    out = F.interpolate(x.permute(0, 3, 1, 2) if channels_last else x, size=size, scale_factor=scale_factor,
                        mode=mode, align_corners=corners)
    return out.permute(0, 2, 3, 1) if channels_last else out


def linear(layer, inputs):
    """A Dense ``layer`` (kernel (in, out)) as ``F.linear``, its activation after; None for symbolic inputs."""
    if not isinstance(inputs, torch.Tensor) or inputs.device.type == "meta":
        return None
    kernel = keras.ops.convert_to_tensor(layer.kernel)  # an autocast copy under a mixed policy
    bias = None if layer.bias is None else keras.ops.cast(layer.bias, kernel.dtype)
    out = F.linear(inputs.to(kernel.dtype), kernel.t(), bias)
    return out if layer.activation is None else layer.activation(out)


def gelu(x):
    """torch's exact ``F.gelu`` of ``x``; None for a symbolic ``x``."""
    if not isinstance(x, torch.Tensor) or x.device.type == "meta":
        return None
    return F.gelu(x)


def _fusable(inputs):
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    return (isinstance(inputs, torch.Tensor) and inputs.device.type != "meta" and not in_stateless_scope()
            and not torch.compiler.is_compiling() and inputs.ndim >= 2)


def _batch_norm_dtypes(layer, inputs):
    """Whether torch's batch_norm takes these dtypes as Keras computes them: float32 inputs and statistics,
    or half-precision inputs with float32 statistics (torch then computes in float32 and returns the
    input's dtype, as Keras's BatchNormalization does for mixed policies)."""
    stats = layer.moving_mean.value.dtype
    return stats == torch.float32 and inputs.dtype in (torch.float32, torch.bfloat16, torch.float16)


def batch_norm_inference(layer, inputs):
    """An inference-mode ``BatchNorm`` as torch's one ``F.batch_norm`` with the running statistics (Keras
    computes it in three to four elementwise kernels)."""
    if not _fusable(inputs) or not _batch_norm_dtypes(layer, inputs):
        return None
    axis = layer.axis % inputs.ndim
    x = inputs.movedim(axis, 1) if axis != 1 else inputs
    out = F.batch_norm(x, layer.moving_mean.value, layer.moving_variance.value,
                       layer.gamma.value if layer.scale else None, layer.beta.value if layer.center else None,
                       training=False, eps=layer.epsilon)
    return out.movedim(1, axis) if axis != 1 else out


def batch_norm_training(layer, inputs, momentum):
    """A training-mode ``BatchNorm`` (the kit's) as torch's one fused ``F.batch_norm``: the batch normalised
    with its biased variance, the running statistics updated by torch itself (unbiased variance, torch's
    ``momentum``) on copies that are then assigned, so the Keras variables change as Keras expects.
    None where the fast path does not apply (symbolic / meta tensors, traced graphs, other dtypes)."""
    if not _fusable(inputs) or not _batch_norm_dtypes(layer, inputs):
        return None
    axis = layer.axis % inputs.ndim
    x = inputs.movedim(axis, 1) if axis != 1 else inputs  # channels_last: a channels_last-strided view
    running_mean = layer.moving_mean.value.detach().clone()
    running_var = layer.moving_variance.value.detach().clone()
    weight = layer.gamma.value if layer.scale else None
    bias = layer.beta.value if layer.center else None
    out = F.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=float(momentum),
                       eps=layer.epsilon)
    layer.moving_mean.assign(running_mean)
    layer.moving_variance.assign(running_var)
    return out.movedim(1, axis) if axis != 1 else out


def fused_adam_step(optimizer, grads, variables, learning_rate, weight_decay):
    """keras_seg's TorchAdam update of every variable as torch's fused Adam kernel (``torch._fused_adam_``,
    what ``torch.optim.Adam(fused=True)`` runs: torch's update rule, one pass per tensor, where Keras runs
    five elementwise kernels and their temporaries). False (nothing done) where it does not apply."""
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    params = [v.value for v in variables]
    if not params or in_stateless_scope() or torch.compiler.is_compiling() \
            or len({(p.device, p.dtype) for p in params}) != 1 or params[0].dtype != torch.float32 \
            or params[0].device.type not in ("cpu", "cuda"):
        return False
    index = [optimizer._get_variable_index(v) for v in variables]
    exp_avgs = [optimizer._momentums[i].value for i in index]
    exp_avg_sqs = [optimizer._velocities[i].value for i in index]
    max_exp_avg_sqs = [optimizer._velocity_hats[i].value for i in index] if optimizer.amsgrad else []
    step = torch.full((), float(keras.ops.convert_to_numpy(optimizer.iterations)) + 1.0, device=params[0].device)
    lr = float(keras.ops.convert_to_numpy(learning_rate))
    with torch.no_grad():
        torch._fused_adam_(params, [g.to(torch.float32) for g in grads], exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                           [step] * len(params), lr=lr, beta1=float(optimizer.beta_1), beta2=float(optimizer.beta_2),
                           weight_decay=float(weight_decay), eps=float(optimizer.epsilon), amsgrad=bool(optimizer.amsgrad),
                           maximize=False)
    return True
