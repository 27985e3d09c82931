"""SMP's inceptionv4 and inceptionresnetv2 (pretrainedmodels' nets with SMP's paddings) against SMP
(the shared conformance suite).

Inception-v4 (fewer layers, cheaper to compile) is the all-backend member; Inception-ResNet-v2's
features are compared on the torch backend. SMP refuses output_stride 8/16 for both:
test_dilation and test_every_architecture (DeepLabV3/V3+) check SMP's own message.
"""

import timm
import torch

from tests.encoder_conformance import EncoderFamily, smp_error

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


FAMILY = EncoderFamily(
    names=["inceptionv4", "inceptionresnetv2"],
    # 64x32: a 2x1 stride-32 feature, so Inception-C's 1x3 / 3x1 convs see a neighbour on one axis.
    parity=[("inceptionv4", 5, 32)],
    input_size=(64, 32),
    torch_parity=[("inceptionresnetv2", 5, 32)],
    # Odd sizes (33x27: features 17x14, 9x7, 5x4, 3x2, 2x1) through SMP's padded 3x3/2 convs and
    # max-pools for the torch-only parity, the depths and pretrained loading (every backend).
    small_input=(33, 27),
    pretrained="inceptionv4",
    # 41M / 54M parameters: one in_channels per branch of SMP's first-conv rule (sum / repeat) (CI time).
    pretrained_in_channels=(1, 4),
    registry_check=inception_registry_matches_smp,
)
globals().update(FAMILY.tests())
