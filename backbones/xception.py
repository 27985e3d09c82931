"""Xception (pretrainedmodels' port, vendored by SMP as ``_xception.py``), as SMP's
XceptionEncoder uses it: conv1/conv2 padded (1, 1) to keep the shapes, ``fc`` dropped.

Layer names are the torch module paths: ``blockN.rep.{i}`` (separable convs
``.conv1`` depthwise + ``.pointwise``, BatchNorms), ``blockN.skip`` / ``blockN.skipbn``.
"""

import keras

from backbones import registry
from backbones.layers import (
    batch_norm,
    channels,
    conv2d,
    layer_name,
    max_pool,
    relu,
    separable_conv2d,
    torch_default_init,
)
from backbones.resnet import _hub as smp_hub  # {weights: smp-hub/<name>.<weights> at a revision}

DILATION_ERROR = "Xception encoder does not support dilated mode due to pooling operation for downsampling!"

# Block name -> (out_filters, reps, strides, start_with_relu, grow_first), as _xception.Xception builds them.
BLOCKS = {
    "block1": (128, 2, 2, False, True),
    "block2": (256, 2, 2, True, True),
    "block3": (728, 2, 2, True, True),
    **{f"block{i}": (728, 3, 1, True, True) for i in range(4, 12)},
    "block12": (1024, 2, 2, True, False),
}
# The blocks that end SMP's stride-4, -8 and -16 features.
FEATURE_BLOCKS = ("block1", "block2", "block11")

PREPROCESSING = {
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "input_range": [0, 1],
    "input_space": "RGB",
}


def _conv(x, filters, kernel_size, name, data_format, stride=1, padding=0):
    """A bias-free ``nn.Conv2d`` with torch's default initialisation."""
    return conv2d(
        x, filters, kernel_size, name, data_format=data_format, stride=stride, padding=padding, use_bias=False,
        kernel_initializer=torch_default_init(),
    )


def _separable(x, filters, prefix, data_format):
    """_xception's ``SeparableConv2d(in, filters, 3, 1, 1)``: ``prefix.conv1`` (depthwise) + ``prefix.pointwise``."""
    return separable_conv2d(
        x, filters, 3, layer_name(prefix, "conv1"), layer_name(prefix, "pointwise"), data_format=data_format, padding=1,
        use_bias=False, depthwise_initializer=torch_default_init(depthwise=True), kernel_initializer=torch_default_init(),
    )


def _rep_layers(in_filters, out_filters, reps, start_with_relu, grow_first):
    """The ``rep`` Sequential of a Block as ("relu" | "sep" | "bn", filters) entries, torch indices kept."""
    def unit(filters):
        return [("relu", None), ("sep", filters), ("bn", filters)]

    layers = unit(out_filters) if grow_first else []
    middle = out_filters if grow_first else in_filters
    for _ in range(reps - 1):
        layers += unit(middle)
    if not grow_first:
        layers += unit(out_filters)
    return layers if start_with_relu else layers[1:]


def _block(x, prefix, out_filters, reps, strides, start_with_relu, grow_first, data_format):
    """_xception's ``Block``: rep (ReLU, separable conv, BatchNorm units, a 3x3/2 max-pool when
    strided) plus the input, through a 1x1 conv + BatchNorm when the shape changes."""
    in_filters = channels(x, data_format)
    out = x
    for i, (kind, filters) in enumerate(_rep_layers(in_filters, out_filters, reps, start_with_relu, grow_first)):
        name = layer_name(prefix, "rep", i)
        if kind == "relu":
            out = relu(out)
        elif kind == "sep":
            out = _separable(out, filters, name, data_format)
        else:
            out = batch_norm(out, name, data_format=data_format)
    if strides != 1:
        out = max_pool(out, 3, strides, 1, data_format=data_format)  # -inf padding, as torch
    skip = x
    if out_filters != in_filters or strides != 1:
        skip = _conv(x, out_filters, 1, layer_name(prefix, "skip"), data_format, stride=strides)
        skip = batch_norm(skip, layer_name(prefix, "skipbn"), data_format=data_format)
    return keras.layers.Add()([out, skip])


def build_xception(x, *, depth, output_stride, data_format):
    """Xception features: [x, relu2 (stride 2), block1, block2, block11, bn4 (stride 32)]."""
    features = [x]
    for i, (filters, stride) in enumerate(((32, 2), (64, 1)), start=1):
        x = _conv(x, filters, 3, f"conv{i}", data_format, stride=stride, padding=1)
        x = relu(batch_norm(x, f"bn{i}", data_format=data_format))
    features.append(x)
    for name, config in BLOCKS.items():
        x = _block(x, name, *config, data_format)
        if name in FEATURE_BLOCKS:
            features.append(x)
    x = relu(batch_norm(_separable(x, 1536, "conv3", data_format), "bn3", data_format=data_format))
    x = batch_norm(_separable(x, 2048, "conv4", data_format), "bn4", data_format=data_format)
    features.append(x)
    return features


registry.register_encoder(
    "xception",
    build_xception,
    out_channels=[3, 64, 128, 256, 728, 2048],
    pretrained_weights=smp_hub("xception", {"imagenet": "01cfaf27c11353b1f0c578e7e26d2c000ea91049"}),
    # pretrainedmodels' pretrained_settings["xception"]["imagenet"] (SMP <= 0.4 used that table; the
    # vendored _xception.py's docstring: Normalize(mean=[0.5] * 3, std=[0.5] * 3)).
    preprocessing={"imagenet": PREPROCESSING},
    first_conv="conv1",
    dilation_error=DILATION_ERROR,
    classifier_keys=("fc.",),  # SMP's load_state_dict pops fc.weight / fc.bias
)
