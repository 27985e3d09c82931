"""Loss modes, named as in segmentation_models_pytorch.

* ``BINARY_MODE``: one foreground class. ``y_true`` is ``(N, H, W)`` or
  ``(N, H, W, 1)`` with values 0/1, ``y_pred`` is ``(N, H, W, 1)``.
* ``MULTICLASS_MODE``: mutually exclusive classes. ``y_true`` holds integer
  labels ``(N, H, W)`` (or ``(N, H, W, 1)``), ``y_pred`` is ``(N, H, W, C)``.
* ``MULTILABEL_MODE``: independent classes. ``y_true`` and ``y_pred`` are both
  ``(N, H, W, C)``.

Shapes are given channels-last; with ``data_format="channels_first"`` the
channel axis is axis 1 instead.
"""

from keras_seg.modes import BINARY_MODE  # noqa: F401  (one definition: keras_seg.modes)
from keras_seg.modes import MODES  # noqa: F401
from keras_seg.modes import MULTICLASS_MODE  # noqa: F401
from keras_seg.modes import MULTILABEL_MODE  # noqa: F401
