"""The layer kit: torch-equivalent Keras building blocks that encoders and decoders share.

Every function takes a tensor (and the torch module path of its parametric layers as
``name``) and returns a tensor; parametric layers are named after torch module paths
with "-" for ".", so ``weight_ports``' one translator ports every checkpoint. Nothing
family- or architecture-specific lives here.
"""

from backbones.layers.activations import ACTIVATIONS, GroupSoftmax, activation, group_softmax, identity, relu
from backbones.layers.attention import squeeze_excite
from backbones.layers.channel_ops import SplitChannels, concat_channels, split_channels
from backbones.layers.cond_conv import CondConv2D, cond_conv2d
from backbones.layers.conv import Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, conv2d, conv_transpose2d, depthwise_conv2d, separable_conv2d
from backbones.layers.graph_run import ReleasingGraph
from backbones.layers.formats import (
    DATA_FORMATS,
    channel_axis,
    channels,
    move_channels_back,
    move_channels_last,
    spatial_axes,
    standardize_data_format,
)
from backbones.layers.initializers import torch_conv_init, torch_decoder_init, torch_default_bias_init, torch_default_init
from backbones.layers.norm import BatchNorm, batch_norm, group_norm, layer_norm, layer_norm_2d
from backbones.layers.padding import (
    TF_SAME,
    CeilPad,
    ConstantPad,
    NegInfPad,
    SamePad,
    explicit_padding,
    pad,
    pad_for_conv,
    same_padding_equivalent,
    static_same_padding,
)
from backbones.layers.pooling import avg_pool, global_avg_pool, max_pool
from backbones.layers.regularization import DropPath, drop_path
from backbones.layers import torch_paths  # noqa: F401  (fast paths on the torch backend)
from backbones.layers.transformer import (
    DotProductAttention,
    EmptyFeature,
    dot_product_attention,
    empty_feature,
    linear,
    trunc_normal_init,
)
from weight_ports.naming import layer_name

__all__ = [
    "ReleasingGraph",
    "ACTIVATIONS", "BatchNorm", "CondConv2D", "cond_conv2d", "CeilPad", "GroupSoftmax", "SplitChannels", "Conv2D", "Conv2DTranspose", "ConstantPad", "Dense", "DepthwiseConv2D", "conv_transpose2d", "DATA_FORMATS", "DropPath", "NegInfPad", "SamePad", "TF_SAME", "activation",
    "avg_pool", "batch_norm", "channel_axis", "channels", "concat_channels", "conv2d", "depthwise_conv2d", "drop_path",
    "explicit_padding", "global_avg_pool", "group_norm", "group_softmax", "identity", "layer_name", "layer_norm", "layer_norm_2d",
    "max_pool", "move_channels_back", "move_channels_last", "pad", "pad_for_conv", "relu", "same_padding_equivalent", "separable_conv2d", "spatial_axes", "split_channels",
    "squeeze_excite", "standardize_data_format", "static_same_padding", "torch_conv_init", "torch_decoder_init",
    "torch_default_bias_init", "torch_default_init",
    "DotProductAttention", "EmptyFeature", "dot_product_attention", "empty_feature", "linear", "trunc_normal_init",
]
