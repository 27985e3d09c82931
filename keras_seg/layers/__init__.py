"""Keras layers keras-seg needs beyond Keras's own."""

from keras_seg.layers.resize import Resize

__all__ = ["Resize"]
