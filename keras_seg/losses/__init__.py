"""Segmentation losses: Keras 3 ports of ``segmentation_models_pytorch.losses``.

All losses are ``keras.losses.Loss`` subclasses called as
``loss(y_true, y_pred, sample_weight=None)`` on channels-last tensors (or
channels-first with ``data_format="channels_first"`` /
``keras.config.image_data_format()``), use ``keras.ops`` only (torch,
TensorFlow and JAX backends) and return SMP's value on the same inputs.

Target checks: called eagerly (torch's ``model.fit``, any direct call), every loss
raises ``LabelRangeError`` (a ``ValueError`` and, like SMP's error, a
``RuntimeError``) naming the offending values when ``y_true`` holds a multiclass
label outside ``[0, C)`` or a binary / multilabel target outside ``[0, 1]``, other
than ``ignore_index``. Under jit (``tf.function`` / XLA, which ``model.fit`` uses on
TensorFlow, and ``jax.jit``, always used on JAX) values are not known and no check
runs: an out-of-range multiclass label then matches no class (a one-hot row of
zeros: the pixel adds nothing to a cross-entropy's likelihood term, and its
prediction counts as a false positive in Dice / Jaccard / Tversky / focal / Lovasz), and a
binary target outside ``[0, 1]`` enters the formulas as it is. ``FolderDataset``
therefore checks every mask as it is read, and ``keras-seg train`` checks all of
them before training.
"""

from keras_seg.losses._base import LabelRangeError
from keras_seg.losses.constants import BINARY_MODE
from keras_seg.losses.constants import MULTICLASS_MODE
from keras_seg.losses.constants import MULTILABEL_MODE
from keras_seg.losses.dice import DiceLoss
from keras_seg.losses.focal import FocalLoss
from keras_seg.losses.jaccard import JaccardLoss
from keras_seg.losses.lovasz import LovaszLoss
from keras_seg.losses.mcc import MCCLoss
from keras_seg.losses.soft_bce import SoftBCEWithLogitsLoss
from keras_seg.losses.soft_ce import SoftCrossEntropyLoss
from keras_seg.losses.tversky import TverskyLoss

__all__ = [
    "BINARY_MODE",
    "MULTICLASS_MODE",
    "MULTILABEL_MODE",
    "DiceLoss",
    "FocalLoss",
    "LabelRangeError",
    "JaccardLoss",
    "LovaszLoss",
    "MCCLoss",
    "SoftBCEWithLogitsLoss",
    "SoftCrossEntropyLoss",
    "TverskyLoss",
]
