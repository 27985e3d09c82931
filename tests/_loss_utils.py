"""Helpers shared by tests/test_losses.py and tests/test_metrics.py.

Import this after tests/conftest.py has imported torch / SMP (it does so
before Keras because of an import-order segfault with TensorFlow).
"""

import json
import os

import keras
import numpy as np
import pytest
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


def keras_value_and_grad(fn, y_pred, compiled=False):
    """Value of ``fn(y_pred)`` (a Keras computation) and its gradient with
    respect to ``y_pred``, using the active backend's autodiff.

    ``fn`` must return a tensor; the gradient is taken of its sum. With
    ``compiled=True`` the computation runs under ``jax.jit`` /
    ``tf.function`` (torch: eagerly, as Keras does).
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

        def value_and_grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = fn(x)
                total = tf.reduce_sum(out)
            return out, tape.gradient(total, x)

        if compiled:
            value_and_grad = tf.function(value_and_grad)
        out, grad = value_and_grad(tf.constant(y_pred))
        return out.numpy(), (None if grad is None else grad.numpy())
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def total(p):
            out = fn(p)
            return jnp.sum(out), out

        # Eager on purpose: JAX caches its per-primitive compilations by
        # shape, and most cases share shapes, which is much cheaper than one
        # jit compilation per case. Traceability is checked by the
        # compiled=True cases of test_losses.py and the fit tests.
        value_and_grad = jax.value_and_grad(total, has_aux=True)
        if compiled:
            value_and_grad = jax.jit(value_and_grad)
        (_, out), grad = value_and_grad(jnp.asarray(y_pred))
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

    worst = {}

    @classmethod
    def record(cls, kind, a, b):
        a = np.asarray(a, dtype="float64")
        b = np.asarray(b, dtype="float64")
        finite = np.isfinite(a) & np.isfinite(b)
        if finite.any():
            diff = np.abs(a[finite] - b[finite])
            rel = diff / np.maximum(np.abs(b[finite]), 1.0)
            for key, err in ((kind, diff.max()), (kind + "_rel", rel.max())):
                cls.worst[key] = max(cls.worst.get(key, 0.0), float(err))


def assert_close(actual, expected, kind="value", atol=1e-5, rtol=1e-5):
    actual = np.asarray(actual, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    ErrorLog.record(kind, actual, expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(scope="module", autouse=False)
def report_worst_errors():
    """Module fixture: with KERAS_SEG_PARITY_REPORT=path set, append the
    largest differences measured against SMP to that file (JSON lines)."""
    yield
    path = os.environ.get("KERAS_SEG_PARITY_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"backend": BACKEND, **ErrorLog.worst}) + "\n")
