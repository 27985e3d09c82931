"""keras-seg: segmentation_models_pytorch architectures as Keras 3 models."""

__version__ = "0.1.0"
