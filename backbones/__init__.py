"""Encoders for keras-seg: the contract, the registry and the native encoder families."""

from backbones import resnet  # noqa: F401  (registers the ResNet family)
from backbones import mobileone  # noqa: F401  (registers SMP's mobileone_s0..s4)
from backbones import mobilenet, xception  # noqa: F401  (register MobileNetV2 and Xception)
from backbones import timm_efficientnet  # noqa: F401  (registers SMP's timm-efficientnet-* / timm-tf_efficientnet_lite*)
from backbones import efficientnet  # noqa: F401  (registers SMP's efficientnet-b0..b7)
from backbones import inception  # noqa: F401  (registers SMP's inceptionv4 and inceptionresnetv2)
from backbones import dpn  # noqa: F401  (registers SMP's dpn68, dpn68b, dpn92, dpn98, dpn107, dpn131)
from backbones import densenet, vgg  # noqa: F401  (register SMP's densenet121..201 and vgg11..vgg19_bn)
from backbones import senet, sknet  # noqa: F401  (register SMP's se_resnet*/se_resnext*/senet154 and timm-skresnet*/timm-skresnext50_32x4d)
from backbones import mit  # noqa: F401  (registers SMP's mit_b0..mit_b5)
from backbones import keras_hub_adapter  # noqa: F401  (resolves keras_hub:<preset> names; keras_hub itself is imported lazily)
from backbones import vit  # noqa: F401  (registers timm's VisionTransformers, tu-vit_*, DPT's encoders)
from backbones import timm_universal, timm_resnet  # noqa: F401  (tu- names: resolution rules, timm's resnet module natively)
from backbones import timm_efficientnet_builder  # noqa: F401  (tu- names: timm's efficientnet module)
from backbones import timm_mobilenetv3  # noqa: F401  (tu- names: timm's mobilenetv3 module)
from backbones import timm_convnext  # noqa: F401  (tu- names: timm's convnext module)
from backbones import timm_cspnet  # noqa: F401  (tu- names: timm's cspnet module)
from backbones import timm_regnet  # noqa: F401  (tu- names: timm's regnet module)
from backbones import timm_res2net, timm_resnest  # noqa: F401  (tu- names: timm's res2net and resnest modules)
from backbones import timm_byobnet  # noqa: F401  (tu- names: timm's byobnet module, gernet_s/m/l so far)
from backbones.encoder import Encoder, get_encoder
from backbones.registry import get_spec, list_encoders, register_encoder
from backbones.keras_hub_adapter import register_keras_hub_backbone

__all__ = ["Encoder", "get_encoder", "get_spec", "list_encoders", "register_encoder", "register_keras_hub_backbone"]
