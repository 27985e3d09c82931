"""SMP's output activations by name, as Keras layers."""

import keras
from keras import ops

from backbones.layers import channel_axis

ACTIVATIONS = (None, "identity", "sigmoid", "softmax", "softmax2d", "logsoftmax", "tanh", "argmax", "argmax2d", "clamp")


@keras.saving.register_keras_serializable(package="keras_seg")
class ChannelArgmax(keras.layers.Layer):
    """Index of the largest channel (SMP's "argmax2d"; also used for "argmax")."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return ops.argmax(x, axis=self.axis)

    def compute_output_shape(self, shape):
        shape = list(shape)
        del shape[self.axis]
        return tuple(shape)

    def compute_output_spec(self, x):
        return keras.KerasTensor(self.compute_output_shape(x.shape), dtype="int32")

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="keras_seg")
class Clamp(keras.layers.Layer):
    """Clip values to [min_value, max_value] (SMP's "clamp": 0..1)."""

    def __init__(self, min_value=0.0, max_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    def call(self, x):
        return ops.clip(x, self.min_value, self.max_value)

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}


def activation_layer(activation, data_format, name=None):
    """A Keras layer for SMP activation ``activation``, or None for identity.

    "softmax", "softmax2d" and "logsoftmax" act over channels (torch's implicit dim
    for 4D tensors). "argmax" also takes the channel axis: SMP's ``dim=None`` would
    flatten the whole batch into one index, which no segmentation model can use.
    A callable is accepted: a Keras Layer class is instantiated, any other callable
    is wrapped in ``keras.layers.Activation``.
    """
    axis = channel_axis(data_format)
    if activation is None or activation == "identity":
        return None
    if isinstance(activation, str):
        if activation == "sigmoid":
            return keras.layers.Activation("sigmoid", name=name)
        if activation in ("softmax", "softmax2d"):
            return keras.layers.Softmax(axis=axis, name=name)
        if activation == "logsoftmax":
            return keras.layers.Activation("log_softmax", name=name) if axis == -1 else _LogSoftmax(axis=axis, name=name)
        if activation == "tanh":
            return keras.layers.Activation("tanh", name=name)
        if activation in ("argmax", "argmax2d"):
            return ChannelArgmax(axis=axis, name=name)
        if activation == "clamp":
            return Clamp(0.0, 1.0, name=name)
    elif isinstance(activation, type) and issubclass(activation, keras.layers.Layer):
        return activation()
    elif isinstance(activation, keras.layers.Layer):
        return activation
    elif callable(activation):
        return keras.layers.Activation(activation, name=name)
    raise ValueError(f"Activation should be a callable or one of {ACTIVATIONS}; got {activation!r}.")


@keras.saving.register_keras_serializable(package="keras_seg")
class _LogSoftmax(keras.layers.Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return ops.log_softmax(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def apply_activation(x, activation, data_format, name=None):
    layer = activation_layer(activation, data_format, name=name)
    return x if layer is None else layer(x)
