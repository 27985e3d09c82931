"""keras-seg: segmentation_models_pytorch architectures as Keras 3 models.

The same model code runs on the torch, TensorFlow and JAX backends (KERAS_BACKEND),
reads and writes SMP checkpoints, and trains with ``model.fit``. Every architecture
in ``keras_seg/decoders/`` is exported here under its class name (Unet, FPN, ...).
"""

from keras_seg import _startup

# Before Keras / TensorFlow are imported: oneDNN CPU kernels (effective when keras_seg is
# imported before TensorFlow, as the keras-seg command does; TF_ENABLE_ONEDNN_OPTS=0 opts out),
# XLA's CPU convolutions on Eigen for the JAX backend (before JAX is imported), triton loaded ahead of TensorFlow (importing it after TensorFlow crashes), and in the
# keras-seg command the backend's start-up log lines held back. See keras_seg/_startup.py.
_startup.enable_onednn()
_startup.tune_xla_cpu()
_startup.preload_triton()

with _startup.quiet_backend_start():
    from backbones import get_encoder, list_encoders, register_encoder, register_keras_hub_backbone
    from keras_seg.architectures import ARCHITECTURES, create_model, get_architecture, register_architecture
    from keras_seg.base import InputShapeError, SegmentationModel
    from keras_seg.hub import from_pretrained
    from keras_seg import losses, metrics

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
    "register_keras_hub_backbone",
    *sorted(cls.__name__ for cls in ARCHITECTURES.values()),
]
