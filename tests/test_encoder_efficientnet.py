"""SMP's own EfficientNet encoders (efficientnet-b0 ... b7) against SMP (the shared conformance suite)."""

from tests.encoder_conformance import EncoderFamily

EFFICIENTNETS = [f"efficientnet-b{i}" for i in range(8)]

FAMILY = EncoderFamily(
    names=EFFICIENTNETS,
    parity=[("efficientnet-b0", 5, 32), ("efficientnet-b2", 5, 16)],
    pretrained="efficientnet-b0",
    min_depth=2,
)
globals().update(FAMILY.tests())
