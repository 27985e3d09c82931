"""SMP's inceptionv4 and inceptionresnetv2 (pretrainedmodels' nets with SMP's paddings) against SMP
(the shared conformance suite).

Inception-v4 (fewer layers, cheaper to compile) is the all-backend member; Inception-ResNet-v2's
features (and with them its state_dict layout: the port loads strictly) are compared on the torch
backend, once. SMP refuses output_stride 8/16 for both:
test_dilation and test_every_architecture (DeepLabV3/V3+) check SMP's own message.
"""

from collections import Counter

import pytest
import timm
import torch
from segmentation_models_pytorch.encoders.inceptionv4 import InceptionV4Encoder

from tests.encoder_conformance import EncoderFamily, assert_features_match, port_smp_encoder, smp_encoder, smp_error
from tests.parity import BACKEND, image

TIMM_NAMES = {"inceptionv4": "inception_v4", "inceptionresnetv2": "inception_resnet_v2"}


def inception_registry_matches_smp(ours, theirs):
    """First conv (SMP's first nn.Conv2d), dilation error, dropped classifier and preprocessing."""
    with torch.device("meta"):
        reference = theirs["encoder"](**theirs["params"])
    assert ours.first_conv == next(n for n, m in reference.named_modules() if isinstance(m, torch.nn.Conv2d))
    assert ours.dilation_error == str(smp_error(lambda: reference.make_dilated(16)))
    assert ours.classifier_keys == ("last_linear.",) and not hasattr(reference, "last_linear")
    cfg = timm.get_pretrained_cfg(TIMM_NAMES[ours.name])  # pretrainedmodels' settings: mean = std = 0.5
    for settings in ours.preprocessing.values():
        assert settings == {"mean": list(cfg.mean), "std": list(cfg.std), "input_range": [0, 1], "input_space": "RGB"}


class CutDownInceptionV4(InceptionV4Encoder):
    """SMP's InceptionV4Encoder (its modules, paddings and forward) keeping the first ``repeats``
    Inception-A / -B / -C blocks, tapped after the modules at ``taps``: the stand-in below."""

    def __init__(self, repeats, taps, **kwargs):
        super().__init__(**kwargs)
        limits, seen, kept = dict(zip(("Inception_A", "Inception_B", "Inception_C"), repeats)), Counter(), []
        for module in self.features:
            seen[type(module).__name__] += 1
            if seen[type(module).__name__] <= limits.get(type(module).__name__, len(self.features)):
                kept.append(module)
        self.features = torch.nn.Sequential(*kept)
        self._out_indexes = list(taps)


FAMILY = EncoderFamily(
    names=["inceptionv4", "inceptionresnetv2"],
    # 64x32: a 2x1 stride-32 feature, so Inception-C's 1x3 / 3x1 convs see a neighbour on one axis.
    parity=[("inceptionv4", 5, 32)],
    input_size=(64, 32),
    # Odd sizes (33x27: features 17x14, 9x7, 5x4, 3x2, 2x1) through SMP's padded 3x3/2 convs and
    # max-pools for the depths and pretrained loading (every backend).
    small_input=(33, 27),
    pretrained="inceptionv4",
    # 41M / 54M parameters: one in_channels per branch of SMP's first-conv rule (sum / repeat) (CI time).
    pretrained_in_channels=(1, 4),
    registry_check=inception_registry_matches_smp,
    # Depths, pretrained loading, every architecture and round trips on Inception-v4 with one block
    # of each repeated kind (same channels and strides, a third of the layers and parameters).
    stand_in={"smp_encoder": CutDownInceptionV4, "repeats": (1, 1, 1), "taps": (2, 4, 6, 8, 10)},
    layout_names=["inceptionv4"],  # inceptionresnetv2's: test_inceptionresnetv2_matches_smp
)
globals().update(FAMILY.tests())


@pytest.mark.skipif(BACKEND != "torch", reason="the second member, on the torch backend (CI time)")
def test_inceptionresnetv2_matches_smp():
    """Block35/17/8 (scaled residuals with biased 1x1 convs; the last block8 without ReLU) at the odd
    size, channels_first (Inception-v4 has no biased conv). The strict port is its layout check:
    every key and shape of SMP's state_dict, nothing else."""
    reference = smp_encoder("inceptionresnetv2")
    encoder = port_smp_encoder(reference, "inceptionresnetv2", "channels_first")
    assert encoder.out_channels == list(reference.out_channels)
    assert_features_match(reference, encoder, image((1, 3, *FAMILY.small_input)), "channels_first")
