"""Data-parallel training on two CPU devices, each backend in its own subprocess.

* JAX: ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` and
  ``keras.distribution.DataParallel`` (through ``keras_seg.training.data_parallel``
  and ``keras-seg train --data-parallel``).
* TensorFlow: two logical CPU devices (``tf.config.set_logical_device_configuration``)
  and ``tf.distribute.MirroredStrategy``; the loss must equal the single-device loss.

Each runs only under its own backend's test session (a subprocess per backend would
triple the cost of the suite); under torch, ``data_parallel`` raises (see test_training).
"""

import os
import subprocess
import sys
import textwrap

import keras
import pytest

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMON = """
    import numpy as np
    import keras
    import keras_seg
    from keras_seg import training
    from keras_seg.data import SegmentationDataLoader, SyntheticSegmentation

    # No BatchNorm in training mode (decoder without norm, encoder frozen: its BatchNorms use their
    # statistics), so two replicas' half batches give exactly the full batch's mean gradient.
    TINY = dict(encoder_name="resnet18", encoder_depth=2, encoder_weights=None, decoder_channels=(16, 8), classes=1,
                decoder_use_norm=False)
    data = SegmentationDataLoader(SyntheticSegmentation(8, 32), 4, drop_remainder=True)

    def run(devices=None):
        keras.utils.set_random_seed(0)
        with training.data_parallel(devices) as replicas:
            model = keras_seg.Unet(**TINY)
            model.freeze_encoder()
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.BinaryCrossentropy(from_logits=True))
            before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
            loss = model.evaluate(data, verbose=0, return_dict=True)["loss"]
            history = model.fit(data, epochs=1, verbose=0).history
            updates = [keras.ops.convert_to_numpy(v) - b for v, b in zip(model.trainable_variables, before)]
        return replicas, model, loss, history, updates

    def assert_same_training(parallel, single):
        # the same loss before, and the same weight updates after two SGD steps, within 1e-4 of their scale
        (_, _, loss, history, updates), (_, _, loss1, history1, updates1) = parallel, single
        assert abs(loss - loss1) < 1e-5 * abs(loss1), (loss, loss1)
        assert abs(history["loss"][0] - history1["loss"][0]) < 1e-5 * abs(history1["loss"][0]), (history, history1)
        assert len(updates) == len(updates1) > 0
        for u, u1 in zip(updates, updates1):
            scale = np.abs(u1).max()
            assert scale > 0 and np.abs(u - u1).max() < 1e-4 * scale, (np.abs(u - u1).max(), scale)
"""

JAX_SCRIPT = COMMON + """
    import jax
    assert len(jax.devices()) == 2, jax.devices()
    parallel = run()
    replicas, model = parallel[:2]
    assert replicas.num_replicas == 2, replicas
    assert "batch" in str(model.trainable_weights[0].value.sharding.mesh), model.trainable_weights[0].value.sharding
    single = run(jax.devices()[:1])
    assert single[0].num_replicas == 1
    assert_same_training(parallel, single)
    loss = parallel[2]

    from keras_seg import cli
    out = sys.argv[1]
    code = cli.main(["train", "--output", out, "--epochs", "1", "--train-samples", "8", "--val-samples", "4",
                     "--image-size", "32", "--encoder-depth", "2", "--decoder-channels", "16,8", "--batch-size", "4",
                     "--metrics", "iou", "--data-parallel", "--verbose", "0"])
    assert code == 0, code
    assert os.path.exists(os.path.join(out, "model.keras"))
    print("OK", replicas, loss)
"""

TF_SCRIPT = """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
""" + COMMON + """
    parallel = run(["/cpu:0", "/cpu:1"])
    replicas, model = parallel[:2]
    assert replicas.num_replicas == 2, replicas
    assert type(model.trainable_weights[0].value).__name__ == "MirroredVariable"
    single = run(["/cpu:0"])
    assert single[0].num_replicas == 1
    assert_same_training(parallel, single)
    print("OK", replicas, parallel[2])
"""


def _run(script, backend, extra_env, tmp_path):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, **extra_env)
    code = "import os, sys\n" + textwrap.dedent(script)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "OK" in result.stdout


@pytest.mark.skipif(BACKEND != "jax", reason="runs in the JAX backend's session")
def test_jax_data_parallel_two_devices(tmp_path):
    _run(JAX_SCRIPT, "jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, tmp_path)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="runs in the TensorFlow backend's session")
def test_tf_mirrored_strategy_two_devices(tmp_path):
    _run(TF_SCRIPT, "tensorflow", {}, tmp_path)
