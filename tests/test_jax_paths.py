"""The JAX backend's CPU fast paths (backbones/layers/jax_paths.py) against torch: outputs and gradients
of the kit's depthwise, grouped and transposed convolutions, both data formats."""

import keras
import numpy as np
import pytest
import torch

from backbones import layers as L
from backbones.layers import jax_paths
from tests.parity import image, relative_error, to_format, to_nchw
from weight_ports.translate import load_state_dict

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX backend paths")


def _keras_and_grads(build, x_nchw, state, data_format, upstream_nchw):
    """The kit model's output for ``x_nchw`` and the gradients of ``sum(output * upstream)`` with respect
    to the input and every weight (named as torch's), computed by jax.vjp through the jitted model."""
    import jax

    c = x_nchw.shape[1]
    inputs = keras.Input((None, None, c) if data_format == "channels_last" else (c, None, None))
    model = keras.Model(inputs, build(inputs))
    load_state_dict(model, {k: v.detach().numpy() for k, v in state.items()})
    trainable = [v.value for v in model.trainable_variables]

    def forward(x, weights):
        out, _ = model.stateless_call(weights, [v.value for v in model.non_trainable_variables], x)
        return out

    x = to_format(x_nchw, data_format)
    out, vjp = jax.vjp(jax.jit(forward), x, trainable)
    dx, dweights = vjp(to_format(upstream_nchw, data_format))
    return to_nchw(out, data_format), to_nchw(dx, data_format), {v.path: np.asarray(d) for v, d in zip(model.trainable_variables, dweights)}


def _torch_and_grads(module, x_nchw, upstream_nchw):
    x = torch.from_numpy(x_nchw).requires_grad_()
    out = module(x)
    out.backward(torch.from_numpy(upstream_nchw))
    return out.detach().numpy(), x.grad.numpy(), {name: p.grad.numpy() for name, p in module.named_parameters()}


def _check(build, module, name, x, data_format, kernel_layout):
    """Forward, input gradient and weight / bias gradients of the kit layer ``name`` equal torch's."""
    torch.manual_seed(0)
    with torch.no_grad():
        ref_out = module(torch.from_numpy(x))
    upstream = image(tuple(ref_out.shape), seed=1) - 0.5
    ref_out, ref_dx, ref_grads = _torch_and_grads(module, x, upstream)
    state = {f"{name}.{k}": v for k, v in module.state_dict().items()}
    out, dx, grads = _keras_and_grads(build, x, state, data_format, upstream)
    assert relative_error(out, ref_out) < 1e-5
    assert relative_error(dx, ref_dx) < 1e-5
    kernel = next(g for path, g in grads.items() if path.endswith("kernel"))
    assert relative_error(np.transpose(kernel, kernel_layout), ref_grads["weight"]) < 1e-5
    if "bias" in ref_grads:
        bias = next(g for path, g in grads.items() if path.endswith("bias"))
        assert relative_error(bias, ref_grads["bias"]) < 1e-5


def test_paths_are_on_for_the_cpu():
    assert jax_paths.enabled()


@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (4, 2, 1, 1)])
def test_depthwise_conv_and_gradients_match_torch(kernel, stride, padding, dilation, data_format):
    module = torch.nn.Conv2d(8, 8, kernel, stride, padding, dilation, groups=8, bias=True)
    build = lambda t: L.conv2d(t, 8, kernel, "dw", data_format=data_format, stride=stride, padding=padding,  # noqa: E731
                               dilation=dilation, groups=8)
    _check(build, module, "dw", image((2, 8, 13, 12)), data_format, (2, 3, 0, 1))  # (kh, kw, C, 1) -> (C, 1, kh, kw)


@pytest.mark.parametrize("groups, in_channels, out_channels, stride", [(4, 8, 12, 1), (32, 64, 64, 2), (16, 128, 64, 1), (2, 8, 8, 1)])
def test_grouped_conv_and_gradients_match_torch(groups, in_channels, out_channels, stride, data_format):
    module = torch.nn.Conv2d(in_channels, out_channels, 3, stride, 1, groups=groups)
    build = lambda t: L.conv2d(t, out_channels, 3, "conv", data_format=data_format, stride=stride, padding=1,  # noqa: E731
                               groups=groups)
    _check(build, module, "conv", image((2, in_channels, 9, 10)), data_format, (3, 2, 0, 1))


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("kernel, dilation", [(3, 6), (3, 12), (5, 3), (3, 8)])
def test_dilated_conv_over_padding_and_gradients_match_torch(kernel, dilation, depthwise, data_format):
    """Dilations whose taps read mostly padding (ASPP on a small map): the tap form, skipping padding."""
    padding, channels = dilation * (kernel - 1) // 2, 6
    out = channels if depthwise else 4
    x = image((2, channels, 10, 9))
    assert jax_paths.sparse_dilated_conv(
        to_format(x, data_format), np.zeros((kernel, kernel, channels, 1 if depthwise else out), "float32"),
        ((padding, padding),) * 2, dilation, data_format, depthwise=depthwise) is not None  # the path applies to these
    groups = channels if depthwise else 1
    module = torch.nn.Conv2d(channels, out, kernel, 1, padding, dilation, groups=groups)
    build = lambda t: L.conv2d(t, out, kernel, "conv", data_format=data_format, padding=padding, dilation=dilation,  # noqa: E731
                               groups=groups)
    _check(build, module, "conv", x, data_format, (2, 3, 0, 1) if depthwise else (3, 2, 0, 1))


@pytest.mark.parametrize("kernel, stride, padding", [(4, 2, 1), (2, 2, 0), (3, 2, 1), (4, 4, 0), (3, 1, 1), (5, 3, 2)])
def test_conv_transpose_and_gradients_match_torch(kernel, stride, padding, data_format):
    module = torch.nn.ConvTranspose2d(6, 5, kernel, stride, padding)
    build = lambda t: L.conv_transpose2d(t, 5, kernel, "up", data_format=data_format, stride=stride, padding=padding)  # noqa: E731
    _check(build, module, "up", image((2, 6, 7, 9)), data_format, (3, 2, 0, 1))  # (kh, kw, O, I) -> (I, O, kh, kw)


def test_half_precision_depthwise_sums_in_float32():
    """A bfloat16 depthwise conv is summed in float32 and rounded once (as XLA's conv does)."""
    import jax.numpy as jnp

    x = jnp.asarray(image((1, 9, 9, 16)), jnp.bfloat16)
    w = jnp.asarray(image((3, 3, 16, 1), seed=2), jnp.bfloat16)
    out = jax_paths.depthwise_conv(x, w, 1, "valid", 1, "channels_last")
    exact = keras.ops.depthwise_conv(x.astype(jnp.float32), w.astype(jnp.float32), 1, "valid")
    assert out.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out), np.asarray(exact.astype(jnp.bfloat16)))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_max_pool_and_gradient_match_torch_with_ties(kernel, stride, padding, data_format):
    """torch sends a window's gradient to its first maximum (row-major): ties included (values on a coarse grid)."""
    import jax

    x = np.round(image((2, 3, 11, 12)) * 4) / 4 - 0.5  # many equal values per window
    module = torch.nn.MaxPool2d(kernel, stride, padding)
    inputs = keras.Input((None, None, 3) if data_format == "channels_last" else (3, None, None))
    model = keras.Model(inputs, L.max_pool(inputs, kernel, stride, padding, data_format=data_format))
    out, vjp = jax.vjp(jax.jit(lambda t: model(t)), to_format(x, data_format))
    upstream = image(tuple(np.shape(to_nchw(out, data_format))), seed=1) - 0.5
    (dx,) = vjp(to_format(upstream, data_format))
    ref_out, ref_dx, _ = _torch_and_grads(module, x, upstream)
    np.testing.assert_array_equal(to_nchw(out, data_format), ref_out)
    assert relative_error(to_nchw(dx, data_format), ref_dx) < 1e-6


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("target", [2, (15, 21)])  # a scale factor; a reference tensor of 3x the size
def test_nearest_upsampling_by_integers_matches_torch(mode, target, data_format):
    import jax

    from keras_seg.layers.resize import Resize

    x = image((2, 3, 5, 7))
    if isinstance(target, tuple):
        layer, size = Resize(mode, data_format=data_format), target
        reference = np.zeros(to_format(np.zeros((1, 1, *target)), data_format).shape, "float32")
        run = lambda t: layer([t, reference])  # noqa: E731
    else:
        layer, size = Resize(mode, scale_factor=target, data_format=data_format), (5 * target, 7 * target)
        run = layer
    out, vjp = jax.vjp(jax.jit(run), to_format(x, data_format))
    upstream = image((2, 3, *size), seed=1)
    (dx,) = vjp(to_format(upstream, data_format))
    ref = torch.from_numpy(x).requires_grad_()
    y = torch.nn.functional.interpolate(ref, size=size, mode=mode)
    y.backward(torch.from_numpy(upstream))
    np.testing.assert_array_equal(to_nchw(out, data_format), y.detach().numpy())
    assert relative_error(to_nchw(dx, data_format), ref.grad.numpy()) < 1e-6


@pytest.mark.parametrize("mode, align_corners", [("bilinear", False), ("bilinear", True), ("bicubic", False)])
@pytest.mark.parametrize("target", [2, 0.5, (12, 9)])  # scale factors; a reference tensor's size
def test_linear_resizing_as_matrices_and_gradients_match_torch(mode, align_corners, target, data_format):
    """Bilinear / bicubic resizing by interpolation matrices (the gradient a product, not a scatter-add)."""
    import jax

    from keras_seg.layers.resize import Resize

    x = image((2, 3, 6, 8))
    if isinstance(target, tuple):
        layer, size, factor = Resize(mode, align_corners=align_corners, data_format=data_format), target, None
        reference = np.zeros(to_format(np.zeros((1, 1, *target)), data_format).shape, "float32")
        run = lambda t: layer([t, reference])  # noqa: E731
    else:
        layer, size, factor = Resize(mode, align_corners=align_corners, scale_factor=target, data_format=data_format), None, target
        run = layer
    out, vjp = jax.vjp(jax.jit(run), to_format(x, data_format))
    ref = torch.from_numpy(x).requires_grad_()
    y = torch.nn.functional.interpolate(ref, size=size, scale_factor=factor, mode=mode, align_corners=align_corners)
    upstream = image(tuple(y.shape), seed=1)
    y.backward(torch.from_numpy(upstream))
    (dx,) = vjp(to_format(upstream, data_format))
    assert relative_error(to_nchw(out, data_format), y.detach().numpy()) < 1e-6
    assert relative_error(to_nchw(dx, data_format), ref.grad.numpy()) < 1e-6
