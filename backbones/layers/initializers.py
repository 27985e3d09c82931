"""The weight initialisations torch modules get, as Keras initializers.

* torchvision's CNNs: ``kaiming_normal_(fan_out, relu)`` (``torch_conv_init``).
* SMP's ``initialize_decoder``: ``kaiming_uniform_(fan_in, relu)`` (``torch_decoder_init``).
* PyTorch's layer defaults: ``kaiming_uniform_(a=sqrt(5))`` weights and biases
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``torch_default_init``, ``torch_default_bias_init``).
"""

import math

import keras


def torch_conv_init(mode="fan_out"):
    """He-normal init with fan_out, as torchvision initialises its ResNets."""
    return keras.initializers.VarianceScaling(2.0, mode, "untruncated_normal")


def torch_decoder_init():
    """kaiming_uniform_(fan_in, relu), what SMP's initialize_decoder uses for convs."""
    return keras.initializers.HeUniform()


def torch_default_init(depthwise=False):
    """PyTorch's default conv/linear weight init, ``kaiming_uniform_(a=sqrt(5))``.

    Keras counts a depthwise kernel ``(kh, kw, C, 1)``'s fan_in as ``C*kh*kw``; torch's
    is ``kh*kw`` (its weight is ``(C, 1, kh, kw)``), which Keras calls fan_out.
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out" if depthwise else "fan_in", "uniform")


def torch_default_bias_init(fan_in):
    """PyTorch's default bias init for a layer with ``fan_in`` inputs per output."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)
