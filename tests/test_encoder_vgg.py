"""SMP's VGG encoders (torchvision VGG features, split at the max-pools) against SMP (the shared
conformance suite).

VGG's first feature is its own full-resolution stage (64 channels), not the input; SMP refuses
output_stride 8/16 (test_dilation, and DeepLabV3/V3+/PAN in test_every_architecture, check SMP's
message) and its Unet / Unet++ add a center block: test_every_architecture ports SMP's Unet and
Unet++ on vgg11_bn strictly (decoder.center.* included) and compares their outputs with SMP's.
"""

import pytest
import torch
import torchvision
from segmentation_models_pytorch.encoders.vgg import pretrained_settings

from backbones.vgg import CONFIGS
from tests.encoder_conformance import EncoderFamily
from tests.parity import BACKEND

VGGS = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
PREPROCESSING_KEYS = ("mean", "std", "input_range", "input_space")


def vgg_params(ours, theirs):
    assert ours.params == {"config": theirs["params"]["config"], "batch_norm_layers": theirs["params"]["batch_norm"]}
    assert ours.params["config"] is CONFIGS[int(ours.name[3:5])]
    # SMP's module-level table of torchvision's ImageNet weights (SMP 0.6 reads it from the hub config.json).
    assert ours.preprocessing["imagenet"] == {k: pretrained_settings[ours.name]["imagenet"][k] for k in PREPROCESSING_KEYS}
    assert ours.first_conv == "features.0" and ours.classifier_keys == ("classifier",)
    assert not ours.input_feature and ours.unet_center_block and not ours.supports_dilation


@pytest.fixture(autouse=True)
def classifier_on_meta(monkeypatch):
    """Build torchvision VGG's 120M-parameter classifier, which SMP deletes right away, on the meta
    device: SMP's VGG then builds in 0.2 s instead of 2-4 s. Its features are built and initialised
    on the CPU as usual (they exist before VGG.__init__ runs)."""
    original = torchvision.models.vgg.VGG.__init__

    def init(self, features, *args, **kwargs):
        with torch.device("meta"):
            original(self, features, *args, **kwargs)

    monkeypatch.setattr(torchvision.models.vgg.VGG, "__init__", init)


FAMILY = EncoderFamily(
    names=VGGS,
    parity=[("vgg11_bn", 5, 32)],
    # without BatchNorm, and the deepest stages (4 convs); depths 1-4 of vgg11_bn are in test_depths
    torch_parity=[("vgg11", 5, 32), ("vgg19_bn", 5, 32)],
    pretrained="vgg11_bn",
    registry_check=vgg_params,
    layout_names=VGGS if BACKEND == "torch" else ["vgg11_bn"],
    pretrained_in_channels=(1, 3, 4),  # one per branch of SMP's first-conv rule (2 takes 4's)
)
globals().update(FAMILY.tests())

