"""SMP's mobilenet_v2 (torchvision MobileNetV2) against SMP (the shared conformance suite)."""

import pytest

from tests.encoder_conformance import EncoderFamily, assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image

FAMILY = EncoderFamily(
    names=["mobilenet_v2"],
    # output_stride 8 dilates both late stages (depthwise convs with dilation 2 and 4).
    parity=[("mobilenet_v2", 5, 32), ("mobilenet_v2", 5, 8)],
    # a shallower dilated encoder; depths 1-5 and output_stride 8/16 at depth 5 are in test_depths / test_dilation
    torch_parity=[("mobilenet_v2", 4, 8)],
    pretrained="mobilenet_v2",
)
globals().update(FAMILY.tests())


@pytest.mark.skipif(BACKEND != "torch", reason="one odd-size case, on the torch backend")
def test_odd_input_size():
    """Odd sizes through the stride-2 depthwise convs (torch's floor rounding), dilated at stride 16."""
    reference = smp_encoder("mobilenet_v2", output_stride=16)
    encoder = port_smp_encoder(reference, "mobilenet_v2", "channels_last", output_stride=16)
    assert_features_match(reference, encoder, image((1, 3, 37, 27)), "channels_last")
