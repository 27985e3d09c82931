"""Process-level behaviour, tested in subprocesses (a crash there is a failure, not a dead runner):
import order with triton (SMP) on TensorFlow, oneDNN turned on before TensorFlow loads, and the
keras-seg console free of TensorFlow's log lines.

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


def run_python(args, unset=(), **env):
    """``python ARGS`` from the repository root with KERAS_BACKEND=tensorflow (unless ``env`` names one) and no log-level setting
    (nor the variables named in ``unset``)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTEST_CURRENT_TEST", *unset)}
    environ.update({"KERAS_BACKEND": "tensorflow", "PYTHONPATH": ROOT, **env})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)


def test_importing_smp_after_keras_seg_does_not_crash():
    pytest.importorskip("triton")
    pytest.importorskip("segmentation_models_pytorch")
    result = run_python(["-c", "import keras_seg, segmentation_models_pytorch, tensorflow; print('alive')"])
    assert result.returncode == 0 and result.stdout.strip() == "alive", (result.returncode, result.stderr[-2000:])


# Prints TF_ENABLE_ONEDNN_OPTS after `import keras_seg` and as it was when TensorFlow began to load.
ONEDNN_PROBE = """
import os, sys
seen = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" and not seen:
            seen.append(os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
sys.meta_path.insert(0, Watch())
import keras_seg
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), seen)
"""


@pytest.mark.parametrize("value, expected", [(None, "1"), ("0", "0")])
def test_import_turns_onednn_on_before_tensorflow_unless_set(value, expected):
    # conftest sets the variable for the test process itself, so only a fresh process shows this
    env = {} if value is None else {"TF_ENABLE_ONEDNN_OPTS": value}
    result = run_python(["-c", ONEDNN_PROBE], unset=("TF_ENABLE_ONEDNN_OPTS",), **env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == f"{expected} [{expected!r}]", result.stdout


def test_keras_seg_command_hides_tensorflow_log_lines_unless_asked():
    quiet = run_python(["-m", "keras_seg.cli", "list-encoders"])
    assert quiet.returncode == 0 and "resnet18" in quiet.stdout
    assert not NATIVE_LOG_LINE.search(quiet.stderr), quiet.stderr
    verbose = run_python(["-m", "keras_seg.cli", "list-encoders", "--verbose"])
    assert verbose.returncode == 0 and "resnet18" in verbose.stdout
    assert NATIVE_LOG_LINE.search(verbose.stderr), verbose.stderr  # TF 2.21 logs at import (oneDNN, CUDA probe)


# Whether XLA fused a 64x64x64 convolution into YNNPACK, and XLA_FLAGS, after the imports in argv[1].
YNN_PROBE = """
import os, sys
exec(sys.argv[1])
import jax, jax.numpy as jnp
x, w = jnp.ones((4, 64, 64, 64)), jnp.ones((3, 3, 64, 64))
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
print("__ynn_fusion" in jax.jit(conv).lower(x, w).compile().as_text(), os.environ.get("XLA_FLAGS"))
"""


@pytest.mark.parametrize("imports, backend, flags, expected", [
    ("import keras_seg", "jax", None, "False --xla_cpu_experimental_ynn_fusion_type=-individual_convolution"),
    ("", "jax", None, "True None"),  # what keras-seg turns off: XLA's default
    ("import keras_seg", "jax", "--xla_cpu_experimental_ynn_fusion_type=", "False --xla_cpu_experimental_ynn_fusion_type="),
    ("import keras_seg", "tensorflow", None, "True None"),  # not for TensorFlow, whose XLA parses the variable too
])
def test_import_moves_xla_cpu_convolutions_off_ynnpack_on_jax(imports, backend, flags, expected):
    pytest.importorskip("jax")
    env = {"KERAS_BACKEND": backend, **({} if flags is None else {"XLA_FLAGS": flags})}
    result = run_python(["-c", YNN_PROBE, imports], unset=("XLA_FLAGS",), **env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected
