"""Data formats: the one place that resolves and validates ``data_format`` and moves channels."""

import keras
from keras import ops

DATA_FORMATS = ("channels_last", "channels_first")


def standardize_data_format(data_format):
    """``data_format`` (any case) or the global image data format; a ValueError for anything else."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if isinstance(data_format, str):
        data_format = data_format.lower()
    if data_format not in DATA_FORMATS:
        raise ValueError(f"Invalid `data_format`: {data_format!r}. Expected one of {list(DATA_FORMATS)} or None.")
    return data_format


def channel_axis(data_format):
    return 1 if data_format == "channels_first" else -1


def spatial_axes(data_format):
    return (2, 3) if data_format == "channels_first" else (1, 2)


def channels(x, data_format):
    """Static channel count of tensor ``x``."""
    return x.shape[channel_axis(data_format)]


def move_channels_last(x, data_format):
    """A channels-first tensor (rank >= 3) with axis 1 moved to the end; others unchanged."""
    if data_format == "channels_first" and len(x.shape) >= 3:
        return ops.moveaxis(x, 1, -1)
    return x


def move_channels_back(x, data_format):
    """The inverse of ``move_channels_last``."""
    if data_format == "channels_first" and len(x.shape) >= 3:
        return ops.moveaxis(x, -1, 1)
    return x
