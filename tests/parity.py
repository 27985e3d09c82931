"""Helpers that compare keras-seg with SMP (the reference) and exercise models.

Every comparison goes through SMP's own checkpoint format: the SMP model (random
weights, randomised BatchNorm statistics) is written with SMP's save_pretrained and
read with keras_seg.from_pretrained, so each parity test also tests interop.
"""

import tempfile

import keras
import numpy as np
import torch

import keras_seg

BACKEND = keras.backend.backend()


def randomize_batchnorm(module, seed=0):
    """Give every BatchNorm non-default statistics and affine parameters (in place)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return module


def smp_model(cls_name, seed=0, **kwargs):
    """An SMP model in eval mode with seeded random weights and randomised BatchNorms."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    kwargs.setdefault("encoder_weights", None)
    model = getattr(smp, cls_name)(**kwargs).eval()
    return randomize_batchnorm(model, seed)


def trained(module, steps=3, size=64, seed=0):
    """``module`` after ``steps`` training-mode forward passes (no weight update): BatchNorm
    running statistics and ``num_batches_tracked`` counters as a trained checkpoint has them."""
    gen = torch.Generator().manual_seed(seed)
    in_channels = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    module.train()
    with torch.no_grad():
        for _ in range(steps):
            module(torch.rand(2, in_channels, size, size, generator=gen))
    return module.eval()


def to_keras(smp_module, data_format, **overrides):
    """Port an SMP model through SMP's save_pretrained and keras_seg.from_pretrained."""
    with tempfile.TemporaryDirectory() as d:
        smp_module.save_pretrained(d)
        return keras_seg.from_pretrained(d, data_format=data_format, **overrides)


def image(shape_nchw, seed=0):
    return np.random.RandomState(seed).rand(*shape_nchw).astype("float32")


def to_format(x_nchw, data_format):
    return x_nchw if data_format == "channels_first" else np.transpose(x_nchw, (0, 2, 3, 1))


def to_nchw(x, data_format):
    x = keras.ops.convert_to_numpy(x)
    return x if data_format == "channels_first" or x.ndim != 4 else np.transpose(x, (0, 3, 1, 2))


def run_smp(model, x_nchw):
    with torch.inference_mode():
        out = model(torch.from_numpy(x_nchw))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in outs]


def infer(model, x):
    """``model(x)`` in inference mode; on JAX as one compiled call (eager JAX compiles every op for
    every new shape: a densenet121's features took 200 s eagerly on 2 cores)."""
    if BACKEND == "jax":
        return model.predict_on_batch(x)
    return model(x, training=False)


def run_keras(model, x_nchw, data_format):
    out = infer(model, to_format(x_nchw, data_format))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [to_nchw(o, data_format) for o in outs]


def relative_error(actual, expected):
    """Max abs difference relative to the reference output's scale (max abs value)."""
    scale = max(float(np.abs(expected).max()), 1e-6)
    return float(np.abs(np.asarray(actual, "float64") - expected).max()) / scale


def assert_parity(smp_module, x_nchw, data_format, tol=1e-4, **overrides):
    """Port ``smp_module``, run both on ``x_nchw``; every output agrees within ``tol`` of its scale."""
    model = to_keras(smp_module, data_format, **overrides)
    expected = run_smp(smp_module, x_nchw)
    actual = run_keras(model, x_nchw, data_format)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, (a.shape, e.shape)
        err = relative_error(a, e)
        assert err < tol, f"relative error {err:.2e} >= {tol:.0e} on {BACKEND}/{data_format}"
    return model


def assert_state_dicts_identical(a, b):
    """Two torch state_dicts hold the same keys and bit-identical tensors."""
    assert set(a) == set(b), sorted(set(a) ^ set(b))[:10]
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


# The layout each backend trains fastest in; gradient tests run in it (parity tests cover both).
NATIVE_FORMAT = "channels_first" if BACKEND == "torch" else "channels_last"


def train_step_gradients(model, x, y, aligned=False):
    """One loss/gradient computation; returns the gradient arrays (per backend): those that exist,
    or with ``aligned`` one per trainable variable (None where a variable gets no gradient)."""
    loss_fn = keras.losses.MeanSquaredError()
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = model(x, training=True)
            out = out[0] if isinstance(out, (list, tuple)) else out
            loss = loss_fn(y, out)
        grads = tape.gradient(loss, model.trainable_variables)
        return [None if g is None else keras.ops.convert_to_numpy(g) for g in grads if aligned or g is not None]
    if BACKEND == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def compute(tv):
            out, _ = model.stateless_call(tv, non_trainable, x, training=True)
            out = out[0] if isinstance(out, (list, tuple)) else out
            return loss_fn(y, out)

        return [np.asarray(g) for g in jax.jit(jax.grad(compute))(trainable)]  # compiled: eager is far slower
    model.zero_grad()
    out = model(x, training=True)
    out = out[0] if isinstance(out, (list, tuple)) else out
    loss = loss_fn(y, out)
    loss.backward()
    return [None if v.value.grad is None else v.value.grad.cpu().numpy() for v in model.trainable_variables
            if aligned or v.value.grad is not None]


def assert_trains(model, x_nchw, data_format):
    """A training step yields finite, non-zero gradients for the model's variables."""
    x = to_format(x_nchw, data_format)
    out = model(x, training=False)
    out = out[0] if isinstance(out, (list, tuple)) else out
    y = np.random.RandomState(1).rand(*keras.ops.shape(out)).astype("float32")
    grads = train_step_gradients(model, x, y)
    assert len(grads) > 0
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert any(np.abs(g).max() > 0 for g in grads)


def assert_fit_step(model, x_nchw):
    """One compiled ``train_on_batch`` step (what model.fit runs; jit-compiled on JAX, where the
    eager per-op gradients of ``assert_trains`` cost several times more): finite loss and weights,
    and the update reaches both the segmentation head and the encoder's first conv."""
    x = to_format(x_nchw, "channels_last")
    y = np.random.RandomState(1).rand(*model.compute_output_spec(keras.KerasTensor(x.shape)).shape).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    watched = ("conv1/kernel", "segmentation_head-0/kernel")
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables if v.path in watched}
    loss = float(np.asarray(model.train_on_batch(x, y)))
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(v))) for v in model.trainable_variables)
    assert sorted(before) == sorted(watched)
    for v in model.trainable_variables:
        if v.path in before:
            assert not np.array_equal(keras.ops.convert_to_numpy(v), before[v.path]), v.path


def _ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    grid = np.concatenate([a, b])
    cdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / len(s)  # noqa: E731
    return float(np.abs(cdf(a) - cdf(b)).max())


def assert_same_init(model, build_reference, prefixes=("decoder.", "segmentation_head.", "classification_head."),
                     samples=5, alpha=1e-6):
    """The initial values of ``model``'s tensors under ``prefixes`` are drawn as SMP's own modules
    draw theirs: ``build_reference(seed)`` builds the SMP model (its own initialisation code) for
    ``samples`` seeds, pooled per tensor. A tensor SMP sets to a constant must equal it; any other
    must vary, and pass a two-sample KS test (level ``alpha``) and a std comparison against the
    pool (the RNGs differ, so the numbers cannot be compared). Returns the number of tensors."""
    ours = model.torch_state_dict()
    pools = {}
    for seed in range(samples):
        for key, t in build_reference(seed).state_dict().items():
            if key.startswith(prefixes) and not key.endswith("num_batches_tracked"):
                pools.setdefault(key, []).append(t.detach().numpy().astype("float64").ravel())
    assert pools, prefixes
    assert {k for k in ours if k.startswith(prefixes) and not k.endswith("num_batches_tracked")} == set(pools)
    critical = np.sqrt(-np.log(alpha / 2) / 2)
    for key, pool in pools.items():
        a, b = np.asarray(ours[key], "float64").ravel(), np.concatenate(pool)
        if b.min() == b.max():
            np.testing.assert_array_equal(a, np.full_like(a, b[0]), err_msg=key)
            continue
        assert a.min() < a.max() or a.size == 1, f"{key}: constant {a[0]}, SMP's are drawn at random"
        n, m = a.size, b.size
        d = _ks_statistic(a, b)
        assert d < critical * np.sqrt((n + m) / (n * m)), f"{key}: KS statistic {d:.3f} against SMP's initialisation"
        if n >= 16:  # the std of a uniform/normal sample of n is within ~0.7/sqrt(n) (one sigma) of the true one
            ratio = a.std() / b.std()
            assert abs(ratio - 1) < 5 * 0.71 / np.sqrt(n), f"{key}: std {a.std():.4g}, SMP's {b.std():.4g}"
    return len(pools)


def tmpdir():
    return tempfile.mkdtemp(prefix="keras_seg_test_")


def offline_hub_snapshot(cache, monkeypatch, repo_id, revision="0" * 40):
    """An empty snapshot folder of ``repo_id`` in a Hugging Face cache at ``cache``, which
    huggingface_hub (and so SMP) then reads offline, by revision or as "main"."""
    from huggingface_hub import constants

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return snapshot


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("os", "tempfile", "keras", "np", "torch")]
