"""SMP's DenseNet encoders (torchvision DenseNet, features tapped inside the transitions after
norm + ReLU, norm5 last) against SMP (the shared conformance suite). SMP refuses output_stride 8/16:
test_dilation and test_every_architecture (DeepLabV3/V3+, PAN) check SMP's own message."""

from backbones.resnet import IMAGENET_PREPROCESSING
from tests.encoder_conformance import EncoderFamily
from tests.parity import BACKEND

DENSENETS = ["densenet121", "densenet169", "densenet201", "densenet161"]


def densenet_params(ours, theirs):
    assert ours.params == {k: v for k, v in theirs["params"].items() if k != "out_channels"}
    # SMP <= 0.5: pretrainedmodels' torchvision_models settings (ImageNet mean/std, range [0, 1], RGB).
    assert ours.preprocessing == {"imagenet": IMAGENET_PREPROCESSING}
    assert ours.first_conv == "features.conv0" and ours.classifier_keys == ("classifier.",)
    assert ours.input_feature and not ours.unet_center_block and not ours.supports_dilation


FAMILY = EncoderFamily(
    names=DENSENETS,
    parity=[("densenet121", 5, 32)],
    # densenet169/201/161 differ only in the registry parameters compared with SMP's table (block_config,
    # growth rate, initial width); their forward and build are not cheap (up to 700 Keras layers).
    pretrained="densenet121",
    registry_check=densenet_params,
    # densenet161: growth rate 48 and 96 initial features; 169/201 only add layers to blocks 3 and 4
    layout_names=["densenet121", "densenet161"] if BACKEND == "torch" else ["densenet121"],
    # member-based checks (depths, pretrained loading, every architecture, round trips) on a copy of
    # densenet121 with half its dense layers, twice its growth rate and every tap's channels kept (CI time)
    stand_in={"growth_rate": 64, "block_config": (3, 6, 12, 8)},
    pretrained_in_channels=(1, 3, 4),  # one per branch of SMP's first-conv rule (2 takes 4's)
)
globals().update(FAMILY.tests())
