"""torchvision's VGG, as SMP's VGGEncoder uses it (``features`` only; the classifier dropped).

Layer names are torchvision's ``make_layers`` indices: ``features.{i}`` is a 3x3 conv (with
bias), then a BatchNorm at ``i + 1`` for the ``_bn`` members, a ReLU, and a 2x2/2 max-pool
after each stage. SMP's features are the outputs just before every max-pool (the first at
full resolution, stride 1) and the last max-pool's output (stride 32). The stride-1 feature
is VGG's own, not the input: the spec says so with ``input_feature=False``.
"""

from backbones import registry
from backbones.layers import batch_norm, conv2d, layer_name, max_pool, relu, torch_conv_init
from backbones.resnet import IMAGENET_PREPROCESSING
from backbones.resnet import _hub as smp_hub

DILATION_ERROR = "'VGG' models do not support dilated mode due to Max Pooling operations for downsampling!"

MAX_POOL = "M"
# torchvision's cfgs "A" (vgg11), "B" (vgg13), "D" (vgg16), "E" (vgg19): conv widths, "M" a max-pool.
CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def build_vgg(x, *, depth, output_stride, data_format, config, batch_norm_layers):
    """VGG features: [pre-pool 1 (stride 1), pre-pool 2, 3, 4, pre-pool 5 (stride 16), pool 5 (stride 32)].

    ``depth`` and ``output_stride`` are handled by ``Encoder`` / the registry (no dilation).
    """
    features, index = [], 0
    for item in config:
        if item == MAX_POOL:
            features.append(x)
            x = max_pool(x, 2, 2, data_format=data_format, name=layer_name("features", index))
            index += 1
            continue
        # torchvision's VGG init: kaiming_normal_(fan_out, relu) weights, zero biases.
        x = conv2d(x, item, 3, layer_name("features", index), data_format=data_format, padding=1,
                   kernel_initializer=torch_conv_init())
        index += 1
        if batch_norm_layers:
            x = batch_norm(x, layer_name("features", index), data_format=data_format)
            index += 1
        x = relu(x)
        index += 1
    features.append(x)
    return features


REVISIONS = {
    "vgg11": "ad8b90e1051c38fdbf399cf5016886a1be357390",
    "vgg11_bn": "59757f9215032c9f092977092d57d26a9df7fd9c",
    "vgg13": "1b70ff2580f101a8007a48b51e2b5d1e5925dc42",
    "vgg13_bn": "9be454515193af6612261b7614fe90607e27b143",
    "vgg16": "49d74b799006ee252b86e25acd6f1fd8ac9a99c1",
    "vgg16_bn": "2c186d02fb519e93219a99a1c2af6295aef0bf0d",
    "vgg19": "2853d00d7bca364dbb98be4d6afa347e5aeec1f6",
    "vgg19_bn": "f09a924cb0d201ea6f61601df9559141382271d7",
}

for _name, _revision in REVISIONS.items():
    registry.register_encoder(
        _name,
        build_vgg,
        out_channels=[64, 128, 256, 512, 512, 512],
        params=dict(config=CONFIGS[int(_name[3:5])], batch_norm_layers=_name.endswith("_bn")),
        pretrained_weights=smp_hub(_name, {"imagenet": _revision}),
        # SMP's vgg.pretrained_settings (torchvision's ImageNet weights).
        preprocessing={"imagenet": IMAGENET_PREPROCESSING},
        first_conv="features.0",
        dilation_error=DILATION_ERROR,
        input_feature=False,
        unet_center_block=True,
        classifier_keys=("classifier",),  # SMP's load_state_dict pops every key starting with "classifier"
    )
