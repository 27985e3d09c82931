"""Convolutions with torch's padding and parameter layout: plain/grouped, depthwise, separable.

Layer names are torch module paths (``weight_ports.naming``), so the generic translator
ports their weights: Conv2D (O, I/g, kh, kw) and DepthwiseConv2D (C, 1, kh, kw).
"""

import keras
from keras import ops

from backbones.layers import jax_paths, torch_paths
from backbones.layers.formats import channels
from backbones.layers.initializers import HostDrawnWeights
from backbones.layers.padding import FoldedPadding, foldable_padding, pad_for_conv


def _add_bias(layer, outputs):
    """``outputs + bias`` on the channel axis. Keras 3.15's ``ops.add`` on TensorFlow takes a
    (1, C, 1, 1) bias for an NHWC one whenever the width equals C (its BiasAdd shortcut), and
    adds it along the width: wrong numbers for channels_first. The tensors' own ``+`` is exact."""
    shape = (1, -1, 1, 1) if layer.data_format == "channels_first" else (1, 1, 1, -1)
    return outputs + ops.reshape(ops.cast(layer.bias, outputs.dtype), shape)


@keras.saving.register_keras_serializable(package="keras_seg")
class Conv2D(FoldedPadding, HostDrawnWeights, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with a bias add that is right in both data formats (see ``_add_bias``) and
    ``explicit_padding`` (``FoldedPadding``); torch's conv2d without Keras's per-call copies on the torch
    backend (``torch_paths``), the JAX CPU paths for grouped and mostly-padding dilated convs (``jax_paths``)."""

    def call(self, inputs):
        return _convolve(self, inputs, jax_paths.conv2d, lambda x: self.convolution_op(x, self.kernel))


@keras.saving.register_keras_serializable(package="keras_seg")
class DepthwiseConv2D(FoldedPadding, HostDrawnWeights, keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` with the exact bias add and ``explicit_padding`` of ``Conv2D`` above;
    torch's grouped conv2d on the torch backend, the JAX CPU paths (``jax_paths.depthwise_conv2d``)."""

    def call(self, inputs):
        return _convolve(self, inputs, jax_paths.depthwise_conv2d, lambda x: ops.depthwise_conv(
            x, self.kernel, strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate,
            data_format=self.data_format))


def _convolve(layer, inputs, jax_path, convolve):
    """A kit conv layer's call: torch's conv2d on the torch backend, else ``jax_path(layer, inputs)`` (JAX on
    the CPU; None where it does not apply) or ``convolve`` of the padded inputs; then the exact bias add."""
    padding = torch_paths.conv_padding(layer) if torch_paths.ENABLED else None
    if padding is not None:
        return torch_paths.conv2d(layer, inputs, padding)
    outputs = jax_path(layer, inputs) if jax_paths.enabled() else None
    if outputs is None:
        outputs = convolve(layer._padded(inputs))
    return _add_bias(layer, outputs) if layer.use_bias else outputs


def depthwise_conv_op(x, kernel, strides, padding, dilation_rate, data_format):
    """``keras.ops.depthwise_conv`` (kernel (kh, kw, C, multiplier)); on the JAX backend's CPU its fast path."""
    if jax_paths.enabled():
        outputs = jax_paths.depthwise_conv(x, kernel, strides, padding, dilation_rate, data_format)
        if outputs is not None:
            return outputs
    return ops.depthwise_conv(x, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate, data_format=data_format)


@keras.saving.register_keras_serializable(package="keras_seg")
class Conv2DTranspose(HostDrawnWeights, keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` with the exact bias add of ``Conv2D`` above."""

    def call(self, inputs):
        outputs = None
        if jax_paths.enabled() and self.padding == "valid" and self.output_padding is None and max(self.dilation_rate) == 1:
            outputs = jax_paths.conv_transpose(inputs, self.kernel, self.strides, self.data_format)
        if outputs is None:
            outputs = ops.conv_transpose(
            inputs, self.kernel, strides=list(self.strides), padding=self.padding, output_padding=self.output_padding,
            dilation_rate=self.dilation_rate, data_format=self.data_format,
        )
        return _add_bias(self, outputs) if self.use_bias else outputs


@keras.saving.register_keras_serializable(package="keras_seg")
class Dense(HostDrawnWeights, keras.layers.Dense):
    """``keras.layers.Dense`` (torch ``nn.Linear``, weight (O, I) as (I, O)); torch's ``F.linear`` on the torch backend."""

    def call(self, inputs, training=None):
        if torch_paths.ENABLED:
            outputs = torch_paths.linear(self, inputs)
            if outputs is not None:
                return outputs
        return super().call(inputs, training=training)


def _strided_dilated(stride, dilation):
    """Keras refuses stride > 1 with dilation > 1; torch's such conv is the stride-1 dilated conv
    sampled every ``stride`` pixels from the first, which the kit runs instead."""
    return max(_pair(stride)) > 1 and max(_pair(dilation)) > 1


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _subsample(x, stride, data_format):
    """``x[:, :, ::sh, ::sw]`` (in NCHW terms) as a 1x1 max-pool with that stride."""
    return keras.layers.MaxPooling2D(1, strides=stride, padding="valid", data_format=data_format)(x)


def conv2d(
    x,
    filters,
    kernel_size,
    name,
    *,
    data_format,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    use_bias=True,
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """torch ``nn.Conv2d(..., stride, padding, dilation, groups, bias)`` named ``name``.

    ``padding`` takes every form of ``backbones.layers.padding`` ("tf_same" included), and
    stride > 1 together with dilation > 1 (see ``_strided_dilated``). A conv with ``groups`` equal to its input and output channels is a depthwise conv.
    """
    if groups > 1 and groups == channels(x, data_format) == filters:
        return depthwise_conv2d(
            x, kernel_size, name, data_format=data_format, stride=stride, padding=padding, dilation=dilation,
            use_bias=use_bias, depthwise_initializer=kernel_initializer, bias_initializer=bias_initializer,
        )
    folded = foldable_padding(kernel_size, stride, padding, dilation)  # applied by the Conv2D itself
    if folded is None:
        x, keras_padding = pad_for_conv(x, kernel_size, padding, data_format, stride, dilation, name=f"{name}_pad")
    else:
        keras_padding = "valid"
    if _strided_dilated(stride, dilation):
        x = conv2d(
            x, filters, kernel_size, name, data_format=data_format, dilation=dilation, groups=groups, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            padding=0 if folded is None else folded,
        )
        return _subsample(x, stride, data_format)
    return Conv2D(
        filters,
        kernel_size,
        explicit_padding=folded,
        strides=stride,
        padding=keras_padding,
        dilation_rate=dilation,
        groups=groups,
        use_bias=use_bias,
        data_format=data_format,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        name=name,
    )(x)


def depthwise_conv2d(
    x,
    kernel_size,
    name,
    *,
    data_format,
    stride=1,
    padding=0,
    dilation=1,
    use_bias=False,
    depthwise_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """torch ``nn.Conv2d(C, C, k, groups=C)`` (one filter per channel) named ``name``."""
    folded = foldable_padding(kernel_size, stride, padding, dilation)  # applied by the layer itself
    if folded is None:
        x, keras_padding = pad_for_conv(x, kernel_size, padding, data_format, stride, dilation, name=f"{name}_pad")
    else:
        keras_padding = "valid"
    if _strided_dilated(stride, dilation):
        x = depthwise_conv2d(
            x, kernel_size, name, data_format=data_format, dilation=dilation, use_bias=use_bias,
            depthwise_initializer=depthwise_initializer, bias_initializer=bias_initializer,
            padding=0 if folded is None else folded,
        )
        return _subsample(x, stride, data_format)
    return DepthwiseConv2D(
        kernel_size,
        explicit_padding=folded,
        strides=stride,
        padding=keras_padding,
        dilation_rate=dilation,
        use_bias=use_bias,
        data_format=data_format,
        depthwise_initializer=depthwise_initializer,
        bias_initializer=bias_initializer,
        name=name,
    )(x)


def separable_conv2d(
    x,
    filters,
    kernel_size,
    depthwise_name,
    pointwise_name,
    *,
    data_format,
    stride=1,
    padding=0,
    dilation=1,
    depthwise_bias=False,
    use_bias=True,
    depthwise_initializer="glorot_uniform",
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """A depthwise conv (``depthwise_name``) then a 1x1 pointwise conv (``pointwise_name``)."""
    x = depthwise_conv2d(
        x, kernel_size, depthwise_name, data_format=data_format, stride=stride, padding=padding, dilation=dilation,
        use_bias=depthwise_bias, depthwise_initializer=depthwise_initializer,
    )
    return conv2d(
        x, filters, 1, pointwise_name, data_format=data_format, use_bias=use_bias,
        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
    )


def conv_transpose2d(
    x,
    filters,
    kernel_size,
    name,
    *,
    data_format,
    stride=1,
    padding=0,
    use_bias=True,
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """torch ``nn.ConvTranspose2d(C, filters, kernel_size, stride, padding)`` named ``name``.

    torch's ``padding=p`` removes ``p`` rows/columns from each side of the full ("valid")
    transposed output, so this runs Keras's "valid" transposed conv and crops, the same on
    every backend however it reads "same". Weight (I, O, kh, kw) <-> Keras (kh, kw, O, I).
    """
    x = Conv2DTranspose(
        filters, kernel_size, strides=stride, padding="valid", use_bias=use_bias, data_format=data_format,
        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer, name=name,
    )(x)
    if padding:
        x = keras.layers.Cropping2D(((padding, padding), (padding, padding)), data_format=data_format)(x)
    return x
