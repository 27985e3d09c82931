"""The architecture registry (SMP's lowercase keys) and ``create_model``.

Every package under ``keras_seg/decoders/`` that exports a SegmentationModel
subclass in its ``__all__`` is registered automatically, so adding an architecture
is adding a folder.
"""

import importlib
import pkgutil

from keras_seg import decoders
from keras_seg.base import SegmentationModel

ARCHITECTURES = {}


def register_architecture(cls):
    """Make ``cls`` known to create_model and from_pretrained under ``cls.__name__.lower()``."""
    ARCHITECTURES[cls.__name__.lower()] = cls
    return cls


def _discover():
    for info in sorted(pkgutil.iter_modules(decoders.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{decoders.__name__}.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, SegmentationModel):
                register_architecture(obj)


_discover()


def get_architecture(arch):
    key = str(arch).lower()
    if key not in ARCHITECTURES:
        raise ValueError(f"Wrong architecture type {arch!r}. Available options are: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[key]


def create_model(arch, encoder_name="resnet34", encoder_weights="imagenet", in_channels=3, classes=1, **kwargs):
    """Build architecture ``arch`` (e.g. "unet", "fpn") by SMP's lowercase key."""
    return get_architecture(arch)(
        encoder_name=encoder_name, encoder_weights=encoder_weights, in_channels=in_channels, classes=classes, **kwargs
    )
