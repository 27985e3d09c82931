"""Data formats: the one place that resolves and validates ``data_format``."""

import keras

DATA_FORMATS = ("channels_last", "channels_first")


def standardize_data_format(data_format):
    """``data_format`` or the global image data format; a ValueError for anything else."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS} or None, got {data_format!r}.")
    return data_format


def channel_axis(data_format):
    return -1 if data_format == "channels_last" else 1


def spatial_axes(data_format):
    return (1, 2) if data_format == "channels_last" else (2, 3)


def channels(x, data_format):
    """Static channel count of tensor ``x``."""
    return x.shape[channel_axis(data_format)]
