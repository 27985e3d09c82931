"""Shared test set-up.

The reference (torch, torchvision, SMP, which pulls in triton) is imported before
Keras: importing triton after TensorFlow segfaults (measured with TF 2.21 and
triton 3.8), so the order here matters on the TensorFlow backend.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import segmentation_models_pytorch  # noqa: E402,F401

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(params=["channels_last", "channels_first"])
def data_format(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
