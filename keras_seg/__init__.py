"""keras-seg: segmentation_models_pytorch architectures as Keras 3 models.

The same model code runs on the torch, TensorFlow and JAX backends (KERAS_BACKEND),
reads and writes SMP checkpoints, and trains with ``model.fit``. Every architecture
in ``keras_seg/decoders/`` is exported here under its class name (Unet, FPN, ...).
"""

import os

# TensorFlow's oneDNN CPU kernels train these models ~1.5x faster on a CPU without AVX-512
# (measured: Unet-ResNet18 step 0.19 s vs 0.29 s) and are the only TF CPU kernels that run
# channels_first; TF enables them by itself only on AVX-512 CPUs. Effective when keras_seg is
# imported before TensorFlow (the keras-seg command); set TF_ENABLE_ONEDNN_OPTS=0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from backbones import get_encoder, list_encoders, register_encoder  # noqa: E402
from keras_seg.architectures import ARCHITECTURES, create_model, get_architecture, register_architecture  # noqa: E402
from keras_seg.base import InputShapeError, SegmentationModel  # noqa: E402
from keras_seg.hub import from_pretrained  # noqa: E402
from keras_seg import losses, metrics  # noqa: E402

__version__ = "0.1.0"

globals().update({cls.__name__: cls for cls in ARCHITECTURES.values()})

__all__ = [
    "ARCHITECTURES",
    "InputShapeError",
    "SegmentationModel",
    "create_model",
    "losses",
    "metrics",
    "from_pretrained",
    "get_architecture",
    "get_encoder",
    "list_encoders",
    "register_architecture",
    "register_encoder",
    *sorted(cls.__name__ for cls in ARCHITECTURES.values()),
]
