"""SMP's mobilenet_v2 (torchvision MobileNetV2) against SMP (the shared conformance suite)."""

from tests.encoder_conformance import EncoderFamily

FAMILY = EncoderFamily(
    names=["mobilenet_v2"],
    # output_stride 8 dilates both late stages (depthwise convs with dilation 2 and 4).
    parity=[("mobilenet_v2", 5, 32), ("mobilenet_v2", 5, 8)],
    torch_parity=[("mobilenet_v2", 5, 16), ("mobilenet_v2", 2, 32), ("mobilenet_v2", 4, 8)],
    pretrained="mobilenet_v2",
)
globals().update(FAMILY.tests())
