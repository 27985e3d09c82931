"""Input normalisation as SMP does it (``smp.encoders.get_preprocessing_fn``).

The settings (mean, std, input_range, input_space) come from the encoder registry:
each encoder spec holds ``"preprocessing": {weights_name: {...}}``.
"""

import functools

import numpy as np

from backbones.registry import get_spec


def preprocess_input(x, mean=None, std=None, input_space="RGB", input_range=None, **kwargs):
    """SMP's ``preprocess_input`` on a numpy array ``(..., H, W, C)`` (channels last).

    BGR flips the channel order; when ``input_range`` is given, its upper bound is 1
    and ``x.max() > 1`` (the test is on the whole array, as in SMP), ``x`` is divided
    by 255; then ``(x - mean) / std``.
    """
    if input_space == "BGR":
        x = x[..., ::-1].copy()
    if input_range is not None:
        if x.max() > 1 and input_range[1] == 1:
            x = x / 255.0
    if mean is not None:
        x = x - np.array(mean)
    if std is not None:
        x = x / np.array(std)
    return x


def get_preprocessing_params(encoder_name, pretrained="imagenet"):
    """``{"input_space", "input_range", "mean", "std"}`` for ``encoder_name``'s ``pretrained`` weights.

    ``tu-`` names take their tag's settings (SMP reads timm's pretrained config; ``pretrained`` is
    ignored), shipped in the registry (``<name>[.<tag>]``, generated from timm's pretrained configs; no
    timm at run time); a ``tu-`` name outside the ported builders raises the registry's error naming them.
    An unknown weights name raises SMP's ``ValueError("Available pretrained options ...")``.
    """
    if encoder_name.startswith("tu-"):
        spec = get_spec(encoder_name)
        settings = spec.preprocessing.get(spec.pretrained_tag) if spec.timm_tags else None
        if settings is None:
            raise ValueError(f"{encoder_name[3:]} does not have pretrained weights and preprocessing parameters")
    else:
        all_settings = get_spec(encoder_name).preprocessing
        if pretrained not in all_settings:
            raise ValueError(f"Available pretrained options {all_settings.keys()}")
        settings = all_settings[pretrained]
    return {
        "input_space": settings.get("input_space", "RGB"),
        "input_range": list(settings.get("input_range", [0, 1])),
        "mean": list(settings["mean"]),
        "std": list(settings["std"]),
    }


def get_preprocessing_fn(encoder_name, pretrained="imagenet"):
    """``functools.partial(preprocess_input, **get_preprocessing_params(...))``, as SMP."""
    params = get_preprocessing_params(encoder_name, pretrained=pretrained)
    return functools.partial(preprocess_input, **params)


def resolve_preprocessing(preprocessing):
    """Turn the ``preprocessing`` argument of the data loaders into a callable.

    ``None``: scale to [0, 1] (``x / 255`` for 8-bit input). A dict: the parameters of
    ``preprocess_input``. A callable: used as is.
    """
    if preprocessing is None:
        return scale_to_unit
    if callable(preprocessing):
        return preprocessing
    if isinstance(preprocessing, dict):
        unknown = set(preprocessing) - {"mean", "std", "input_space", "input_range"}
        if unknown:
            raise ValueError(
                f"preprocessing: unknown keys {sorted(unknown)}; valid keys are mean, std, input_space, input_range."
            )
        return functools.partial(preprocess_input, **preprocessing)
    raise ValueError(f"preprocessing must be None, a dict of preprocess_input parameters or a callable, got {preprocessing!r}.")


def scale_to_unit(x):
    """``uint8`` -> float in [0, 1]; float input is returned unchanged."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x
