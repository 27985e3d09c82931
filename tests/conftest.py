"""Shared test set-up.

The reference (torch, torchvision, SMP, which pulls in triton) is imported before
Keras: importing triton after TensorFlow segfaults (measured with TF 2.21 and
triton 3.8), so the order here matters on the TensorFlow backend.

TensorFlow's own CPU kernels run convolutions and pooling only channels_last; its
oneDNN kernels also run channels_first. TF turns oneDNN on by itself only on CPUs
with AVX-512 (measured: on an AVX2-only AMD EPYC every channels_first test failed with
"The Conv2D op currently only supports the NHWC tensor format on the CPU"), so the
tests turn it on before TensorFlow is imported (same speed channels_last there).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import segmentation_models_pytorch  # noqa: E402,F401

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Share the cores between pytest-xdist workers (scripts/test.sh runs one per core).
torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


@pytest.fixture(params=["channels_last", "channels_first"])
def data_format(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
