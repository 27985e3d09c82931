"""SMP's xception (pretrainedmodels' Xception, conv1/conv2 padded) against SMP (the shared conformance suite).

SMP refuses output_stride 8/16 for it: test_dilation and test_every_architecture (DeepLabV3/V3+)
check that keras-seg refuses with SMP's own message.
"""

import pytest

from tests.encoder_conformance import EncoderFamily, assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image

FAMILY = EncoderFamily(
    names=["xception"],
    parity=[("xception", 5, 32)],
    # depths 1-4 are compared with SMP on torch by test_depths (32x32); no torch_parity needed
    pretrained="xception",
)
globals().update(FAMILY.tests())


@pytest.mark.skipif(BACKEND != "torch", reason="one odd-size case, on the torch backend")
def test_odd_input_size():
    """Odd sizes through the padded stem, the -inf padded 3x3/2 max-pools and the strided 1x1 skips."""
    reference = smp_encoder("xception")
    encoder = port_smp_encoder(reference, "xception", "channels_last")
    assert_features_match(reference, encoder, image((1, 3, 37, 27)), "channels_last")
