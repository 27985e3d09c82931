"""The weight initialisations SMP's layers get, as Keras initializers.

* SMP's ``initialize_decoder``: convs ``kaiming_uniform_(fan_in, relu)``.
* SMP's ``initialize_head``: xavier-uniform weights, zero biases.
* PyTorch's layer defaults (layers SMP never re-initialises, e.g. all of DeepLab):
  ``kaiming_uniform_(a=sqrt(5))`` weights and biases, both U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""

import math

import keras

HEAD_INITS = ("smp", "torch")


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


def head_initializers(init, fan_in):
    """``(kernel_initializer, bias_initializer)`` for a head layer: SMP's ``initialize_head`` or torch's default."""
    if init == "smp":
        return keras.initializers.GlorotUniform(), "zeros"
    if init == "torch":
        return torch_default_init(), torch_default_bias_init(fan_in)
    raise ValueError(f"Unknown head init {init!r}; valid choices: {HEAD_INITS}.")
