"""Process-level behaviour, tested in subprocesses (a crash there is a failure, not a dead runner):
import order with triton (SMP) on TensorFlow, and the keras-seg console free of TensorFlow's log lines.

Each subprocess sets KERAS_BACKEND=tensorflow itself, so these run once, in the TensorFlow pass.
"""

import os
import re
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE_LOG_LINE = re.compile(r"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ |WARNING: All log messages before absl)", re.M)

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="backend-independent subprocesses: run once, with the TensorFlow tests")


def run_python(args, **env):
    """``python ARGS`` from the repository root with KERAS_BACKEND=tensorflow and no log-level setting."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTEST_CURRENT_TEST")}
    environ.update(KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)


def test_importing_smp_after_keras_seg_does_not_crash():
    pytest.importorskip("triton")
    pytest.importorskip("segmentation_models_pytorch")
    result = run_python(["-c", "import keras_seg, segmentation_models_pytorch, tensorflow; print('alive')"])
    assert result.returncode == 0 and result.stdout.strip() == "alive", (result.returncode, result.stderr[-2000:])


def test_keras_seg_command_hides_tensorflow_log_lines_unless_asked():
    quiet = run_python(["-m", "keras_seg.cli", "list-encoders"])
    assert quiet.returncode == 0 and "resnet18" in quiet.stdout
    assert not NATIVE_LOG_LINE.search(quiet.stderr), quiet.stderr
    verbose = run_python(["-m", "keras_seg.cli", "list-encoders", "--verbose"])
    assert verbose.returncode == 0 and "resnet18" in verbose.stdout
    assert NATIVE_LOG_LINE.search(verbose.stderr), verbose.stderr  # TF 2.21 logs at import (oneDNN, CUDA probe)
