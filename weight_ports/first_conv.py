"""SMP's rule for reusing 3-channel pretrained first-conv weights with other input channels."""

import numpy as np


def adapt_first_conv(weight, in_channels):
    """Adapt a torch-layout conv weight ``(O, 3, kh, kw)`` to ``in_channels`` inputs.

    1 channel: the sum over the RGB filters. Any other count: channel i takes the
    filter of RGB channel ``i % 3``, and the whole weight is scaled by ``3 / in_channels``.
    """
    weight = np.asarray(weight)
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"Expected a first-conv weight of shape (O, 3, kh, kw), got {weight.shape}.")
    if in_channels == 3:
        return weight
    if in_channels == 1:
        return weight.sum(axis=1, keepdims=True)
    idx = np.arange(in_channels) % 3
    return weight[:, idx] * (3.0 / in_channels)
