"""SMP's own EfficientNet encoders (efficientnet-b0 ... b7) against SMP (the shared conformance suite),
plus every member's block plan (static paddings, strides, dilation, drop-connect) against SMP's modules."""

import pytest
import segmentation_models_pytorch as smp
import torch
from segmentation_models_pytorch.encoders._efficientnet import efficientnet_params

import backbones
from backbones.efficientnet import ADVPROP_PREPROCESSING, HEAD_FILTERS, SE_RATIO, block_plan, round_filters
from backbones.layers import DropPath, explicit_padding, static_same_padding
from backbones.resnet import IMAGENET_PREPROCESSING
from tests.encoder_conformance import EncoderFamily

EFFICIENTNETS = [f"efficientnet-b{i}" for i in range(8)]


def efficientnet_params_match(ours, theirs):
    width, depth_multiplier, image_size, _ = efficientnet_params(theirs["params"]["model_name"])
    assert ours.params == dict(
        width=width, depth_multiplier=depth_multiplier, image_size=image_size, out_indexes=theirs["params"]["out_indexes"]
    )
    assert ours.preprocessing == {"imagenet": IMAGENET_PREPROCESSING, "advprop": ADVPROP_PREPROCESSING}
    assert ours.first_conv == "_conv_stem" and ours.classifier_keys == ("_fc.",) and ours.supports_dilation


FAMILY = EncoderFamily(
    names=EFFICIENTNETS,
    # b0 has every block type (no expansion, expand 6, kernels 3 and 5, strides 1 and 2, skip with
    # drop-connect); output stride 16 keeps static paddings in blocks 0-8 and dilates blocks 9-15.
    parity=[("efficientnet-b0", 5, 16)],
    # b2 and b3 add static paddings for odd nominal sizes (65, 33, 17 and 75, 19); the larger
    # members differ only in the numbers test_block_plan_matches_smp checks for each of them.
    torch_parity=[("efficientnet-b2", 5, 8), ("efficientnet-b3", 4, 32)],
    pretrained="efficientnet-b0",
    registry_check=efficientnet_params_match,
    layout_names=EFFICIENTNETS[:4],
    min_depth=2,  # SMP's EfficientNetEncoder refuses depth 1
)
globals().update(FAMILY.tests())


def smp_padding(conv):
    """((top, bottom), (left, right)) that an SMP conv applies: its static padding plus its own."""
    (ph, pw), static = conv.padding, getattr(conv, "static_padding", None)
    left, right, top, bottom = static.padding if isinstance(static, torch.nn.ZeroPad2d) else (0, 0, 0, 0)
    return ((top + ph, bottom + ph), (left + pw, right + pw))


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("name", EFFICIENTNETS)
def test_block_plan_matches_smp(name, output_stride):
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, output_stride=output_stride)
    spec = backbones.get_spec(name)
    plan = block_plan(**spec.params, output_stride=output_stride)
    assert smp_padding(reference._conv_stem) == static_same_padding(spec.params["image_size"], 3, 2)
    assert reference._conv_stem.out_channels == spec.out_channels[1]
    assert reference._conv_head.out_channels == round_filters(HEAD_FILTERS, spec.params["width"])
    assert len(plan) == len(reference._blocks)
    for i, (p, theirs) in enumerate(zip(plan, reference._blocks)):
        dw = theirs._depthwise_conv
        assert (dw.kernel_size, tuple(dw.stride), dw.dilation) == ((p.block.kernel,) * 2, (p.stride,) * 2, (p.dilation,) * 2), i
        assert smp_padding(dw) == explicit_padding(p.padding), i
        assert (dw.in_channels, theirs._project_conv.out_channels) == (p.block.in_filters * p.block.expand, p.block.out_filters), i
        assert theirs._has_expansion == (p.block.expand != 1), i
        assert theirs._se_reduce.out_channels == max(1, int(p.block.in_filters * SE_RATIO)), i
        assert theirs._has_drop_connect == p.block.skip, i
        assert p.drop_rate == (reference._drop_connect_rate * i / len(reference._blocks) if p.block.skip else 0.0), i
        pointwise = [m for m in theirs.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
        assert all(smp_padding(m) == ((0, 0), (0, 0)) for m in pointwise), i  # what _pointwise relies on


def test_drop_connect_layers_follow_the_plan():
    """Drop-connect (the identity at inference) sits on exactly the skip blocks, at SMP's scaled rate."""
    encoder = backbones.get_encoder("efficientnet-b0")
    rates = {layer.name: layer.rate for layer in encoder.layers if isinstance(layer, DropPath)}
    plan = block_plan(**backbones.get_spec("efficientnet-b0").params)
    assert rates == {f"_blocks-{i}-drop_connect": p.drop_rate for i, p in enumerate(plan) if p.block.skip}
