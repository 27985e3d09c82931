"""backbones/timm_configs/mobilenetv3.py: timm's mobilenetv3 module (MobileNetV3, LCNet, FBNetV3; not its
MobileNetV4 models, whose uir / attention blocks are not ported) as backbones.timm_efficientnet_builder's settings."""

import timm
from timm.models import mobilenetv3 as timm_mobilenetv3

from timm_tables import captured_args, conv_widths, tag_entries
from timm_tables.efficientnet import effnet_params

CONST = "MOBILENETV3_MODELS"


def table():
    table = {}
    for name in timm.list_models(module="mobilenetv3"):
        if name.startswith("mobilenetv4"):
            continue
        # MobileNetV3Features' defaults: SE widths from the expanded channels (se_from_exp=True), a 16-channel stem.
        kwargs = captured_args(name, timm_mobilenetv3, "_create_mnv3")
        params, pruned = effnet_params(kwargs, se_from_exp=True, stem_size=16)
        if pruned:
            params["widths"] = conv_widths(name)
        tags, default = tag_entries(name)
        table[name] = dict(params=params, tags=tags, default_tag=default)
    return table
