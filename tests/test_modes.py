"""One definition of the segmentation modes and their check (keras_seg.modes)."""

import pytest

import keras_seg.modes as modes
from keras_seg import losses, metrics, training
from keras_seg.data import folder, loader, synthetic
from keras_seg.losses import _base as loss_base
from keras_seg.losses import constants as loss_constants
from keras_seg.metrics import functional, metric


def test_every_module_uses_the_one_definition():
    for module in (loss_constants, functional, synthetic):
        assert module.MODES is modes.MODES
    for module in (loss_base, metric, synthetic, folder, loader, training):
        assert module.check_mode is modes.check_mode
    assert (modes.BINARY_MODE, modes.MULTICLASS_MODE, modes.MULTILABEL_MODE) == modes.MODES


@pytest.mark.parametrize("bad", ["multi-class", None, 3])
def test_one_error_everywhere(bad):
    expected = rf"Invalid `mode`: {bad!r}\. Expected one of \['binary', 'multiclass', 'multilabel'\]\."
    for make in (
        lambda: modes.check_mode(bad),
        lambda: synthetic.SyntheticSegmentation(4, 16, mode=bad),
        lambda: losses.DiceLoss(bad),
        lambda: metrics.IoUScore(bad, num_classes=2),
    ):
        with pytest.raises(ValueError, match=expected):
            make()

