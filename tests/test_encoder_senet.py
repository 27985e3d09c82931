"""SMP's SENet family (pretrainedmodels' SENet, SMP's vendored _senet.py) against SMP (the shared conformance suite).

se_resnet50 is the all-backend member (the 7x7 stem, the ceil_mode layer0 pool, Caffe's stride on
the 1x1 conv1, SE modules, dilation). senet154 and the SE-ResNeXts are far too big to build per
test, so their block kinds (senet154's 3x3 stem and 3x3 downsample, the 64-group SEBottleneck; the
SE-ResNeXt bottleneck) are compared with SMP on one-block-per-stage copies, dilated, at odd sizes;
every full member gets the layout and registry checks. The member-based checks run on a one-block-per-stage
se_resnet50 (``stand_in``).
"""

import inspect

import pytest
import torch
from segmentation_models_pytorch.encoders._senet import SENet, SEBottleneck, SEResNetBottleneck, SEResNeXtBottleneck

from tests.encoder_conformance import EncoderFamily, assert_variant_matches_smp
from tests.parity import BACKEND

SENETS = ["se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d", "se_resnext101_32x4d", "senet154"]
BLOCKS = {SEBottleneck: "senet", SEResNetBottleneck: "se_resnet", SEResNeXtBottleneck: "se_resnext"}
ARCHITECTURE = ("layers", "groups", "reduction", "inplanes", "input_3x3", "downsample_kernel_size", "downsample_padding")


def senet_params(ours, theirs):
    """Our params are SENet's arguments for SMP's row (SENet's defaults where SMP leaves them out)."""
    defaults = {k: p.default for k, p in inspect.signature(SENet.__init__).parameters.items() if p.default is not p.empty}
    params = {**defaults, **theirs["params"]}
    assert ours.params == {"block": BLOCKS[params["block"]], **{k: params[k] for k in ARCHITECTURE}}
    with torch.device("meta"):
        reference = theirs["encoder"](**theirs["params"])
    assert ours.first_conv == next(n for n, m in reference.named_modules() if isinstance(m, torch.nn.Conv2d))
    assert ours.classifier_keys == ("last_linear.",) and not hasattr(reference, "last_linear")
    assert ours.supports_dilation  # SMP's get_stages: layer3 (stride 16), layer4 (stride 32)


FAMILY = EncoderFamily(
    names=SENETS,
    parity=[("se_resnet50", 5, 32)],
    pretrained="se_resnet50",
    # Depths, dilation, pretrained loading, architectures and round trips on se_resnet50 cut to one
    # block per stage (CI time): same blocks, channels and strides, SMP's own code on both sides.
    stand_in={"layers": [1, 1, 1, 1]},
    pretrained_in_channels=(1, 4),  # one per branch of SMP's first-conv rule
    registry_check=senet_params,
)
globals().update(FAMILY.tests())


@pytest.mark.skipif(BACKEND != "torch", reason="cut-down members, on the torch backend")
@pytest.mark.parametrize("name, output_stride", [("senet154", 8), ("se_resnext50_32x4d", 16)])
def test_block_kinds_match_smp(name, output_stride, monkeypatch):
    """One block per stage; odd sizes through the strided stem and the ceil_mode 3x3/2 pool."""
    assert_variant_matches_smp(name, {"layers": [1, 1, 1, 1]}, output_stride, (37, 26), "channels_last", monkeypatch)
