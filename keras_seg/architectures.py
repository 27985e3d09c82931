"""The architecture registry (SMP's lowercase keys) and ``create_model``."""

from keras_seg.decoders.unet import Unet

ARCHITECTURES = {cls.__name__.lower(): cls for cls in (Unet,)}


def register_architecture(cls):
    """Make ``cls`` known to create_model and from_pretrained under ``cls.__name__.lower()``."""
    ARCHITECTURES[cls.__name__.lower()] = cls
    return cls


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
