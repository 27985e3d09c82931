"""Inception-v4 and Inception-ResNet-v2 (pretrainedmodels' ports, vendored by SMP as
``_inceptionv4.py`` / ``_inceptionresnetv2.py``), as SMP's encoders use them.

SMP's encoders set ``padding=(1, 1)`` on every 3x3 conv and every max-pool, so every conv
pads ``kernel_size // 2`` per axis (the 1xn / nx1 / 5x5 convs already did) and every
3x3/2 max-pool pads 1: features at stride 2**k are ``ceil(size / 2**k)`` for any input
size. No dilation (SMP's error), ``last_linear`` dropped.

Both nets are a plan of torch modules, named as their module paths: ``BasicConv2d`` (a
``(filters, kernel_size[, stride])`` tuple: ``name.conv`` + ``name.bn`` + ReLU), pools,
mixed blocks (``{branch name: layers}``, a branch of several layers an ``nn.Sequential``:
``branch1.0``, ``branch1.1``, ...; the outputs concatenated in order), and the scaled
residual blocks (Block35 / Block17 / Block8) or Inception-C's forking branches. The plans take
their repeated blocks' counts (SMP's by default), so tests can run a cut-down copy.
"""

import functools

import keras

from backbones import registry
from backbones.layers import (
    avg_pool,
    batch_norm,
    channel_axis,
    channels,
    conv2d,
    layer_name,
    max_pool,
    relu,
    torch_default_bias_init,
    torch_default_init,
)
from backbones.resnet import _hub as smp_hub
from backbones.xception import PREPROCESSING  # pretrainedmodels' inception settings: mean = std = 0.5, [0, 1], RGB
from backbones.xception import _conv as plain_conv  # bias-free nn.Conv2d, torch's default init

MAX_POOL = "max_pool"  # nn.MaxPool2d(3, stride=2), SMP's padding 1
AVG_POOL = "avg_pool"  # nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
TAP = "tap"  # a plan entry: the output so far is the next encoder feature


def _half(kernel_size):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return (kh // 2, kw // 2)


def basic_conv(x, filters, kernel_size, name, data_format, stride=1):
    """``BasicConv2d``: bias-free conv (padding ``kernel_size // 2``), BatchNorm(eps=0.001), ReLU."""
    x = plain_conv(x, filters, kernel_size, layer_name(name, "conv"), data_format, stride=stride, padding=_half(kernel_size))
    return relu(batch_norm(x, layer_name(name, "bn"), data_format=data_format, eps=1e-3))


def concat(tensors, data_format):
    return keras.layers.Concatenate(axis=channel_axis(data_format))(tensors)


def module(x, spec, name, data_format):
    """One plan entry named ``name``: a BasicConv2d tuple, a pool, a mixed block or a block function."""
    if spec == MAX_POOL:
        return max_pool(x, 3, 2, 1, data_format=data_format, nonnegative=True)  # every input follows a ReLU
    if spec == AVG_POOL:
        return avg_pool(x, 3, 1, 1, data_format=data_format, count_include_pad=False)
    if isinstance(spec, dict):
        return mixed(x, name, spec, data_format)
    if callable(spec):
        return spec(x, name, data_format)
    return basic_conv(x, *spec[:2], name, data_format, stride=spec[2] if len(spec) > 2 else 1)


def branch(x, name, layers, data_format):
    """One layer named ``name``, or an ``nn.Sequential`` of them (``name.0``, ``name.1``, ...)."""
    if len(layers) == 1:
        return module(x, layers[0], name, data_format)
    for i, layer in enumerate(layers):
        x = module(x, layer, layer_name(name, i), data_format)
    return x


def mixed(x, prefix, branches, data_format):
    """``torch.cat`` of the ``branches`` (``{name: layers}``, in order), each applied to ``x``."""
    return concat([branch(x, layer_name(prefix, n), layers, data_format) for n, layers in branches.items()], data_format)


def residual(x, prefix, data_format, *, branches, scale, activate=True):
    """Block35 / Block17 / Block8: the branches' concat through a 1x1 conv (with bias) back to
    ``x``'s channels, times ``scale``, plus ``x``; ReLU unless ``activate`` is False (noReLU)."""
    out = mixed(x, prefix, branches, data_format)
    out = conv2d(
        out, channels(x, data_format), 1, layer_name(prefix, "conv2d"), data_format=data_format,
        kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(channels(out, data_format)),
    )
    if scale != 1.0:
        out = keras.layers.Rescaling(scale)(out)
    out = keras.layers.Add()([out, x])
    return relu(out) if activate else out


def inception_c(x, prefix, data_format):
    """Inception-v4's ``Inception_C``: two of its branches fork into a 1x3 and a 3x1 conv."""
    def conv(t, filters, kernel_size, name):
        return basic_conv(t, filters, kernel_size, layer_name(prefix, name), data_format)

    def fork(t, name):
        return concat([conv(t, 256, (1, 3), f"{name}a"), conv(t, 256, (3, 1), f"{name}b")], data_format)

    x1 = fork(conv(x, 384, 1, "branch1_0"), "branch1_1")
    x2 = conv(conv(conv(x, 384, 1, "branch2_0"), 448, (3, 1), "branch2_1"), 512, (1, 3), "branch2_2")
    x3 = branch(x, layer_name(prefix, "branch3"), [AVG_POOL, (256, 1)], data_format)
    return concat([conv(x, 256, 1, "branch0"), x1, fork(x2, "branch2_3"), x3], data_format)


# Inception-v4's blocks.
MIXED_3A = {"maxpool": [MAX_POOL], "conv": [(96, 3, 2)]}
MIXED_4A = {
    "branch0": [(64, 1), (96, 3)],
    "branch1": [(64, 1), (64, (1, 7)), (64, (7, 1)), (96, 3)],
}
MIXED_5A = {"conv": [(192, 3, 2)], "maxpool": [MAX_POOL]}
INCEPTION_A = {
    "branch0": [(96, 1)],
    "branch1": [(64, 1), (96, 3)],
    "branch2": [(64, 1), (96, 3), (96, 3)],
    "branch3": [AVG_POOL, (96, 1)],
}
REDUCTION_A = {
    "branch0": [(384, 3, 2)],
    "branch1": [(192, 1), (224, 3), (256, 3, 2)],
    "branch2": [MAX_POOL],
}
INCEPTION_B = {
    "branch0": [(384, 1)],
    "branch1": [(192, 1), (224, (1, 7)), (256, (7, 1))],
    "branch2": [(192, 1), (192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))],
    "branch3": [AVG_POOL, (128, 1)],
}
REDUCTION_B = {
    "branch0": [(192, 1), (192, 3, 2)],
    "branch1": [(256, 1), (256, (1, 7)), (320, (7, 1)), (320, 3, 2)],
    "branch2": [MAX_POOL],
}


def inceptionv4_plan(repeats=(4, 7, 3), taps=(2, 4, 8, 14, 21)):
    """``features.0`` ... with ``repeats`` Inception-A / -B / -C blocks, tapped after the modules at
    ``taps`` (SMP's ``_out_indexes``: the 3rd of 4 Inception-A, the 4th of 7 Inception-B, the last)."""
    a, b, c = repeats
    modules = [
        (32, 3, 2), (32, 3), (64, 3), MIXED_3A, MIXED_4A, MIXED_5A,
        *[INCEPTION_A] * a, REDUCTION_A, *[INCEPTION_B] * b, REDUCTION_B, *[inception_c] * c,
    ]
    return [entry for i, spec in enumerate(modules) for entry in [(layer_name("features", i), spec)] + ([TAP] if i in taps else [])]


# Inception-ResNet-v2's blocks.
MIXED_5B = {
    "branch0": [(96, 1)],
    "branch1": [(48, 1), (64, 5)],
    "branch2": [(64, 1), (96, 3), (96, 3)],
    "branch3": [AVG_POOL, (64, 1)],
}
BLOCK35 = functools.partial(residual, scale=0.17, branches={
    "branch0": [(32, 1)],
    "branch1": [(32, 1), (32, 3)],
    "branch2": [(32, 1), (48, 3), (64, 3)],
})
MIXED_6A = {
    "branch0": [(384, 3, 2)],
    "branch1": [(256, 1), (256, 3), (384, 3, 2)],
    "branch2": [MAX_POOL],
}
BLOCK17 = functools.partial(residual, scale=0.10, branches={
    "branch0": [(192, 1)],
    "branch1": [(128, 1), (160, (1, 7)), (192, (7, 1))],
})
MIXED_7A = {
    "branch0": [(256, 1), (384, 3, 2)],
    "branch1": [(256, 1), (288, 3, 2)],
    "branch2": [(256, 1), (288, 3), (320, 3, 2)],
    "branch3": [MAX_POOL],
}
BLOCK8_BRANCHES = {
    "branch0": [(192, 1)],
    "branch1": [(192, 1), (224, (1, 3)), (256, (3, 1))],
}


def _repeat(name, block, n):
    return [(layer_name(name, i), block) for i in range(n)]


def inceptionresnetv2_plan(repeats=(10, 20, 9)):
    """conv2d_1a ... conv2d_7b with ``repeats`` Block35 / Block17 / Block8 (``repeat``, ``repeat_1``,
    ``repeat_2``), tapped after conv2d_2b, conv2d_4a, repeat, repeat_1 and conv2d_7b."""
    n35, n17, n8 = repeats
    return [
        ("conv2d_1a", (32, 3, 2)), ("conv2d_2a", (32, 3)), ("conv2d_2b", (64, 3)), TAP,
        ("maxpool_3a", MAX_POOL), ("conv2d_3b", (80, 1)), ("conv2d_4a", (192, 3)), TAP,
        ("maxpool_5a", MAX_POOL), ("mixed_5b", MIXED_5B), *_repeat("repeat", BLOCK35, n35), TAP,
        ("mixed_6a", MIXED_6A), *_repeat("repeat_1", BLOCK17, n17), TAP,
        ("mixed_7a", MIXED_7A), *_repeat("repeat_2", functools.partial(residual, scale=0.20, branches=BLOCK8_BRANCHES), n8),
        ("block8", functools.partial(residual, scale=1.0, branches=BLOCK8_BRANCHES, activate=False)),
        ("conv2d_7b", (1536, 1)), TAP,
    ]


PLANS = {"inceptionv4": inceptionv4_plan, "inceptionresnetv2": inceptionresnetv2_plan}


def build_inception(x, *, depth, output_stride, data_format, plan, **sizes):
    """The features of ``PLANS[plan](**sizes)``: the input, then the output at each TAP (strides 2 ... 32)."""
    features = [x]
    for entry in PLANS[plan](**sizes):
        if entry == TAP:
            features.append(x)
        else:
            x = module(x, entry[1], entry[0], data_format)
    return features


# name -> (SMP's out_channels, first conv, the class name in SMP's dilation error, smp-hub revisions)
INCEPTION_ENCODERS = {
    "inceptionv4": ([3, 64, 192, 384, 1024, 1536], "features.0.conv", "InceptionV4", {
        "imagenet": "918fb54f07811d82a4ecde3a51156041d0facba9",
        "imagenet+background": "8c2a48e20d2709ee64f8421c61be309f05bfa536",
    }),
    "inceptionresnetv2": ([3, 64, 192, 320, 1088, 1536], "conv2d_1a.conv", "InceptionResnetV2", {
        "imagenet": "120c5afdbb80a1c989db0a7423ebb7a9db9b1e6c",
        "imagenet+background": "3ecf3491658dc0f6a76d69c9d1cb36511b1ee56c",
    }),
}

for _name, (_channels, _first_conv, _title, _revisions) in INCEPTION_ENCODERS.items():
    registry.register_encoder(
        _name,
        build_inception,
        out_channels=_channels,
        params={"plan": _name},
        pretrained_weights=smp_hub(_name, _revisions),
        # pretrainedmodels' pretrained_settings (SMP <= 0.4's table): the same for both weights.
        preprocessing={w: PREPROCESSING for w in _revisions},
        first_conv=_first_conv,
        dilation_error=f"{_title} encoder does not support dilated mode due to pooling operation for downsampling!",
        classifier_keys=("last_linear.",),  # SMP's load_state_dict pops last_linear.weight / .bias
    )
