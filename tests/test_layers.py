"""The layer kit against the torch modules it stands for (torch, SMP's and timm's own layers)."""

import keras
import numpy as np
import pytest
import torch
from segmentation_models_pytorch.encoders._efficientnet import Conv2dStaticSamePadding
from timm.layers import Conv2dSame, DropPath as TimmDropPath, SEModule
from timm.layers.pool2d_same import MaxPool2dSame

from backbones import layers as L
from backbones.layers.initializers import _host_drawable, _numpy_draw
from tests.parity import image, relative_error, to_format, to_nchw
from weight_ports.translate import load_state_dict


def _run(build, x_nchw, data_format, state=None):
    """Build a functional model from ``build(tensor)``, load torch ``state``, run it on ``x_nchw``."""
    c = x_nchw.shape[1]
    shape = (None, None, c) if data_format == "channels_last" else (c, None, None)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, build(inputs))
    if state is not None:
        load_state_dict(model, {k: v.detach().numpy() for k, v in state.items()})
    return to_nchw(model(to_format(x_nchw, data_format), training=False), data_format), model


def _torch(module, x_nchw):
    with torch.inference_mode():
        return module.eval()(torch.from_numpy(x_nchw)).numpy()


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, groups",
    [(3, 1, 1, 1, 1), (3, 2, 1, 1, 1), (7, 2, 3, 1, 1), (3, 1, 2, 2, 1), (1, 2, 0, 1, 1), (3, 2, 1, 1, 4), (5, 2, 2, 1, 16), (3, 1, 1, 1, 16), (3, 2, 2, 2, 1), (3, 2, 2, 2, 16)],
)
def test_conv2d_matches_torch(kernel, stride, padding, dilation, groups, data_format):
    # Outputs 8 wide with 16 channels (stride 2) and 16 wide (stride 1): a width equal to the
    # channels is where Keras's own TensorFlow bias add goes wrong in channels_first.
    torch.manual_seed(0)
    ref = torch.nn.Conv2d(16, 16, kernel, stride, padding, dilation, groups=groups)
    x = image((2, 16, 15, 16))
    out, model = _run(
        lambda t: L.conv2d(t, 16, kernel, "conv", data_format=data_format, stride=stride, padding=padding, dilation=dilation, groups=groups),
        x, data_format, {"conv.weight": ref.weight, "conv.bias": ref.bias},
    )
    assert relative_error(out, _torch(ref, x)) < 1e-5
    if groups == 16:  # groups == channels: a depthwise layer, ported from torch's (C, 1, kh, kw)
        assert any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)


@pytest.mark.parametrize("kernel, stride, dilation", [(3, 2, 1), (5, 2, 1), (3, 1, 2), (1, 1, 1), (4, 2, 1)])
@pytest.mark.parametrize("size", [(15, 16), (32, 31)])
def test_tf_same_conv_matches_timm_conv2d_same(kernel, stride, dilation, size, data_format):
    torch.manual_seed(0)
    ref = Conv2dSame(4, 6, kernel, stride, dilation=dilation)
    x = image((1, 4, *size))
    out, _ = _run(
        lambda t: L.conv2d(t, 6, kernel, "conv", data_format=data_format, stride=stride, padding=L.TF_SAME, dilation=dilation),
        x, data_format, {"conv.weight": ref.weight, "conv.bias": ref.bias},
    )
    assert relative_error(out, _torch(ref, x)) < 1e-5


@pytest.mark.parametrize("kernel, stride, image_size", [(3, 2, 224), (5, 2, 112), (3, 1, 56), (5, 2, 57)])
def test_static_same_padding_matches_smp_efficientnet(kernel, stride, image_size, data_format):
    """Padding fixed from the nominal image size, also when the input has another size."""
    torch.manual_seed(0)
    ref = Conv2dStaticSamePadding(4, 6, kernel, stride, image_size=image_size, bias=False)
    x = image((1, 4, 20, 21))
    padding = L.static_same_padding(image_size, kernel, stride)
    out, _ = _run(
        lambda t: L.conv2d(t, 6, kernel, "conv", data_format=data_format, stride=stride, padding=padding, use_bias=False),
        x, data_format, {"conv.weight": ref.weight},
    )
    assert relative_error(out, _torch(ref, x)) < 1e-5


def test_separable_conv2d_matches_torch(data_format):
    torch.manual_seed(0)
    depthwise = torch.nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, bias=False)
    pointwise = torch.nn.Conv2d(6, 10, 1)
    x = image((2, 6, 16, 16))
    out, _ = _run(
        lambda t: L.separable_conv2d(t, 10, 3, "dw", "pw", data_format=data_format, padding=2, dilation=2),
        x, data_format, {"dw.weight": depthwise.weight, "pw.weight": pointwise.weight, "pw.bias": pointwise.bias},
    )
    assert relative_error(out, _torch(torch.nn.Sequential(depthwise, pointwise), x)) < 1e-5


@pytest.mark.parametrize("kernel, stride, padding", [(4, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_conv_transpose2d_matches_torch(kernel, stride, padding, data_format):
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(6, 8, kernel, stride, padding)
    x = image((2, 6, 4, 8 // stride))  # output width 8 == channels (Keras's bias-add trap)
    out, _ = _run(
        lambda t: L.conv_transpose2d(t, 8, kernel, "up", data_format=data_format, stride=stride, padding=padding),
        x, data_format, {"up.weight": ref.weight, "up.bias": ref.bias},
    )
    assert relative_error(out, _torch(ref, x)) < 1e-5


@pytest.mark.parametrize(
    "kind, module",
    [
        ("relu", torch.nn.ReLU()), ("relu6", torch.nn.ReLU6()), ("silu", torch.nn.SiLU()), ("swish", torch.nn.SiLU()),
        ("hard_swish", torch.nn.Hardswish()), ("hard_sigmoid", torch.nn.Hardsigmoid()), ("gelu", torch.nn.GELU()),
        ("sigmoid", torch.nn.Sigmoid()), ("tanh", torch.nn.Tanh()), ("mish", torch.nn.Mish()),
        ("leaky_relu", torch.nn.LeakyReLU()), ("identity", torch.nn.Identity()),
    ],
)
def test_activations_match_torch(kind, module):
    x = (image((1, 3, 8, 9)) - 0.5) * 16  # covers both sides of every kink (+-3, +-6)
    out, _ = _run(lambda t: L.activation(t, kind), x, "channels_first")
    assert np.abs(out - _torch(module, x)).max() < 1e-5


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="Unknown activation 'gelu_fast'; valid choices"):
        L.activation(keras.Input((4, 4, 3)), "gelu_fast")


def test_squeeze_excite_matches_timm(data_format):
    torch.manual_seed(0)
    ref = SEModule(16, rd_channels=4)
    x = image((2, 16, 9, 8))
    state = {f"se.{k}": v for k, v in ref.state_dict().items()}
    out, _ = _run(lambda t: L.squeeze_excite(t, 4, "se-fc1", "se-fc2", data_format=data_format), x, data_format, state)
    assert relative_error(out, _torch(ref, x)) < 1e-5


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 2, L.TF_SAME), (2, 2, L.TF_SAME), (3, 1, L.TF_SAME)])
def test_max_pool_matches_torch(kernel, stride, padding, data_format):
    x = image((1, 3, 15, 16)) - 2.0  # negative: padding must be -inf, not 0
    ref = MaxPool2dSame(kernel, stride) if padding == L.TF_SAME else torch.nn.MaxPool2d(kernel, stride, padding)
    out, _ = _run(lambda t: L.max_pool(t, kernel, stride, padding, data_format=data_format), x, data_format)
    assert relative_error(out, _torch(ref, x)) < 1e-6


def _output_and_input_gradient(fn, x, upstream):
    """``fn(x)`` and the gradient of ``sum(fn(x) * upstream)`` with respect to ``x``, on the active backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        out, vjp = jax.vjp(fn, x)
        return out, vjp(upstream)[0]
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
        return out, tape.gradient(out, x, output_gradients=tf.convert_to_tensor(upstream))
    x = torch.tensor(x, requires_grad=True)
    out = fn(x)
    out.backward(torch.from_numpy(upstream))
    return out.detach(), x.grad


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 2, 1), (3, 1, 1), (5, 2, 2)])
@pytest.mark.parametrize("after_relu", [False, True])
def test_padded_max_pool_and_gradient_match_torch(kernel, stride, padding, after_relu, data_format):
    """The max-pool with its padding folded in (torch's own padded max-pool on the torch backend) gives torch's
    outputs and input gradients, ties included; after a ReLU with zero padding (``nonnegative=True``)."""
    x = np.round(image((2, 3, 11, 12)) * 4) / 4 - 0.5  # many equal values per window, some negative
    c = x.shape[1]
    inputs = keras.Input((None, None, c) if data_format == "channels_last" else (c, None, None))
    y = keras.layers.ReLU()(inputs) if after_relu else inputs
    model = keras.Model(inputs, L.max_pool(y, kernel, stride, padding, data_format=data_format, nonnegative=after_relu))
    assert not any(isinstance(layer, (keras.layers.ZeroPadding2D, L.padding.ConstantPad)) for layer in model.layers)
    module = torch.nn.Sequential(*([torch.nn.ReLU()] if after_relu else []), torch.nn.MaxPool2d(kernel, stride, padding))
    with torch.no_grad():
        upstream = image(tuple(module(torch.from_numpy(x)).shape), seed=1) - 0.5
    ref = torch.from_numpy(x).requires_grad_()
    ref_out = module(ref)
    ref_out.backward(torch.from_numpy(upstream))
    out, dx = _output_and_input_gradient(lambda t: model(t), to_format(x, data_format), to_format(upstream, data_format))
    np.testing.assert_array_equal(to_nchw(out, data_format), ref_out.detach().numpy())
    assert relative_error(to_nchw(dx, data_format), ref.grad.numpy()) < 1e-6


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 3, 1), (2, 3, 0)])
@pytest.mark.parametrize("size", [(15, 16), (16, 13)])
def test_max_pool_ceil_mode_matches_torch(kernel, stride, padding, size, data_format):
    x = image((1, 3, *size)) - 2.0  # negative: the partial window must ignore what lies outside
    ref = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
    out, _ = _run(lambda t: L.max_pool(t, kernel, stride, padding, data_format=data_format, ceil_mode=True), x, data_format)
    assert out.shape == _torch(ref, x).shape
    assert relative_error(out, _torch(ref, x)) < 1e-6


def test_max_pool_ceil_mode_static_shape():
    x = keras.Input((16, 13, 3))
    assert tuple(L.max_pool(x, 3, 2, data_format="channels_last", ceil_mode=True).shape) == (None, 8, 6, 3)
    with pytest.raises(ValueError, match="ceil_mode=True takes torch's symmetric padding"):
        L.max_pool(x, 3, 2, L.TF_SAME, data_format="channels_last", ceil_mode=True)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_group_softmax_matches_torch(groups, data_format):
    x = image((2, 6 * groups, 3, 2)) * 8.0 - 4.0
    out, _ = _run(lambda t: L.group_softmax(t, groups, data_format=data_format), x, data_format)
    expected = torch.from_numpy(x).view(2, groups, 6, 3, 2).softmax(1).view(2, 6 * groups, 3, 2).numpy()
    assert relative_error(out, expected) < 1e-6


@pytest.mark.parametrize("kernel, stride, padding, include", [(3, 1, 1, False), (3, 2, 1, True), (2, 2, 0, True), (3, 1, 1, True)])
def test_avg_pool_matches_torch(kernel, stride, padding, include, data_format):
    x = image((1, 3, 15, 16))
    ref = torch.nn.AvgPool2d(kernel, stride, padding, count_include_pad=include)
    out, _ = _run(lambda t: L.avg_pool(t, kernel, stride, padding, data_format=data_format, count_include_pad=include), x, data_format)
    assert relative_error(out, _torch(ref, x)) < 1e-6


def test_avg_pool_refuses_what_it_cannot_reproduce():
    with pytest.raises(ValueError, match="count_include_pad=False needs stride 1"):
        L.avg_pool(keras.Input((8, 8, 3)), 3, 2, 1, data_format="channels_last", count_include_pad=False)


def test_drop_path_is_identity_at_inference_and_drops_samples_in_training():
    x = np.ones((4000, 2, 2, 3), "float32")
    layer = L.DropPath(0.25, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = out.reshape(len(x), -1)
    assert set(np.unique(per_sample)) <= {0.0, np.float32(1 / 0.75)}
    assert np.all(per_sample.min(1) == per_sample.max(1))  # whole samples, as timm's drop_path
    kept = float((per_sample[:, 0] > 0).mean())
    ref = TimmDropPath(0.25).train()(torch.ones(4000, 3, 2, 2)).reshape(4000, -1)[:, 0].gt(0).float().mean().item()
    assert abs(kept - 0.75) < 0.03 and abs(ref - 0.75) < 0.03
    assert abs(out.mean() - 1.0) < 0.05  # expectation kept, as torch scales by 1 / keep
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        L.DropPath(1.0)


def test_norms_match_torch(data_format):
    torch.manual_seed(0)
    x = image((2, 8, 5, 6))
    bn = torch.nn.BatchNorm2d(8)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    out, _ = _run(lambda t: L.batch_norm(t, "bn", data_format=data_format), x, data_format, {f"bn.{k}": v for k, v in bn.state_dict().items() if "num_batches" not in k})
    assert relative_error(out, _torch(bn, x)) < 1e-5
    gn = torch.nn.GroupNorm(4, 8)
    out, _ = _run(lambda t: L.group_norm(t, 4, "gn", data_format=data_format), x, data_format, {"gn.weight": gn.weight, "gn.bias": gn.bias})
    assert relative_error(out, _torch(gn, x)) < 1e-5
    ln = torch.nn.LayerNorm(8, eps=1e-6)
    torch.nn.init.uniform_(ln.weight)
    out, _ = _run(lambda t: L.layer_norm_2d(t, "ln", data_format), x, data_format, {"ln.weight": ln.weight, "ln.bias": ln.bias})
    expected = _torch(ln, np.ascontiguousarray(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert relative_error(out, expected) < 1e-5


def test_split_and_concat_channels_match_torch(data_format, tmp_path):
    """``x[:, :3]``, ``x[:, 3:8]``, ``x[:, 8:]`` and ``torch.cat`` of them in reverse order; kept by .keras saving."""
    x = image((2, 10, 5, 4))
    parts = torch.from_numpy(x).split([3, 5, 2], dim=1)
    expected = [p.numpy() for p in parts] + [torch.cat(parts[::-1], dim=1).numpy()]

    def build(t):
        pieces = L.split_channels(t, [3, 5, 2], data_format=data_format)
        return list(pieces) + [L.concat_channels(pieces[::-1], data_format=data_format)]

    c = x.shape[1]
    inputs = keras.Input((None, None, c) if data_format == "channels_last" else (c, None, None))
    model = keras.Model(inputs, build(inputs))
    model.save(tmp_path / "split.keras")
    loaded = keras.saving.load_model(tmp_path / "split.keras")
    for m in (model, loaded):
        actual = [to_nchw(keras.ops.convert_to_numpy(a), data_format) for a in m(to_format(x, data_format))]
        assert [a.shape for a in actual] == [e.shape for e in expected]
        for a, e in zip(actual, expected):
            np.testing.assert_array_equal(a, e)
    assert L.concat_channels(inputs, data_format=data_format) is inputs
    assert L.split_channels(inputs, [c], data_format=data_format) == [inputs]
    with pytest.raises(ValueError, match="needs 9 channels, got 10"):
        L.split_channels(inputs, [4, 5], data_format=data_format)


def test_kit_layers_survive_keras_saving(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = L.conv2d(inputs, 4, 3, "conv", data_format="channels_last", stride=2, padding=L.TF_SAME)
    x = L.max_pool(x, 3, 2, 1, data_format="channels_last")  # its -inf padding folded into the pool
    x = L.pad(x, 1, "channels_last", value=-1.0)
    x = L.max_pool(x, 3, 2, data_format="channels_last", ceil_mode=True)
    x = L.group_softmax(x, 2, data_format="channels_last")
    x = L.drop_path(x, 0.1)
    model = keras.Model(inputs, x)
    model.save(tmp_path / "kit.keras")
    loaded = keras.saving.load_model(tmp_path / "kit.keras")
    x = image((1, 17, 18, 3)) - 0.5
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    assert {type(layer).__name__ for layer in loaded.layers} >= {"SamePad", "ConstantPad", "CeilPad", "GroupSoftmax", "DropPath"}
    padded_pool = next(layer for layer in loaded.layers if getattr(layer, "explicit_padding", None) is not None)
    assert (padded_pool.explicit_padding, padded_pool.pad_value) == (((1, 1), (1, 1)), float("-inf"))


RANDOM_INITIALIZERS = [
    keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=1),  # torch_conv_init
    keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform", seed=2),  # torch_default_init
    keras.initializers.VarianceScaling(1.0, "fan_avg", "truncated_normal", seed=3),
    keras.initializers.HeUniform(seed=4),
    keras.initializers.GlorotUniform(seed=5),
    keras.initializers.RandomUniform(-0.1, 0.3, seed=6),
    keras.initializers.RandomNormal(0.5, 0.02, seed=7),
    keras.initializers.TruncatedNormal(0.0, 0.02, seed=8),
]


@pytest.mark.parametrize("initializer", RANDOM_INITIALIZERS, ids=lambda i: type(i).__name__)
def test_host_drawn_initial_weights_follow_keras_distributions(initializer):
    """The kit's layers draw Keras's random initializers with numpy on JAX (eager jax.random
    compiles per shape): the same distribution as Keras's own draw, reproducible from the seed."""
    shape = (3, 3, 64, 96)
    assert _host_drawable(initializer)
    ours = _numpy_draw(initializer, shape)
    theirs = np.asarray(keras.ops.convert_to_numpy(initializer(shape)), dtype="float64")
    assert ours.shape == shape
    np.testing.assert_allclose([ours.mean(), ours.std()], [theirs.mean(), theirs.std()], atol=0.02 * theirs.std() + 1e-6)
    q = [0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0]
    if isinstance(initializer, (keras.initializers.RandomNormal,)) or getattr(initializer, "distribution", "") == "untruncated_normal":
        q = q[2:-2]  # an unbounded distribution's far tails are noise
    np.testing.assert_allclose(np.quantile(ours, q), np.quantile(theirs, q), atol=0.05 * theirs.std())
    np.testing.assert_array_equal(ours, _numpy_draw(initializer, shape))


def test_kit_layers_draw_their_initial_weights_on_the_host_on_jax():
    layer = L.Conv2D(8, 3, kernel_initializer=keras.initializers.HeUniform(seed=3), name="c")
    layer.build((None, 5, 5, 4))
    host = _numpy_draw(keras.initializers.HeUniform(seed=3), (3, 3, 4, 8)).astype("float32")
    if keras.config.backend() == "jax":
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), host)
    else:  # the backend's own draw where it is cheap
        assert not np.array_equal(keras.ops.convert_to_numpy(layer.kernel), host)


@pytest.mark.parametrize("kernel, stride, padding, dilation, groups, bias", [
    (3, 1, 1, 1, 1, True), (3, 2, L.TF_SAME, 1, 1, False), (5, 2, 2, 1, 6, False), (3, 1, 2, 2, 6, True),
    (1, 1, 0, 1, 1, False), (3, 2, 2, 2, 2, True),
])
def test_cond_conv2d_matches_timm(kernel, stride, padding, dilation, groups, bias, data_format):
    """The kit's CondConv2D as timm's CondConv2d (per-sample expert mixes, timm's weight / bias layout),
    plain, grouped and depthwise, torch and TF "SAME" padding, dilated, strided and dilated."""
    from timm.layers import CondConv2d

    torch.manual_seed(0)
    timm_padding = "same" if padding == L.TF_SAME else padding
    ref = CondConv2d(6, 6, kernel, stride, timm_padding, dilation, groups, bias, num_experts=3).eval()
    x, routing = image((2, 6, 11, 10)), np.random.default_rng(0).uniform(size=(2, 3)).astype("float32")
    shape = (None, None, 6) if data_format == "channels_last" else (6, None, None)
    inputs, r = keras.Input(shape), keras.Input((3,))
    y = L.cond_conv2d(inputs, r, 6, kernel, "cc", num_experts=3, data_format=data_format, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, use_bias=bias)
    model = keras.Model([inputs, r], y)
    load_state_dict(model, {f"cc.{k}": v.detach().numpy() for k, v in ref.state_dict().items()})
    with torch.inference_mode():
        expected = ref(torch.from_numpy(x), torch.from_numpy(routing)).numpy()
    out = to_nchw(keras.ops.convert_to_numpy(model([to_format(x, data_format), routing])), data_format)
    assert out.shape == expected.shape
    assert relative_error(out, expected) < 1e-5


def test_cond_conv2d_survives_keras_saving(tmp_path):
    inputs, routing = keras.Input((None, None, 4)), keras.Input((3,))
    x = L.cond_conv2d(inputs, routing, 4, 3, "cc", num_experts=3, data_format="channels_last", stride=2,
                      padding=L.TF_SAME, groups=4, use_bias=True)
    model = keras.Model([inputs, routing], x)
    model.save(tmp_path / "cc.keras")
    loaded = keras.saving.load_model(tmp_path / "cc.keras")
    x, r = image((2, 9, 8, 4)), np.random.default_rng(1).uniform(size=(2, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded([x, r])), keras.ops.convert_to_numpy(model([x, r])))
