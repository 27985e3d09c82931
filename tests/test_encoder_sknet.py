"""SMP's timm SK-ResNets (timm's ResNet with SelectiveKernel blocks, SMP's timm_sknet) against SMP
(the shared conformance suite).

timm-skresnet18 is the all-backend member (SelectiveKernelBasic: split input, the 3x3 and dilated
3x3 paths, strided and dilated, the softmax-over-paths attention). SelectiveKernelBottleneck
(cardinality 32) is compared on a one-block-per-stage copy of timm-skresnext50_32x4d, dilated.
"""

import inspect

import pytest
from timm.layers import SelectiveKernel
from timm.models.resnet import ResNet
from timm.models.sknet import SelectiveKernelBasic, SelectiveKernelBottleneck

from tests.encoder_conformance import EncoderFamily, assert_variant_matches_smp
from tests.parity import BACKEND

SKNETS = ["timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d"]
BLOCKS = {SelectiveKernelBasic: "basic", SelectiveKernelBottleneck: "bottleneck"}


def _defaults(fn):
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def sknet_params(ours, theirs):
    """Our params are timm's ResNet / SelectiveKernel arguments for SMP's row, timm's defaults filled in."""
    params = {**_defaults(ResNet.__init__), **theirs["params"]}
    sk = {**_defaults(SelectiveKernel.__init__), **(params.get("block_args") or {}).get("sk_kwargs", {})}
    assert sk["kernel_size"] is None and sk["keep_3x3"] and sk["rd_channels"] is None  # paths 3x3 dilated 1 and 2
    assert ours.params == {
        "block": BLOCKS[params["block"]], "layers": params["layers"], "cardinality": params["cardinality"],
        "base_width": params["base_width"], **{k: sk[k] for k in ("rd_ratio", "rd_divisor", "split_input")},
    }
    assert ours.first_conv == "conv1" and ours.classifier_keys == ("fc.",)
    assert ours.supports_dilation  # SMP's get_stages: layer3 (stride 16), layer4 (stride 32)


FAMILY = EncoderFamily(
    names=SKNETS,
    parity=[("timm-skresnet18", 5, 32)],
    pretrained="timm-skresnet18",
    stand_in={"layers": [1, 1, 1, 1]},  # member-based checks on a one-block-per-stage copy (CI time)
    pretrained_in_channels=(1, 4),
    registry_check=sknet_params,
)
globals().update(FAMILY.tests())


@pytest.mark.skipif(BACKEND != "torch", reason="a cut-down member, on the torch backend")
def test_bottleneck_matches_smp(monkeypatch):
    """SelectiveKernelBottleneck (grouped paths on half the input each), both late stages dilated, odd size."""
    assert_variant_matches_smp("timm-skresnext50_32x4d", {"layers": [1, 1, 1, 1]}, 8, (37, 26), "channels_last", monkeypatch)
