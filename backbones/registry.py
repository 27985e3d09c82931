"""The encoder registry: one plain dict per encoder name, and the factory ``get_encoder``."""

import copy

ENCODERS = {}

VALID_OUTPUT_STRIDES = (8, 16, 32)


def register_encoder(
    name,
    builder,
    out_channels,
    params=None,
    pretrained_weights=None,
    preprocessing=None,
    first_conv="conv1",
    supports_dilation=True,
    max_depth=5,
    overwrite=False,
):
    """Register an encoder under ``name``.

    builder: ``builder(x, *, depth, output_stride, data_format, **params)`` takes the
        symbolic input tensor and returns the list of feature tensors at strides
        1, 2, 4, 8, 16, 32 (the input itself first). It should build every layer
        whose weights the torch encoder's state_dict holds, even those past ``depth``;
        ``Encoder`` keeps only the first ``depth + 1`` features.
    out_channels: the channels of those six features (the first is the input's, 3).
    pretrained_weights: ``{weights_name: {"repo_id": ..., "revision": ...}}`` on the
        Hugging Face hub, in SMP's format (config.json + model.safetensors).
    preprocessing: ``{weights_name: {"mean", "std", "input_range", "input_space"}}``.
    first_conv: torch state_dict key prefix of the first conv, adapted by SMP's rule
        when pretrained weights meet ``in_channels != 3``.
    """
    if name in ENCODERS and not overwrite:
        raise ValueError(f"Encoder {name!r} is already registered; pass overwrite=True to replace it.")
    ENCODERS[name] = {
        "builder": builder,
        "out_channels": list(out_channels),
        "params": dict(params or {}),
        "pretrained_weights": dict(pretrained_weights or {}),
        "preprocessing": dict(preprocessing or {}),
        "first_conv": first_conv,
        "supports_dilation": supports_dilation,
        "max_depth": max_depth,
    }


def list_encoders():
    """Names of all registered encoders, sorted."""
    return sorted(ENCODERS)


def get_spec(name):
    """The registry entry for ``name`` (a copy); a ValueError listing valid names otherwise."""
    if name not in ENCODERS:
        raise ValueError(f"Wrong encoder name {name!r}; supported encoders: {list_encoders()}")
    return copy.deepcopy(ENCODERS[name])


def validate(name, depth, output_stride):
    spec = get_spec(name)
    if not isinstance(depth, int) or not 1 <= depth <= spec["max_depth"]:
        raise ValueError(f"Encoder {name!r}: depth should be in range [1, {spec['max_depth']}], got {depth!r}.")
    if output_stride not in VALID_OUTPUT_STRIDES:
        raise ValueError(f"output_stride should be one of {VALID_OUTPUT_STRIDES}, got {output_stride!r}.")
    if output_stride != 32 and not spec["supports_dilation"]:
        raise ValueError(f"Encoder {name!r} does not support dilated mode (output_stride={output_stride}); use 32.")
    return spec


def weights_entry(name, weights):
    """The hub entry for pretrained ``weights`` of encoder ``name``; a ValueError listing valid names."""
    available = get_spec(name)["pretrained_weights"]
    if weights not in available:
        raise ValueError(
            f"Wrong pretrained weights {weights!r} for encoder {name!r}. Available options are: {sorted(available)} (or None)."
        )
    return available[weights]
