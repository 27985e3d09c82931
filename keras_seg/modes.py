"""The three segmentation modes (SMP's names) and their check, shared by the losses,
the metrics, the datasets and the training helpers.

* ``BINARY_MODE``: one foreground class, targets 0/1, one output channel.
* ``MULTICLASS_MODE``: mutually exclusive classes, integer label targets.
* ``MULTILABEL_MODE``: independent classes, one 0/1 target channel per class.
"""

BINARY_MODE: str = "binary"
MULTICLASS_MODE: str = "multiclass"
MULTILABEL_MODE: str = "multilabel"

MODES = (BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE)


def check_mode(mode):
    """Return ``mode`` if it is one of ``MODES``; a ValueError naming the valid ones otherwise."""
    if mode not in MODES:
        raise ValueError(f"Invalid `mode`: {mode!r}. Expected one of {list(MODES)}.")
    return mode
