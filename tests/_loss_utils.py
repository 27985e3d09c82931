"""Helpers shared by tests/test_losses.py and tests/test_metrics.py.

Import this after tests/conftest.py has imported torch / SMP (it does so
before Keras because of an import-order segfault with TensorFlow).
"""

import keras
import numpy as np
import torch

BACKEND = keras.backend.backend()


def nhwc_to_nchw(x):
    """Channels-last numpy array -> channels-first (rank >= 3)."""
    x = np.asarray(x)
    return np.moveaxis(x, -1, 1) if x.ndim >= 3 else x


def nchw_to_nhwc(x):
    x = np.asarray(x)
    return np.moveaxis(x, 1, -1) if x.ndim >= 3 else x


def to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def keras_value_and_grad(fn, y_pred):
    """Value of ``fn(y_pred)`` (a Keras computation) and its gradient with
    respect to ``y_pred``, using the active backend's autodiff.

    ``fn`` must return a tensor; the gradient is taken of its sum.
    """
    y_pred = np.asarray(y_pred, dtype="float32")
    if BACKEND == "torch":
        x = torch.tensor(y_pred, requires_grad=True)
        out = fn(x)
        out.sum().backward()
        grad = x.grad
        return to_numpy(out), (None if grad is None else to_numpy(grad))
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(y_pred)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
            total = tf.reduce_sum(out)
        grad = tape.gradient(total, x)
        return out.numpy(), (None if grad is None else grad.numpy())
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def total(p):
            out = fn(p)
            return jnp.sum(out), out

        # One XLA compilation per case (eager JAX compiles every primitive
        # for every new shape, which is much slower); also checks that the
        # computation is jit-traceable.
        (_, out), grad = (jax.value_and_grad(total, has_aux=True))(
            jnp.asarray(y_pred)
        )
        return np.asarray(out), np.asarray(grad)
    raise NotImplementedError(BACKEND)


def torch_value_and_grad(fn, y_pred_nchw):
    """Value and gradient (w.r.t. the NCHW input) of a torch computation."""
    x = torch.tensor(np.asarray(y_pred_nchw, dtype="float32"), requires_grad=True)
    out = fn(x)
    if out.requires_grad:
        out.sum().backward()
    grad = x.grad
    if grad is None:
        grad = torch.zeros_like(x)
    return to_numpy(out), to_numpy(grad)


class ErrorLog:
    """Records the largest absolute differences seen (for the report)."""

    worst = {"value": 0.0, "grad": 0.0, "metric": 0.0}

    @classmethod
    def record(cls, kind, a, b):
        a = np.asarray(a, dtype="float64")
        b = np.asarray(b, dtype="float64")
        finite = np.isfinite(a) & np.isfinite(b)
        if finite.any():
            err = float(np.max(np.abs(a[finite] - b[finite])))
            cls.worst[kind] = max(cls.worst[kind], err)


def assert_close(actual, expected, kind="value", atol=1e-5, rtol=1e-5):
    actual = np.asarray(actual, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    ErrorLog.record(kind, actual, expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
