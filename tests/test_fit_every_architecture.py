"""model.fit for every architecture with keras_seg losses and metrics; evaluate and predict on Unet.

One fit per architecture, on one fixed batch of the synthetic set (a learnable toy task):
three steps of SMP-style training must lower the loss (at some step), and update every trainable variable
(Adam moves each one that gets a non-zero gradient, so one left as it was got none). The one
exception is exact: the bias of a conv feeding only a training-mode BatchNorm, which subtracts the
batch mean, has a zero gradient in exact arithmetic (SMP's PAN gets 0.0 in torch for its FPA's
1-channel convs at 1x1 too); rounding leaves it zero or tiny.

evaluate and predict compile Keras's own test and predict steps, which do not depend on the
architecture (every architecture's inference forward is compared with SMP in its own module): they
run on Unet only, since each costs one more compile per architecture on TensorFlow and JAX (CI time).
"""

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg import training
from keras_seg.data import SegmentationDataLoader, SyntheticSegmentation
from tests.arch_configs import ARCH_CONFIGS, INPUT_SIZES

STEPS = 3  # epochs of one batch each


def _bias_before_batchnorm(model, variable):
    """``variable`` is the bias of a conv whose output goes to BatchNorms only."""
    layer = next((l for l in model.layers if getattr(l, "bias", None) is variable), None)
    consumers = [node.operation for node in getattr(layer, "_outbound_nodes", [])]
    return (isinstance(layer, keras.layers.Conv2D) and consumers
            and all(isinstance(c, keras.layers.BatchNormalization) for c in consumers))


# Both data formats for every architecture on torch (eager: cheap; channels_first is its fast layout),
# channels_first on Unet only on TensorFlow and JAX, where each case is one more compile.
CASES = [(arch, "channels_last") for arch in sorted(ARCH_CONFIGS)] + [
    (arch, "channels_first") for arch in sorted(ARCH_CONFIGS) if keras.backend.backend() == "torch" or arch == "unet"]


@pytest.mark.parametrize("arch, data_format", CASES)
def test_fit(arch, data_format):
    size = INPUT_SIZES.get(arch, 64)
    # classes=4: the synthetic multiclass set's labels are 0..3 (the losses refuse others on eager torch)
    model = keras_seg.create_model(arch, encoder_name="resnet18", encoder_weights=None, classes=4, data_format=data_format,
                                   **ARCH_CONFIGS[arch])
    training.compile_for(model, "multiclass", metrics=["iou"])  # Dice + cross-entropy, stateful IoU, Adam 1e-3
    data = SegmentationDataLoader(
        SyntheticSegmentation(2, size, mode="multiclass", max_shapes=2), batch_size=2, mode="multiclass", classes=4,
        data_format=model.data_format,
    )
    assert len(data) == 1  # the same batch every step
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    history = model.fit(data, epochs=STEPS, verbose=0).history
    losses = history["loss"]
    assert np.all(np.isfinite(losses)) and all(0.0 <= iou <= 1.0 for iou in history["iou"])
    # at some step (Adam's early steps on a batch of 2 can overshoot: FPN on TensorFlow went 4.23, 4.15, 5.75)
    assert min(losses[1:]) < losses[0], f"{arch}: the loss did not fall on a fixed batch: {losses}"
    unchanged = [v.path for v, b in zip(model.trainable_variables, before)
                 if np.array_equal(keras.ops.convert_to_numpy(v), b) and not _bias_before_batchnorm(model, v)]
    assert unchanged == [], f"{arch}: {len(unchanged)} trainable variable(s) got no gradient: {unchanged[:10]}"
    channels_last = model.data_format == "channels_last"
    spec = model.compute_output_spec(keras.KerasTensor((2, size, size, 3) if channels_last else (2, 3, size, size)))
    assert tuple(spec.shape) == ((2, size, size, 4) if channels_last else (2, 4, size, size))  # symbolic: no compile
    if arch == "unet":
        _evaluate_and_predict(model, data, size)


def _evaluate_and_predict(model, data, size):
    scores = model.evaluate(data, verbose=0, return_dict=True)
    assert np.isfinite(scores["loss"]) and 0.0 <= scores["iou"] <= 1.0
    out = model.predict(data, verbose=0)
    expected = (2, size, size, 4) if model.data_format == "channels_last" else (2, 4, size, size)
    assert out.shape == expected and np.all(np.isfinite(out))
