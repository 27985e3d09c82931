"""SMP's DPN family (dpn68 ... dpn131, SMP's vendored _dpn.py) against SMP (the shared conformance suite)."""

import pytest

from tests.encoder_conformance import EncoderFamily, assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image

DPNS = ["dpn68", "dpn68b", "dpn92", "dpn98", "dpn107", "dpn131"]

# SMP's params that do not shape the encoder: its taps (checked against k_sec below), the dropped head.
NOT_ARCHITECTURE = ("out_channels", "stage_idxs", "num_classes", "test_time_pool")


def dpn_params(ours, theirs):
    params = theirs["params"]
    assert ours.params == {k: v for k, v in params.items() if k not in NOT_ARCHITECTURE}
    # SMP's taps end after conv2, conv3, conv4 and conv5_bn_ac: features[1 + sum(k_sec[:i + 1])].
    k_sec = params["k_sec"]
    assert params["stage_idxs"] == [1 + sum(k_sec[:i + 1]) for i in range(3)] + [2 + sum(k_sec)]
    assert ours.first_conv == "features.conv1_1.conv" and ours.classifier_keys == ("last_linear.",)
    assert ours.supports_dilation


FAMILY = EncoderFamily(
    names=DPNS,
    # dpn68: the small 3x3 stem, every block type (proj, down, normal), grouped 3x3 convs.
    parity=[("dpn68", 5, 32)],
    pretrained="dpn68",
    # one per branch of SMP's first-conv rule (summed, none, repeated and scaled); 2 repeats as 4 does
    pretrained_in_channels=(1, 3, 4),
    registry_check=dpn_params,
)
globals().update(FAMILY.tests())


torch_only = pytest.mark.skipif(BACKEND != "torch", reason="more members, on the torch backend only (CI time)")


@torch_only
@pytest.mark.parametrize("name, output_stride", [
    ("dpn68b", 8),  # the b blocks: c1x1_c as CatBnAct, then two 1x1 convs c1x1_c1 / c1x1_c2
    ("dpn92", 16),  # the 7x7 stem, 4x widths, 1x1 projections stride-free in the dilated conv5
])
def test_member_matches_smp(name, output_stride):
    """channels_last only: both data formats are compared on dpn68 in test_features_match_smp."""
    reference = smp_encoder(name, output_stride=output_stride)
    encoder = port_smp_encoder(reference, name, "channels_last", output_stride=output_stride)
    assert encoder.out_channels == list(reference.out_channels)
    assert_features_match(reference, encoder, image((2, 3, *FAMILY.small_input)), "channels_last")


@torch_only
def test_odd_input_size():
    """Odd sizes through the strided stem, the 3x3/2 max-pool and the strided 1x1 / 3x3 pairs, dilated conv5."""
    reference = smp_encoder("dpn68", output_stride=16)
    encoder = port_smp_encoder(reference, "dpn68", "channels_last", output_stride=16)
    assert_features_match(reference, encoder, image((1, 3, 37, 27)), "channels_last")
