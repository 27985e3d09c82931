"""The weight initialisations torch modules get, as Keras initializers.

* torchvision's CNNs: ``kaiming_normal_(fan_out, relu)`` (``torch_conv_init``).
* SMP's ``initialize_decoder``: ``kaiming_uniform_(fan_in, relu)`` (``torch_decoder_init``).
* PyTorch's layer defaults: ``kaiming_uniform_(a=sqrt(5))`` weights and biases
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``torch_default_init``, ``torch_default_bias_init``).
"""

import math

import keras
import numpy as np


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


# --- Host-side random draws on JAX -------------------------------------------------------
#
# Eager jax.random compiles one XLA program per weight shape (threefry): building a
# densenet121 Unet took 165 s on JAX on 2 cores, 14 s with the draws below. The kit's
# parametric layers (``HostDrawnWeights``) draw the initial values of Keras's random
# initializers with numpy instead, with the same distributions and the initializer's own
# integer seed (so ``keras.utils.set_random_seed`` still makes a model reproducible).

_TRUNCATED_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def _fans(shape):
    """(fan_in, fan_out) as Keras counts them (kernels ``(..., in, out)``)."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng, shape):
    """Unit normal draws redrawn until all lie in [-2, 2] (Keras's truncation)."""
    x = rng.standard_normal(shape)
    outside = np.abs(x) > 2.0
    while outside.any():
        x[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(x) > 2.0
    return x


_HOST_DRAWABLE = (keras.initializers.VarianceScaling, keras.initializers.RandomUniform,
                  keras.initializers.RandomNormal, keras.initializers.TruncatedNormal)


def _host_drawable(initializer):
    """One of Keras's variance-scaling / uniform / normal initializers with an integer seed
    (and Keras's default fan axes)."""
    return (
        isinstance(initializer, _HOST_DRAWABLE) and isinstance(initializer.seed, int)
        and getattr(initializer, "input_axes", None) is None and getattr(initializer, "output_axes", None) is None
    )


def _numpy_draw(initializer, shape):
    """The values ``initializer(shape)`` draws, drawn with numpy (``_host_drawable`` initializers)."""
    init = keras.initializers
    rng = np.random.default_rng(initializer.seed)
    if isinstance(initializer, init.VarianceScaling):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[initializer.mode]
        scale = initializer.scale / max(1.0, fan)
        if initializer.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            return rng.uniform(-limit, limit, shape)
        if initializer.distribution == "untruncated_normal":
            return rng.standard_normal(shape) * math.sqrt(scale)
        return _truncated_normal(rng, shape) * (math.sqrt(scale) / _TRUNCATED_STD)
    if isinstance(initializer, init.RandomUniform):
        return rng.uniform(initializer.minval, initializer.maxval, shape)
    if isinstance(initializer, init.RandomNormal):
        return initializer.mean + initializer.stddev * rng.standard_normal(shape)
    return initializer.mean + initializer.stddev * _truncated_normal(rng, shape)  # TruncatedNormal


def host_drawn(initializer):
    """``initializer`` itself, or on the JAX backend an equivalent that draws on the host."""
    initializer = keras.initializers.get(initializer)
    if keras.config.backend() != "jax" or not _host_drawable(initializer):
        return initializer

    def draw(shape, dtype=None):
        values = _numpy_draw(initializer, tuple(int(d) for d in shape))
        return keras.ops.convert_to_tensor(values.astype(keras.backend.standardize_dtype(dtype or "float32")))

    return draw


class HostDrawnWeights:
    """Mixin for Keras layers: their random initial weights are drawn by ``host_drawn``."""

    def add_weight(self, *args, initializer=None, **kwargs):
        return super().add_weight(*args, initializer=host_drawn(initializer) if initializer is not None else None, **kwargs)
