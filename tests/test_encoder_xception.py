"""SMP's xception (pretrainedmodels' Xception, conv1/conv2 padded) against SMP (the shared conformance suite).

SMP refuses output_stride 8/16 for it: test_dilation and test_every_architecture (DeepLabV3/V3+)
check that keras-seg refuses with SMP's own message.
"""

from tests.encoder_conformance import EncoderFamily

FAMILY = EncoderFamily(
    names=["xception"],
    parity=[("xception", 5, 32)],
    # odd sizes through the padded stem, the -inf padded max-pools and the strided 1x1 skips
    torch_parity=[("xception", 5, 32), ("xception", 3, 32)],
    pretrained="xception",
)
globals().update(FAMILY.tests())
