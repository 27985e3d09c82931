"""What ``import keras_seg`` does before Keras (and with it TensorFlow) is imported.

* TensorFlow's oneDNN CPU kernels are turned on unless ``TF_ENABLE_ONEDNN_OPTS`` is set
  (README, "Choosing a backend").
* On the JAX backend, XLA's CPU convolutions run on its Eigen kernels rather than YNNPACK
  (``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` added to ``XLA_FLAGS``, jaxlib
  0.8.1+, unless ``XLA_FLAGS`` already names that option). Measured on a 2-core AMD EPYC, batch 4
  float32: a 3x3 64->64 conv at 64x64 forward 7 ms vs YNNPACK's 12 ms (torch 5.5 ms), 48->16 at
  256x256 36 vs 68 ms; Unet-resnet34 256 px forward 0.41 s vs 0.51 s. XLA aborts on a flag it does
  not know, hence the version check, and only for the JAX backend (TensorFlow parses XLA_FLAGS too).
* triton is imported first when both it and TensorFlow are installed and TensorFlow is
  not loaded yet: TensorFlow 2.20+ loads its library with RTLD_GLOBAL, and triton
  imported after it binds to TensorFlow's copy of LLVM and crashes the interpreter.
  Imported first, triton keeps its own. (Measured: ~0.2 s; nothing is done once
  TensorFlow is loaded, which this cannot repair.)
* In the ``keras-seg`` command, the backend's start-up log lines (TensorFlow writes a
  dozen through absl before any log level applies, "failed call to cuInit" among them)
  are held back, unless the user set ``TF_CPP_MIN_LOG_LEVEL`` or passed ``--verbose``
  alone. They are shown if the import fails.

Only the standard library is imported here.
"""

import contextlib
import importlib.util
import os
import sys
import tempfile

COMMAND = "keras-seg"
CLI_MODULE = "keras_seg.cli"


def enable_onednn():
    # oneDNN trains these models ~1.5x faster on a CPU without AVX-512 (measured: Unet-ResNet18
    # step 0.19 s vs 0.29 s) and is the only TF CPU path for channels_first.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


YNN_CONVOLUTIONS_OFF = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def tune_xla_cpu():
    """Add ``YNN_CONVOLUTIONS_OFF`` to ``XLA_FLAGS`` for the JAX backend (see the module doc); whether it did."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_experimental_ynn_fusion_type" in flags or "jax" in sys.modules or keras_backend() != "jax":
        return False
    try:
        from importlib.metadata import version

        jaxlib = tuple(int(part) for part in version("jaxlib").split(".")[:3])
    except Exception:  # not installed, or a version string that is not plain numbers
        return False
    if jaxlib < (0, 8, 1):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {YNN_CONVOLUTIONS_OFF}".strip()
    return True


def keras_backend():
    """The backend Keras will load: ``KERAS_BACKEND``, else keras.json's, else Keras's default."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        import json

        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def preload_triton():
    """Import triton before TensorFlow when both are installed; returns whether it did."""
    if "tensorflow" in sys.modules or "triton" in sys.modules:
        return False
    if not (_installed("tensorflow") and _installed("triton")):
        return False
    try:
        import triton  # noqa: F401
    except Exception:  # a broken triton is not keras-seg's to report
        return False
    return True


def command_line_args():
    """The arguments when this process is the keras-seg command, else None."""
    if os.path.basename(sys.argv[0] or "").removesuffix(".exe") == COMMAND:
        return list(sys.argv[1:])
    argv = list(getattr(sys, "orig_argv", ()))
    if "-m" in argv and argv[argv.index("-m") + 1 : argv.index("-m") + 2] == [CLI_MODULE]:
        return argv[argv.index("-m") + 2 :]
    return None


def logs_requested(args):
    """``--verbose`` given alone (not ``--verbose 0|1|2``), or ``TF_CPP_MIN_LOG_LEVEL`` set."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return True
    for i, arg in enumerate(args):
        if arg == "--verbose" and (i + 1 == len(args) or args[i + 1] not in ("0", "1", "2")):
            return True
        if arg == "--verbose=logs":
            return True
    return False


@contextlib.contextmanager
def _stderr_held_back():
    """Send file descriptor 2 to a temporary file inside the block; replay it on an error."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                capture.seek(0)
                sys.stderr.write(capture.read().decode("utf-8", "replace"))
                sys.stderr.flush()


def _start_devices():
    """Let TensorFlow look for GPUs now, while its log lines are held back."""
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        with contextlib.suppress(Exception):
            tf.config.list_physical_devices("GPU")


@contextlib.contextmanager
def quiet_backend_start():
    """Hold back the backend's start-up log lines in the keras-seg command (see the module doc)."""
    args = command_line_args()
    if args is None or logs_requested(args):
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # later TF log lines: errors only
    with _stderr_held_back():
        yield
        _start_devices()
