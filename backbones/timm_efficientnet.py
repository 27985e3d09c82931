"""timm's EfficientNet B0-B8, L2 and EfficientNet-Lite 0-4, as SMP's ``timm-efficientnet-*`` and
``timm-tf_efficientnet_lite*`` encoders build them (``segmentation_models_pytorch/encoders/timm_efficientnet.py``).

SMP gives timm's ``EfficientNet`` decoded arch strings and nothing else, so: torch symmetric padding
``k // 2`` everywhere (no TF "SAME", even for the ``tf_`` Lite names), BatchNorm with torch's defaults
(eps 1e-5, momentum 0.1), Swish (EfficientNet) or ReLU6 (Lite), squeeze-excite with ``round(c * 0.25 /
expansion)`` reduced channels (none in Lite), drop-path 0.2 * block / blocks on residual blocks (the
identity at inference). Layer names are timm's module paths: ``conv_stem``, ``bn1``,
``blocks.{stage}.{block}.*``, ``conv_head``, ``bn2`` (the head is built, not tapped).
"""

import dataclasses
import math

from backbones import registry
from backbones import timm_efficientnet_builder as builder
from backbones.resnet import IMAGENET_PREPROCESSING
from backbones.timm_efficientnet_builder import make_divisible

# The EfficientNet-B0 arch strings SMP decodes: (block type, repeats, kernel, stride, expansion, channels).
ARCH = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)
SE_RATIO = 0.25
DROP_PATH_RATE = 0.2
# SMP's stage_idxs (2, 3, 5): features after blocks[1], [2], [4], [6]; get_stages dilates
# blocks[3:5] (stride 16) and blocks[5:] (stride 32).
FEATURE_STAGES = (1, 2, 4, 6)
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)

def round_channels(value, multiplier):
    """timm's ``round_channels`` (width scaling)."""
    return builder.round_channels(value, multiplier)


@dataclasses.dataclass(frozen=True)
class Block:
    """One timm block: ``kind`` "ds" (DepthwiseSeparableConv) or "ir" (InvertedResidual)."""

    kind: str
    in_chs: int
    mid_chs: int
    out_chs: int
    kernel: int
    stride: int
    dilation: int
    se_chs: int
    skip: bool
    drop_path_rate: float


def _repeats(stage, repeats, depth_multiplier, lite):
    """timm's ceil depth scaling; Lite keeps the first and last stage (``fix_first_last``)."""
    if lite and stage in (0, len(ARCH) - 1):
        return repeats
    return int(math.ceil(repeats * depth_multiplier))


def stem_channels(channel_multiplier, lite):
    return 32 if lite else round_channels(32, channel_multiplier)  # Lite: fix_stem


def head_channels(channel_multiplier, lite):
    return 1280 if lite else round_channels(1280, channel_multiplier)


def block_plan(channel_multiplier, depth_multiplier, lite=False, output_stride=32):
    """The blocks of every stage, as timm builds them and SMP dilates them past ``output_stride``."""
    stages = [
        (kind, _repeats(i, r, depth_multiplier, lite), k, s, e, round_channels(c, channel_multiplier))
        for i, (kind, r, k, s, e, c) in enumerate(ARCH)
    ]
    total = sum(s[1] for s in stages)
    in_chs, index, plan = stem_channels(channel_multiplier, lite), 0, []
    for stage, (kind, repeats, kernel, stride, expansion, out_chs) in enumerate(stages):
        dilation = max(STAGE_STRIDES[stage] // output_stride, 1)
        blocks = []
        for b in range(repeats):
            built_stride = stride if b == 0 else 1  # timm fixes the skip at construction, before SMP dilates
            mid_chs = in_chs if kind == "ds" else make_divisible(in_chs * expansion)
            se_chs = 0 if lite else round(mid_chs * (SE_RATIO / expansion))
            skip = built_stride == 1 and in_chs == out_chs
            rate = DROP_PATH_RATE * index / total
            block_stride = built_stride if dilation == 1 else 1
            blocks.append(Block(kind, in_chs, mid_chs, out_chs, kernel, block_stride, dilation, se_chs, skip, rate))
            in_chs, index = out_chs, index + 1
        plan.append(blocks)
    return plan


def _builder_block(block, path, act):
    """``block`` as the shared builder's block (timm's EfficientNet blocks; skip fixed at construction)."""
    expansion = block.mid_chs / block.in_chs if block.kind == "ir" else 1.0
    return builder.Block(
        kind=block.kind, path=path, in_chs=block.in_chs, out_chs=block.out_chs, stride=block.stride,
        dilation=block.dilation, act=act, kernel=block.kernel, exp_ratio=expansion,
        se_ratio=block.se_chs / block.mid_chs, skip=block.skip, drop_path_rate=block.drop_path_rate,
    )


def build_timm_efficientnet(x, *, depth, output_stride, data_format, channel_multiplier, depth_multiplier, lite=False):
    """timm EfficientNet: returns [x, bn1, blocks[1], blocks[2], blocks[4], blocks[6]] outputs, then the
    head (``conv_head`` + ``bn2``, in SMP's state_dict but not a feature)."""
    act = "relu6" if lite else "swish"
    net = builder.Net(data_format, prefix="")
    inputs = x
    x = net.conv_norm_act(x, stem_channels(channel_multiplier, lite), 3, "conv_stem", "bn1", act, stride=2)
    features = [inputs, x]
    for stage, blocks in enumerate(block_plan(channel_multiplier, depth_multiplier, lite, output_stride)):
        for b, block in enumerate(blocks):
            x = builder.block(net, x, _builder_block(block, f"blocks.{stage}.{b}", act))
        if stage in FEATURE_STAGES:
            features.append(x)
    head = net.conv_norm_act(x, head_channels(channel_multiplier, lite), 1, "conv_head", "bn2", act)
    return features + [head]


# Inception-style normalisation of timm's AdvProp and Lite checkpoints.
HALF_PREPROCESSING = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_range": [0, 1], "input_space": "RGB"}

# SMP's table: name -> (channel multiplier, depth multiplier, out_channels,
#   {weights: (revision, timm pretrained cfg SMP <= 0.5 took mean/std from)}).
EFFICIENTNETS = {
    "timm-efficientnet-b0": (1.0, 1.0, [3, 32, 24, 40, 112, 320], {
        "imagenet": ("8419e9cc19da0b68dcd7bb12f19b7c92407ad7c4", "tf_efficientnet_b0.in1k"),
        "advprop": ("a5870af2d24ce79e0cc7fae2bbd8e0a21fcfa6d8", "tf_efficientnet_b0.ap_in1k"),
        "noisy-student": ("bea8b0ff726a50e48774d2d360c5fb1ac4815836", "tf_efficientnet_b0.ns_jft_in1k"),
    }),
    "timm-efficientnet-b1": (1.0, 1.1, [3, 32, 24, 40, 112, 320], {
        "imagenet": ("63bdd65ef6596ef24f1cadc7dd4f46b624442349", "tf_efficientnet_b1.in1k"),
        "advprop": ("79b3d102080ef679b16c2748e608a871112233d0", "tf_efficientnet_b1.ap_in1k"),
        "noisy-student": ("36856124a699f6032574ceeefab02040daa90a9a", "tf_efficientnet_b1.ns_jft_in1k"),
    }),
    "timm-efficientnet-b2": (1.1, 1.2, [3, 32, 24, 48, 120, 352], {
        "imagenet": ("e693adb39d3cb3847e71e3700a0c2aa58072cff1", "tf_efficientnet_b2.in1k"),
        "advprop": ("b58479bf78007cfbb365091d64eeee369bddfa21", "tf_efficientnet_b2.ap_in1k"),
        "noisy-student": ("67c558827c6d3e0975ff9b4bce8557bc2ca80931", "tf_efficientnet_b2.ns_jft_in1k"),
    }),
    "timm-efficientnet-b3": (1.2, 1.4, [3, 40, 32, 48, 136, 384], {
        "imagenet": ("1666b835b5151d6bb2067c7cd67e67ada6c39edf", "tf_efficientnet_b3.in1k"),
        "advprop": ("70474cdb9f1ff4fcbd7434e66560ead1ab8e506b", "tf_efficientnet_b3.ap_in1k"),
        "noisy-student": ("2367bc9f61e79ee97684169a71a87db280bcf4db", "tf_efficientnet_b3.ns_jft_in1k"),
    }),
    "timm-efficientnet-b4": (1.4, 1.8, [3, 48, 32, 56, 160, 448], {
        "imagenet": ("07868c28ab308f4de4cf1e7ec54b33b8b002ccdb", "tf_efficientnet_b4.in1k"),
        "advprop": ("8ea1772ee9a2a0d18c1b56dce0dfac8dd33d537d", "tf_efficientnet_b4.ap_in1k"),
        "noisy-student": ("faeb77b6e8292a700380c840d39442d7ce4d6443", "tf_efficientnet_b4.ns_jft_in1k"),
    }),
    "timm-efficientnet-b5": (1.6, 2.2, [3, 48, 40, 64, 176, 512], {
        "imagenet": ("004153b4ddd93d30afd9bbf34329d7f57396d413", "tf_efficientnet_b5.in1k"),
        "advprop": ("1d1c5f05aab5ed9a1d5052847ddd4024c06a464d", "tf_efficientnet_b5.ap_in1k"),
        "noisy-student": ("9bc3a1e5490de92b1af061d5c2c474ab3129e38c", "tf_efficientnet_b5.ns_jft_in1k"),
    }),
    "timm-efficientnet-b6": (1.8, 2.6, [3, 56, 40, 72, 200, 576], {
        "imagenet": ("dbbf28a5c33f021486db4070de693caad6b56c3d", "tf_efficientnet_b6.aa_in1k"),
        "advprop": ("3b5d3412047f7711c56ffde997911cfefe79f835", "tf_efficientnet_b6.ap_in1k"),
        "noisy-student": ("9b899ea9e8e0ce2ccada0f34a8cb8b5028e9bb36", "tf_efficientnet_b6.ns_jft_in1k"),
    }),
    "timm-efficientnet-b7": (2.0, 3.1, [3, 64, 48, 80, 224, 640], {
        "imagenet": ("8ef7ffccf54dad9baceb21d05b7ef86b6b70f4cc", "tf_efficientnet_b7.aa_in1k"),
        "advprop": ("fcbc576ffb939c12d5cd8dad523fdae6eb0177ca", "tf_efficientnet_b7.ap_in1k"),
        "noisy-student": ("6b1dd73e61bf934d485d7bd4381dc3e2ab374664", "tf_efficientnet_b7.ns_jft_in1k"),
    }),
    "timm-efficientnet-b8": (2.2, 3.6, [3, 72, 56, 88, 248, 704], {
        "imagenet": ("b5e9dde35605a3a6d17ea2a727382625f9066a37", "tf_efficientnet_b8.ra_in1k"),
        "advprop": ("e43f381de72e7467383c2c80bacbb7fcb9572866", "tf_efficientnet_b8.ap_in1k"),
    }),
    "timm-efficientnet-l2": (4.3, 5.3, [3, 136, 104, 176, 480, 1376], {
        "noisy-student": ("cdc711e76d1becdd9197169f1a8bb1b2094e980c", "tf_efficientnet_l2.ns_jft_in1k"),
        "noisy-student-475": ("35f5ba667a64bf4f3f0689daf84fc6d0f8e1311b", "tf_efficientnet_l2.ns_jft_in1k_475"),
    }),
    "timm-tf_efficientnet_lite0": (1.0, 1.0, [3, 32, 24, 40, 112, 320], {
        "imagenet": ("f5729249af07e5d923fb8b16922256ce2865d108", "tf_efficientnet_lite0.in1k"),
    }),
    "timm-tf_efficientnet_lite1": (1.0, 1.1, [3, 32, 24, 40, 112, 320], {
        "imagenet": ("7b5e3f8dbb0c13b74101773584bba7523721be72", "tf_efficientnet_lite1.in1k"),
    }),
    "timm-tf_efficientnet_lite2": (1.1, 1.2, [3, 32, 24, 48, 120, 352], {
        "imagenet": ("cc5f6cd4c7409ebacc13292f09d369ae88547f6a", "tf_efficientnet_lite2.in1k"),
    }),
    "timm-tf_efficientnet_lite3": (1.2, 1.4, [3, 32, 32, 48, 136, 384], {
        "imagenet": ("ab29c8402991591d66f813bbb1f061565d9b0cd0", "tf_efficientnet_lite3.in1k"),
    }),
    "timm-tf_efficientnet_lite4": (1.4, 1.8, [3, 32, 32, 56, 160, 448], {
        "imagenet": ("91a822e0f03c255b34dfb7846d3858397e50ba39", "tf_efficientnet_lite4.in1k"),
    }),
}


def preprocessing_for(timm_tag):
    """timm's mean/std of the pretrained cfg ``timm_tag``: 0.5 for AdvProp (``ap_``) and Lite, ImageNet's otherwise."""
    return HALF_PREPROCESSING if ".ap_" in timm_tag or "_lite" in timm_tag else IMAGENET_PREPROCESSING


for _name, (_width, _depth, _channels, _weights) in EFFICIENTNETS.items():
    registry.register_encoder(
        _name,
        build_timm_efficientnet,
        out_channels=_channels,
        params=dict(channel_multiplier=_width, depth_multiplier=_depth, lite="_lite" in _name),
        pretrained_weights={w: {"repo_id": f"smp-hub/{_name}.{w}", "revision": rev} for w, (rev, _) in _weights.items()},
        preprocessing={w: preprocessing_for(tag) for w, (_, tag) in _weights.items()},
        first_conv="conv_stem",
        classifier_keys=("classifier.",),  # SMP deletes timm's classifier and pops classifier.weight / .bias
    )
