"""SMP's timm EfficientNet / EfficientNet-Lite encoders against SMP (the shared conformance suite),
plus the block plan of every name (timm-efficientnet-l2 included, no Keras build) against SMP's modules."""

import pytest
import segmentation_models_pytorch as smp
import torch
from timm.layers import DropPath
from timm.models import get_pretrained_cfg

import backbones
from backbones.layers import DropPath as KerasDropPath
from backbones.timm_efficientnet import EFFICIENTNETS, block_plan, head_channels, stem_channels
from tests.encoder_conformance import EncoderFamily
from tests.parity import BACKEND

pytestmark = pytest.mark.filterwarnings("ignore:`timm-` encoders are deprecated:DeprecationWarning")

NAMES = list(EFFICIENTNETS)
HEAVY = ("timm-efficientnet-b8", "timm-efficientnet-l2")  # 88M and 480M parameters


def timm_efficientnet_params(ours, theirs):
    """Multipliers and kind as SMP's table; mean/std as the timm pretrained cfg SMP <= 0.5 read."""
    params = theirs["params"]
    assert ours.params == {
        "channel_multiplier": params["channel_multiplier"],
        "depth_multiplier": params["depth_multiplier"],
        "lite": theirs["encoder"].__name__ == "EfficientNetLiteEncoder",
    }
    assert list(params["stage_idxs"]) == [2, 3, 5]
    for weights, (_, tag) in EFFICIENTNETS[ours.name][3].items():
        cfg = get_pretrained_cfg(tag)
        assert ours.preprocessing[weights] == {"mean": list(cfg.mean), "std": list(cfg.std), "input_range": [0, 1], "input_space": "RGB"}


FAMILY = EncoderFamily(
    names=NAMES,
    # b0: DepthwiseSeparable and InvertedResidual blocks with SE and Swish, strided and dilated (stride 32
    # stages); lite0 (ReLU6, no SE, fixed stem and head) runs on every backend in test_dilation.
    parity=[("timm-efficientnet-b0", 5, 16)],
    # b1 repeats the DepthwiseSeparable stage (a skip there); b2 / b3 / lite4: other rounded and SE widths
    # (b3: stem 40). The other members differ only in the multipliers, which test_block_plan_matches_smp
    # checks block by block and test_state_dict_layout_matches_smp weight by weight.
    torch_parity=[
        ("timm-efficientnet-b0", 5, 32), ("timm-tf_efficientnet_lite0", 5, 8), ("timm-efficientnet-b1", 5, 32),
        ("timm-efficientnet-b2", 4, 8), ("timm-efficientnet-b3", 5, 32), ("timm-tf_efficientnet_lite4", 3, 32),
    ],
    pretrained="timm-tf_efficientnet_lite0",  # the cheapest member (also every architecture, depths, dilation)
    registry_check=timm_efficientnet_params,
    # The state_dict layout does not depend on the backend: every buildable name on torch, where a build is
    # cheapest; two on TensorFlow and JAX, whose variable creation costs 3x more (CI budget).
    layout_names=[n for n in NAMES if n not in HEAVY] if BACKEND == "torch" else ["timm-efficientnet-b0", "timm-tf_efficientnet_lite0"],
)
globals().update(FAMILY.tests())

# What follows does not depend on the backend: run once, on torch (CI budget).
torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent structure check, run on torch")


def _smp_meta_encoder(name, output_stride=32):
    with torch.device("meta"):
        return smp.encoders.get_encoder(name, output_stride=output_stride)


def _drop_prob(module):
    return module.drop_path.drop_prob if isinstance(module.drop_path, DropPath) else 0.0


@torch_only
@pytest.mark.parametrize("output_stride", [32, 8])
@pytest.mark.parametrize("name", NAMES)
def test_block_plan_matches_smp(name, output_stride):
    """Every block's type, widths, kernel, stride, dilation, padding, SE width, skip and drop-path rate."""
    encoder = _smp_meta_encoder(name, output_stride)
    width, depth, _, _ = EFFICIENTNETS[name]
    lite = "_lite" in name
    assert encoder.conv_stem.out_channels == stem_channels(width, lite)
    assert encoder.conv_head.out_channels == head_channels(width, lite)
    plan = block_plan(width, depth, lite, output_stride)
    assert [len(stage) for stage in plan] == [len(stage) for stage in encoder.blocks]
    for stage, theirs in zip(plan, encoder.blocks):
        for ours, module in zip(stage, theirs):
            ir = ours.kind == "ir"
            assert type(module).__name__ == ("InvertedResidual" if ir else "DepthwiseSeparableConv")
            dw, project = module.conv_dw, module.conv_pwl if ir else module.conv_pw
            assert (module.conv_pw if ir else dw).in_channels == ours.in_chs
            assert (dw.out_channels, dw.groups, project.out_channels) == (ours.mid_chs, ours.mid_chs, ours.out_chs)
            assert (dw.kernel_size, dw.stride, dw.dilation) == ((ours.kernel,) * 2, (ours.stride,) * 2, (ours.dilation,) * 2)
            assert dw.padding == ((ours.kernel // 2) * ours.dilation,) * 2
            assert (0 if isinstance(module.se, torch.nn.Identity) else module.se.conv_reduce.out_channels) == ours.se_chs
            assert (module.has_skip, _drop_prob(module)) == (ours.skip, pytest.approx(ours.drop_path_rate))


@torch_only
def test_drop_path_layers():
    """Keras DropPath layers sit on the residual blocks with SMP's rates (the identity at inference)."""
    encoder = backbones.get_encoder("timm-efficientnet-b0")
    ours = {layer.name: layer.rate for layer in encoder.layers if isinstance(layer, KerasDropPath)}
    reference = _smp_meta_encoder("timm-efficientnet-b0")
    theirs = {
        f"blocks-{s}-{b}-drop_path": _drop_prob(block)
        for s, stage in enumerate(reference.blocks) for b, block in enumerate(stage) if block.has_skip and _drop_prob(block)
    }
    assert ours == pytest.approx(theirs) and len(ours) == 9
