"""Segmentation losses: Keras 3 ports of ``segmentation_models_pytorch.losses``.

All losses are ``keras.losses.Loss`` subclasses called as
``loss(y_true, y_pred, sample_weight=None)`` on channels-last tensors (or
channels-first with ``data_format="channels_first"`` /
``keras.config.image_data_format()``), use ``keras.ops`` only (torch,
TensorFlow and JAX backends) and return SMP's value on the same inputs.
"""

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
    "JaccardLoss",
    "LovaszLoss",
    "MCCLoss",
    "SoftBCEWithLogitsLoss",
    "SoftCrossEntropyLoss",
    "TverskyLoss",
]
