"""Stochastic depth (drop-path / drop-connect): the identity at inference, as in torch."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_seg")
class DropPath(keras.layers.Layer):
    """Zero whole samples with probability ``rate`` in training and scale the rest by
    ``1 / (1 - rate)`` (timm's ``drop_path``, SMP EfficientNet's ``drop_connect``)."""

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype))
        return x / keep * mask

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def drop_path(x, rate, name=None):
    """``DropPath(rate)`` applied to ``x``; no layer at all for rate 0."""
    return x if not rate else DropPath(rate, name=name)(x)
