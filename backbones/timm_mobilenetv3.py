"""timm's mobilenetv3 module as ``tu-`` encoders: MobileNetV3 (``mobilenetv3_*``, ``tf_mobilenetv3_*``, the
targets of SMP 0.6's deprecated ``timm-mobilenetv3_*`` names), LCNet and FBNetV3, built by the shared EfficientNet
builder (``backbones.timm_efficientnet_builder``; timm's MobileNetV3Features: SE widths from the expanded
channels with a hard-sigmoid gate), and MobileNetV4 (``mobilenetv4_*``: UniversalInvertedResidual and
multi-query MobileAttention blocks of ``backbones.timm_mobilenetv4_blocks``, the hybrids' LayerScale2d, AvgPool /
BlurPool anti-aliasing).
"""

from backbones.timm_configs.mobilenetv3 import MOBILENETV3_MODELS
from backbones.timm_efficientnet_builder import build_efficientnet_features, feature_info, unported
from backbones.timm_universal import register_timm_models

register_timm_models(
    "mobilenetv3", {n: e for n, e in MOBILENETV3_MODELS.items() if unported(e["params"]) is None},
    build_efficientnet_features, feature_info,
)
