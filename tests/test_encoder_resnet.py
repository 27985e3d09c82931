"""The ResNet / ResNeXt family against SMP's ResNetEncoder (the shared conformance suite)."""

from tests.encoder_conformance import EncoderFamily

RESNETS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x4d",
    "resnext101_32x8d", "resnext101_32x16d", "resnext101_32x32d", "resnext101_32x48d",
]


def resnet_params(ours, theirs):
    block = {"BasicBlock": "basic", "Bottleneck": "bottleneck"}[theirs["params"]["block"].__name__]
    assert ours.params == {"block": block, **{k: v for k, v in theirs["params"].items() if k not in ("out_channels", "block")}}


FAMILY = EncoderFamily(
    names=RESNETS,
    parity=[("resnet18", 5, 32), ("resnet34", 4, 16), ("resnet50", 5, 16), ("resnext50_32x4d", 5, 8)],
    # resnet101 and resnext101_32x8d/_32x32d/_32x48d (up to 0.8 billion parameters) differ from
    # these only in the registry parameters that test_registry_matches_smp compares with SMP's table.
    torch_parity=[("resnet18", 5, 8), ("resnet18", 1, 32), ("resnet50", 3, 32), ("resnet152", 5, 16), ("resnext101_32x4d", 5, 8), ("resnext101_32x16d", 5, 32)],
    pretrained="resnet18",
    registry_check=resnet_params,
    layout_names=RESNETS[:-2],
)
globals().update(FAMILY.tests())
