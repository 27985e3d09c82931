"""Encoders for keras-seg: the contract, the registry and the native encoder families."""

from backbones import resnet  # noqa: F401  (registers the ResNet family)
from backbones import timm_efficientnet  # noqa: F401  (registers SMP's timm-efficientnet-* / timm-tf_efficientnet_lite*)
from backbones.encoder import Encoder, get_encoder
from backbones.registry import get_spec, list_encoders, register_encoder

__all__ = ["Encoder", "get_encoder", "get_spec", "list_encoders", "register_encoder"]
