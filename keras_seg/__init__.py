"""keras-seg: segmentation_models_pytorch architectures as Keras 3 models.

The same model code runs on the torch, TensorFlow and JAX backends (KERAS_BACKEND),
reads and writes SMP checkpoints, and trains with ``model.fit``.
"""

from backbones import get_encoder, list_encoders, register_encoder
from keras_seg.architectures import ARCHITECTURES, create_model, register_architecture
from keras_seg.base import InputShapeError, SegmentationModel
from keras_seg.decoders.unet import Unet
from keras_seg.hub import from_pretrained

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "InputShapeError",
    "SegmentationModel",
    "Unet",
    "create_model",
    "from_pretrained",
    "get_encoder",
    "list_encoders",
    "register_architecture",
    "register_encoder",
]
