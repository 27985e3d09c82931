"""model.fit / evaluate / predict for every architecture with keras_seg losses and metrics."""

import numpy as np
import pytest

import keras_seg
from keras_seg import training
from keras_seg.data import SegmentationDataLoader, SyntheticSegmentation
from tests.arch_configs import ARCH_CONFIGS, INPUT_SIZES


@pytest.mark.parametrize("arch", sorted(ARCH_CONFIGS))
def test_fit_evaluate_predict(arch):
    size = INPUT_SIZES.get(arch, 64)
    # classes=4: the synthetic multiclass set's labels are 0..3 (the losses refuse others on eager torch)
    model = keras_seg.create_model(arch, encoder_name="resnet18", encoder_weights=None, classes=4, **ARCH_CONFIGS[arch])
    training.compile_for(model, "multiclass", metrics=["iou"])  # Dice + cross-entropy, stateful IoU
    data = SegmentationDataLoader(
        SyntheticSegmentation(4, size, mode="multiclass", max_shapes=2), batch_size=2, mode="multiclass", classes=4,
        data_format=model.data_format,
    )
    history = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and 0.0 <= history["iou"][0] <= 1.0
    scores = model.evaluate(data, verbose=0, return_dict=True)
    assert np.isfinite(scores["loss"]) and 0.0 <= scores["iou"] <= 1.0
    out = model.predict(data, verbose=0)
    expected = (4, size, size, 4) if model.data_format == "channels_last" else (4, 4, size, size)
    assert out.shape == expected and np.all(np.isfinite(out))
