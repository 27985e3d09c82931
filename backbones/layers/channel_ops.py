"""Cutting and joining tensors along the channel axis (torch ``x[:, a:b]`` and ``torch.cat(dim=1)``)."""

import itertools

import keras
from keras import ops

from backbones.layers.formats import channel_axis


@keras.saving.register_keras_serializable(package="keras_seg")
class SplitChannels(keras.layers.Layer):
    """``x`` cut along ``axis`` into consecutive pieces of ``sizes`` channels (torch ``x.split(sizes, dim)``)."""

    def __init__(self, sizes, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]
        self.axis = int(axis)

    def build(self, input_shape):
        total = input_shape[self.axis]
        if total is not None and total != sum(self.sizes):
            raise ValueError(f"SplitChannels{tuple(self.sizes)} needs {sum(self.sizes)} channels, got {total}.")
        super().build(input_shape)

    def call(self, x):
        return ops.split(x, list(itertools.accumulate(self.sizes))[:-1], axis=self.axis)

    def compute_output_shape(self, input_shape):
        shapes = []
        for size in self.sizes:
            shape = list(input_shape)
            shape[self.axis] = size
            shapes.append(tuple(shape))
        return shapes

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes, "axis": self.axis}


def split_channels(x, sizes, *, data_format, name=None):
    """``[x[:, :s0], x[:, s0:s0 + s1], ...]`` in torch's NCHW terms; ``sizes`` must add up to the channels."""
    if len(sizes) == 1:
        return [x]
    return SplitChannels(sizes, axis=channel_axis(data_format), name=name)(x)


def concat_channels(tensors, *, data_format, name=None):
    """``torch.cat(tensors, dim=1)`` in torch's NCHW terms; a lone tensor (or a one-element list) is returned as is."""
    if not isinstance(tensors, (list, tuple)):
        return tensors
    if len(tensors) == 1:
        return tensors[0]
    return keras.layers.Concatenate(axis=channel_axis(data_format), name=name)(tensors)


@keras.saving.register_keras_serializable(package="keras_seg")
class ChannelScale(keras.layers.Layer):
    """``x * gamma`` per channel (timm's layer scale of a conv block, e.g. ConvNeXt's ``gamma``
    parameter): ``gamma`` of shape ``(C,)`` starts at ``init_value``, keyed ``<name>.<param>``
    (the layer named after the module that holds the parameter)."""

    def __init__(self, init_value=1e-6, data_format="channels_last", param="gamma", **kwargs):
        super().__init__(**kwargs)
        self.init_value, self.data_format, self.param = float(init_value), data_format, param

    def build(self, input_shape):
        c = input_shape[channel_axis(self.data_format)]
        self.gamma = self.add_weight(shape=(c,), initializer=keras.initializers.Constant(self.init_value), name=self.param)

    def call(self, x):
        shape = (1, -1, 1, 1) if self.data_format == "channels_first" else (1, 1, 1, -1)
        return x * ops.reshape(ops.cast(self.gamma, x.dtype), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def smp_params(self, prefix):
        from backbones.layers.norm import torch_params

        return torch_params(prefix, **{self.param: self.gamma})

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value, "data_format": self.data_format, "param": self.param}


def channel_scale(x, name, *, data_format, init_value=1e-6, param="gamma"):
    """A per-channel learned scale ``<name>.<param>`` (timm's ConvNeXt ``gamma``)."""
    return ChannelScale(init_value, data_format, param, name=name)(x)


__all__ = ["ChannelScale", "SplitChannels", "channel_scale", "concat_channels", "split_channels"]
