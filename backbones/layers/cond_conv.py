"""timm's ``CondConv2d`` (conditionally parameterised convolution): ``num_experts`` kernels mixed per sample by
routing weights, ``conv(x_b, sum_e r_be W_e) + sum_e r_be b_e``.

Variables in timm's layout, so its state_dict keys load 1:1 (``smp_params``): ``weight`` (E, out * in/groups
* kh * kw), each row a torch conv weight (out, in/groups, kh, kw) flattened; ``bias`` (E, out).

The conv is linear in its kernel, so the layer runs one conv with every expert's kernel side by side
(E * out filters; grouped: each group's experts next to each other) and sums the experts' outputs weighted
by the routing weights: the same numbers as timm's per-sample kernels (up to float32 summation order), with
the backends' ordinary conv / depthwise-conv ops, in both data formats. Padding is the kit's
(``pad_for_conv``: torch's symmetric padding or TF "SAME"); a conv with stride and dilation both above 1 is
the stride-1 conv sampled every ``stride`` pixels, as the kit's ``conv2d`` runs it.
"""

import math

import keras
from keras import ops

from backbones.layers.conv import depthwise_conv_op
from backbones.layers.initializers import HostDrawnWeights
from backbones.layers.norm import torch_params
from backbones.layers.padding import pad_for_conv


def _pair(value):
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


@keras.saving.register_keras_serializable(package="keras_seg")
class CondConv2D(HostDrawnWeights, keras.layers.Layer):
    """timm's ``CondConv2d`` on ``[x, routing_weights]`` (routing ``(B, num_experts)``); ``padding`` is Keras's
    "valid" or "same" (the kit pads explicitly before it otherwise, see ``cond_conv2d``). Default init: torch's
    conv default per expert (``kaiming_uniform_(a=sqrt(5))``, bias U(+-1/sqrt(fan_in))), as timm's
    ``reset_parameters``."""

    def __init__(self, filters, kernel_size, num_experts, strides=1, padding="valid", dilation_rate=1, groups=1,
                 use_bias=False, data_format="channels_last", kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.num_experts = int(filters), _pair(kernel_size), int(num_experts)
        self.strides, self.padding, self.dilation_rate = _pair(strides), padding, _pair(dilation_rate)
        self.groups, self.use_bias, self.data_format = int(groups), bool(use_bias), data_format
        self.kernel_initializer = keras.initializers.get(kernel_initializer) if kernel_initializer else None
        if self.filters % self.groups:
            raise ValueError(f"CondConv2D: {filters} filters do not divide into {groups} groups.")

    def build(self, input_shapes):
        x_shape = input_shapes[0]
        in_chs = x_shape[-1] if self.data_format == "channels_last" else x_shape[1]
        if in_chs % self.groups:
            raise ValueError(f"CondConv2D: {in_chs} input channels do not divide into {self.groups} groups.")
        self.in_channels = int(in_chs)
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        init = self.kernel_initializer or keras.initializers.RandomUniform(-bound, bound)
        self.weight = self.add_weight(shape=(self.num_experts, self.filters * fan_in), initializer=init, name="weight")
        self.bias = (self.add_weight(shape=(self.num_experts, self.filters), initializer=keras.initializers.RandomUniform(
            -bound, bound), name="bias") if self.use_bias else None)

    def _kernel(self):
        """Every expert's kernel side by side, Keras layout: (kh, kw, in/g, g * E * out/g), each group's
        experts consecutive; a depthwise conv's as (kh, kw, C, E) (output channel c * E + e)."""
        e, g, kh, kw = self.num_experts, self.groups, *self.kernel_size
        cin_g, out_g = self.in_channels // g, self.filters // g
        w = ops.reshape(self.weight, (e, g, out_g, cin_g, kh, kw))
        w = ops.transpose(w, (4, 5, 3, 1, 0, 2))  # kh, kw, in/g, g, E, out/g
        if self._depthwise():
            return ops.reshape(w, (kh, kw, g, e * out_g))
        return ops.reshape(w, (kh, kw, cin_g, g * e * out_g))

    def _depthwise(self):
        return self.groups > 1 and self.groups == self.in_channels

    def call(self, inputs):
        x, routing = inputs
        strided_dilated = max(self.strides) > 1 and max(self.dilation_rate) > 1
        strides = 1 if strided_dilated else self.strides
        kernel = ops.cast(self._kernel(), x.dtype)
        if self._depthwise():
            y = depthwise_conv_op(x, kernel, strides, self.padding, self.dilation_rate, self.data_format)
        else:
            y = ops.conv(x, kernel, strides=strides, padding=self.padding, data_format=self.data_format,
                         dilation_rate=self.dilation_rate)
        if strided_dilated:
            y = ops.max_pool(y, 1, strides=self.strides, padding="valid", data_format=self.data_format)
        e, g, out_g = self.num_experts, self.groups, self.filters // self.groups
        routing = ops.cast(routing, y.dtype)
        shape = ops.shape(y)
        if self.data_format == "channels_last":
            b, h, w = shape[0], shape[1], shape[2]
            y = ops.reshape(y, (b, h, w, g, e, out_g))
            y = ops.sum(y * ops.reshape(routing, (-1, 1, 1, 1, e, 1)), axis=4)
            y = ops.reshape(y, (b, h, w, self.filters))
        else:
            b, h, w = shape[0], shape[2], shape[3]
            y = ops.reshape(y, (b, g, e, out_g, h, w))
            y = ops.sum(y * ops.reshape(routing, (-1, 1, e, 1, 1, 1)), axis=2)
            y = ops.reshape(y, (b, self.filters, h, w))
        if self.bias is not None:
            bias = ops.matmul(routing, ops.cast(self.bias, y.dtype))  # (B, out)
            y = y + ops.reshape(bias, (-1, 1, 1, self.filters) if self.data_format == "channels_last" else (-1, self.filters, 1, 1))
        return y

    def smp_params(self, prefix):
        return torch_params(prefix, weight=self.weight, **({"bias": self.bias} if self.bias is not None else {}))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "num_experts": self.num_experts, "strides": list(self.strides), "padding": self.padding,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups, "use_bias": self.use_bias,
                "data_format": self.data_format,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer) if self.kernel_initializer else None}


def cond_conv2d(x, routing, filters, kernel_size, name, *, num_experts, data_format, stride=1, padding=0, dilation=1,
                groups=1, use_bias=False, kernel_initializer=None):
    """timm's ``CondConv2d(C, filters, kernel_size, stride, padding, dilation, groups, bias, num_experts)`` named
    ``name`` on ``x`` with ``routing`` weights ``(B, num_experts)``; ``padding`` takes every form of
    ``backbones.layers.padding`` ("tf_same" included)."""
    x, keras_padding = pad_for_conv(x, kernel_size, padding, data_format, stride, dilation, name=f"{name}_pad")
    return CondConv2D(filters, kernel_size, num_experts, strides=stride, padding=keras_padding, dilation_rate=dilation,
                      groups=groups, use_bias=use_bias, data_format=data_format, kernel_initializer=kernel_initializer,
                      name=name)([x, routing])
