"""Reversible mapping between torch state_dict module paths and Keras layer names.

Keras layer names may not contain "." on the torch backend, so every parametric
layer is named after its torch module path with "." replaced by "-". SMP's module
paths never contain "-", so the mapping is exact in both directions.
"""

SEPARATOR = "-"


def layer_name(*parts):
    """Keras layer name for the torch module path made of ``parts``.

    ``layer_name("decoder", "blocks", 0, "conv1", 0)`` -> ``"decoder-blocks-0-conv1-0"``.
    Empty parts are skipped, so a prefix of ``""`` adds nothing.
    """
    return SEPARATOR.join(str(p) for p in parts if p != "" and p is not None)


def torch_path(name):
    """Torch module path for a Keras layer name made by :func:`layer_name`."""
    return name.replace(SEPARATOR, ".")


def join(prefix, name):
    """Join two module path pieces with the layer-name separator."""
    return layer_name(prefix, name)
