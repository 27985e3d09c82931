"""torchvision's DenseNet, as SMP's DenseNetEncoder uses it (the classifier dropped).

Layer names are torchvision's module paths: ``features.conv0/norm0``, dense layers
``features.denseblock{b}.denselayer{l}.{norm1,conv1,norm2,conv2}`` and transitions
``features.transition{b}.{norm,conv}``, then ``features.norm5``. SMP taps the transitions
after their norm + ReLU (before the 1x1 conv and the 2x2 average pool), and ends on
``norm5`` without a ReLU. Dropout (drop_rate 0) and memory_efficient do not change numerics.
"""

import keras

from backbones import registry
from backbones.layers import avg_pool, batch_norm, channel_axis, conv2d, layer_name, max_pool, relu, torch_conv_init
from backbones.resnet import IMAGENET_PREPROCESSING
from backbones.resnet import _hub as smp_hub

DILATION_ERROR = "DenseNet encoders do not support dilated mode due to pooling operation for downsampling!"
BN_SIZE = 4  # torchvision's bottleneck width multiplier


def _norm_relu_conv(x, filters, kernel_size, prefix, suffix, data_format):
    """torchvision's pre-activation unit: ``norm{suffix}``, ReLU, bias-free ``conv{suffix}``."""
    x = relu(batch_norm(x, layer_name(prefix, f"norm{suffix}"), data_format=data_format))
    # torchvision's DenseNet init: kaiming_normal_ (fan_in) conv weights.
    return conv2d(x, filters, kernel_size, layer_name(prefix, f"conv{suffix}"), data_format=data_format,
                  padding=kernel_size // 2, use_bias=False, kernel_initializer=torch_conv_init("fan_in"))


def _dense_block(x, prefix, num_layers, growth_rate, data_format):
    """``_DenseBlock``: each layer's ``growth_rate`` new channels concatenated after its input."""
    for i in range(1, num_layers + 1):
        name = layer_name(prefix, f"denselayer{i}")
        new = _norm_relu_conv(x, BN_SIZE * growth_rate, 1, name, 1, data_format)
        new = _norm_relu_conv(new, growth_rate, 3, name, 2, data_format)
        x = keras.layers.Concatenate(axis=channel_axis(data_format))([x, new])
    return x


def build_densenet(x, *, depth, output_stride, data_format, num_init_features, growth_rate, block_config):
    """DenseNet features: [x, relu0 (stride 2), transition1-3 norm+relu (4, 8, 16), norm5 (32)]."""
    features = [x]
    x = conv2d(x, num_init_features, 7, "features-conv0", data_format=data_format, stride=2, padding=3,
               use_bias=False, kernel_initializer=torch_conv_init("fan_in"))
    x = relu(batch_norm(x, "features-norm0", data_format=data_format))
    features.append(x)
    x = max_pool(x, 3, 2, 1, data_format=data_format, nonnegative=True)
    for b, num_layers in enumerate(block_config, start=1):
        x = _dense_block(x, layer_name("features", f"denseblock{b}"), num_layers, growth_rate, data_format)
        if b == len(block_config):
            break
        transition = layer_name("features", f"transition{b}")
        x = relu(batch_norm(x, layer_name(transition, "norm"), data_format=data_format))
        features.append(x)
        filters = x.shape[channel_axis(data_format)] // 2
        x = conv2d(x, filters, 1, layer_name(transition, "conv"), data_format=data_format, use_bias=False,
                   kernel_initializer=torch_conv_init("fan_in"))
        x = avg_pool(x, 2, 2, data_format=data_format)
    features.append(batch_norm(x, "features-norm5", data_format=data_format))
    return features


DENSENETS = {  # name: (out_channels, num_init_features, growth_rate, block_config, revision)
    "densenet121": ([3, 64, 256, 512, 1024, 1024], 64, 32, (6, 12, 24, 16), "a17c96896a265b61338f66f61d3887b24f61995a"),
    "densenet169": ([3, 64, 256, 512, 1280, 1664], 64, 32, (6, 12, 32, 32), "8facfba9fc72f7750879dac9ac6ceb3ab990de8d"),
    "densenet201": ([3, 64, 256, 512, 1792, 1920], 64, 32, (6, 12, 48, 32), "ed5deb355d71659391d46fae5e7587460fbb5f84"),
    "densenet161": ([3, 96, 384, 768, 2112, 2208], 96, 48, (6, 12, 36, 24), "9afe0fec51ab2a627141769d97d6f83756d78446"),
}

for _name, (_channels, _init, _growth, _blocks, _revision) in DENSENETS.items():
    registry.register_encoder(
        _name,
        build_densenet,
        out_channels=_channels,
        params=dict(num_init_features=_init, growth_rate=_growth, block_config=_blocks),
        pretrained_weights=smp_hub(_name, {"imagenet": _revision}),
        # SMP <= 0.5 took pretrainedmodels' torchvision_models settings; SMP 0.6 keeps them in the hub config.json.
        preprocessing={"imagenet": IMAGENET_PREPROCESSING},
        first_conv="features.conv0",
        dilation_error=DILATION_ERROR,
        classifier_keys=("classifier.",),  # SMP's load_state_dict pops classifier.weight / .bias
    )
