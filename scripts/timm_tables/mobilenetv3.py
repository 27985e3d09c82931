"""backbones/timm_configs/mobilenetv3.py: timm's mobilenetv3 module (MobileNetV3, LCNet, FBNetV3, MobileNetV4) as
backbones.timm_efficientnet_builder's settings. MobileNetV4's own constructor options: ``layer_scale_init_value``
(hybrid models' LayerScale2d on uir / mqa blocks), ``aa_layer='avg'`` (nn.AvgPool2d(2) anti-aliasing), timm's exact
GELU; ``head_norm`` belongs to the classifier head (not in timm's features_only model)."""

import timm
from timm.layers.activations import GELU
from timm.models import mobilenetv3 as timm_mobilenetv3

from timm_tables import captured_args, conv_widths, tag_entries
from timm_tables.efficientnet import effnet_params

CONST = "MOBILENETV3_MODELS"


def table():
    table = {}
    for name in timm.list_models(module="mobilenetv3"):
        # MobileNetV3Features' defaults: SE widths from the expanded channels (se_from_exp=True), a 16-channel stem.
        kwargs = captured_args(name, timm_mobilenetv3, "_create_mnv3")
        kwargs.pop("head_norm", None)
        layer_scale = kwargs.pop("layer_scale_init_value", None)
        aa = kwargs.pop("aa_layer") if kwargs.get("aa_layer") == "avg" else None
        if kwargs.get("act_layer") is GELU:
            kwargs["act_layer"] = "gelu"  # timm's GELU: exact (approximate='none')
        params, pruned = effnet_params(kwargs, se_from_exp=True, stem_size=16)
        if aa:
            params["aa"] = aa
        if layer_scale is not None:
            params["layer_scale_init_value"] = layer_scale
        if pruned:
            params["widths"] = conv_widths(name)
        tags, default = tag_entries(name)
        table[name] = dict(params=params, tags=tags, default_tag=default)
    return table
