"""backbones/timm_configs/res2net.py: timm's res2net module (ResNets of Bottle2neck blocks) as backbones.timm_resnet's settings."""

from timm.models import res2net as timm_res2net

from timm_tables import resnet

CONST = "RES2NET_MODELS"
resnet.BLOCKS[timm_res2net.Bottle2neck] = ("bottle2neck", ("scale",))


def table():
    return resnet.resnet_table("res2net", timm_res2net, "_create_res2net")
