"""SMP's DPT decoder: a readout of the ViT's prefix tokens per feature, reassemble blocks that bring
the patch-stride features to strides 4, 8, 16, 32, ..., fusion blocks from the deepest up (residual
conv units, bilinear x2 with align_corners=True, 1x1 projection) and DPTSegmentationHead."""

import keras
from keras import ops

from backbones.layers import (
    Dense,
    activation,
    batch_norm,
    channels,
    conv2d,
    conv_transpose2d,
    layer_name,
    move_channels_back,
    move_channels_last,
    relu,
    torch_decoder_init,
    torch_default_bias_init,
    torch_default_init,
)
from keras_seg.activations import apply_activation
from keras_seg.layers import Resize

READOUTS = ("ignore", "add", "cat")


@keras.saving.register_keras_serializable(package="keras_seg")
class Readout(keras.layers.Layer):
    """SMP's readout of prefix tokens ``(B, P, C)`` into a channels_last map ``(B, h, w, C)``: "add" adds
    their mean to every pixel (ReadoutAddBlock); "cat" appends the first token to every pixel's
    channels, ``(B, h, w, 2C)`` (ReadoutConcatBlock, before its projection)."""

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("add", "cat"):
            raise ValueError(f"Readout mode must be 'add' or 'cat', got {mode!r}.")
        self.mode = mode

    def call(self, inputs):
        x, prefix = inputs
        if self.mode == "add":
            return x + ops.mean(prefix, axis=1)[:, None, None, :]
        token = ops.broadcast_to(prefix[:, 0][:, None, None, :], ops.shape(x))
        return ops.concatenate([x, token], axis=-1)

    def compute_output_shape(self, input_shapes):
        shape = tuple(input_shapes[0])
        return shape if self.mode == "add" else shape[:-1] + (None if shape[-1] is None else 2 * shape[-1],)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def readout_block(x, prefix_tokens, mode, name, data_format):
    """``projection_blocks[i]``: ignore, add (no weights) or cat (concat, then ``project.0`` Linear and GELU;
    without prefix tokens the Linear maps C -> C)."""
    if mode == "ignore" or (mode == "add" and prefix_tokens is None):
        return x
    dim = channels(x, data_format)
    y = move_channels_last(x, data_format)
    if prefix_tokens is not None:
        y = Readout(mode)([y, prefix_tokens])
    if mode == "cat":
        y = Dense(dim, kernel_initializer="glorot_uniform", bias_initializer="zeros", name=layer_name(name, "project", 0))(y)
        y = activation(y, "gelu")
    return move_channels_back(y, data_format)


def _decoder_conv(x, filters, kernel_size, name, data_format, **kwargs):
    """A decoder conv with SMP's initialize_decoder (kaiming-uniform fan_in, zero bias)."""
    return conv2d(x, filters, kernel_size, name, data_format=data_format, kernel_initializer=torch_decoder_init(), **kwargs)


def reassemble_block(x, mid_channels, out_channels, factor, name, data_format):
    """ReassembleBlock: 1x1 conv, then x``factor`` (a transposed conv), /``1 / factor`` (a strided 3x3 conv)
    or nothing, then a 3x3 conv without bias to ``out_channels``."""
    x = _decoder_conv(x, mid_channels, 1, layer_name(name, "project_to_out_channel"), data_format)
    if factor > 1:  # nn.ConvTranspose2d: SMP's initialize_decoder leaves torch's default init
        k = int(factor)
        x = conv_transpose2d(
            x, mid_channels, k, layer_name(name, "upsample"), data_format=data_format, stride=k,
            kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(mid_channels * k * k),
        )
    elif factor < 1:
        x = _decoder_conv(x, mid_channels, 3, layer_name(name, "upsample"), data_format, stride=int(1 / factor), padding=1)
    return _decoder_conv(x, out_channels, 3, layer_name(name, "project_to_feature_dim"), data_format, padding=1, use_bias=False)


def residual_conv_block(x, name, data_format):
    """ResidualConvBlock: (ReLU -> 3x3 conv -> BatchNorm) twice, plus the input."""
    dim = channels(x, data_format)
    y = x
    for i in (1, 2):
        y = _decoder_conv(relu(y), dim, 3, layer_name(name, f"conv_{i}"), data_format, padding=1, use_bias=False)
        y = batch_norm(y, layer_name(name, f"batch_norm_{i}"), data_format=data_format)
    return keras.layers.Add()([y, x])


def fusion_block(x, previous, name, data_format):
    """FusionBlock: residual unit, + the previous fused feature, residual unit, bilinear x2
    (align_corners=True), 1x1 projection."""
    x = residual_conv_block(x, layer_name(name, "residual_conv_block1"), data_format)
    if previous is not None:
        x = keras.layers.Add()([x, previous])
    x = residual_conv_block(x, layer_name(name, "residual_conv_block2"), data_format)
    x = Resize("bilinear", align_corners=True, scale_factor=2, data_format=data_format)(x)
    return _decoder_conv(x, channels(x, data_format), 1, layer_name(name, "project"), data_format)


def reassembled_sizes(grid, output_strides):
    """The size along one axis of each reassembled feature for a ``grid``-patch axis (SMP's
    ReassembleBlock: x int(factor) transposed conv, identity, or a 3x3 conv of stride int(1 / factor))."""
    sizes = []
    for i, stride in enumerate(output_strides):
        factor = stride / 2 ** (i + 2)
        sizes.append(grid * int(factor) if factor > 1 else grid if factor == 1 else (grid - 1) // int(1 / factor) + 1)
    return sizes


def fusion_mismatch(grid, output_strides):
    """None when the fusion blocks can add each reassembled feature to the fused one below it (twice its
    size); otherwise the sizes, for the error message."""
    sizes = reassembled_sizes(grid, output_strides)
    fused = None
    for size in sizes[::-1]:
        if fused is not None and fused != size:
            return sizes
        fused = 2 * size
    return None


def fusion_input_multiple(patch_size, output_strides):
    """The smallest input-size step (a multiple of the patch) whose patch grids all fuse, or None."""
    for m in range(1, 65):
        if all(fusion_mismatch(k * m, output_strides) is None for k in (1, 2, 3)):
            return m * patch_size
    return None


def dpt_decoder(features, prefix_tokens, *, output_strides, readout, intermediate_channels, fusion_channels, data_format,
                prefix="decoder"):
    """SMP's DPTDecoder on the ViT's ``features`` (maps at ``output_strides``) and their prefix tokens
    (None each without them): the fused map at stride 2 of the input's stride-4 level."""
    processed = []
    for i, (feature, tokens) in enumerate(zip(features, prefix_tokens)):
        x = readout_block(feature, tokens, readout, layer_name(prefix, "projection_blocks", i), data_format)
        factor = output_strides[i] / 2 ** (i + 2)  # to strides 4, 8, 16, 32, ...
        processed.append(
            reassemble_block(x, intermediate_channels[i], fusion_channels, factor, layer_name(prefix, "reassemble_blocks", i), data_format)
        )
    fused = None
    for j, feature in enumerate(processed[::-1]):
        fused = fusion_block(feature, fused, layer_name(prefix, "fusion_blocks", j), data_format)
    return fused


def dpt_segmentation_head(x, classes, activation_name, data_format, upsampling=2):
    """DPTSegmentationHead: 3x3 conv (no bias) -> BatchNorm -> ReLU -> Dropout(0.1) -> 1x1 conv, bilinear
    x``upsampling`` (align_corners=True), activation; SMP's initialize_head (xavier-uniform convs)."""
    dim = channels(x, data_format)
    x = conv2d(x, dim, 3, "segmentation_head-head-0", data_format=data_format, padding=1, use_bias=False, kernel_initializer="glorot_uniform")
    x = relu(batch_norm(x, "segmentation_head-head-1", data_format=data_format))
    x = keras.layers.Dropout(0.1)(x)
    x = conv2d(x, classes, 1, "segmentation_head-head-4", data_format=data_format, kernel_initializer="glorot_uniform")
    x = Resize("bilinear", align_corners=True, scale_factor=upsampling, data_format=data_format)(x)
    return apply_activation(x, activation_name, data_format, name="mask_activation")
