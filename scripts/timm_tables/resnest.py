"""backbones/timm_configs/resnest.py: timm's resnest module (ResNets of ResNestBottleneck blocks) as backbones.timm_resnet's settings."""

from timm.models import resnest as timm_resnest

from timm_tables import resnet

CONST = "RESNEST_MODELS"
resnet.BLOCKS[timm_resnest.ResNestBottleneck] = ("resnest_bottleneck", ("radix", "avd", "avd_first"))


def table():
    return resnet.resnet_table("resnest", timm_resnest, "_create_resnest")
