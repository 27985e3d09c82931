"""The README's main job as it says: ``keras-seg demo`` with its defaults reaches a held-out IoU of at
least 0.9 and writes a TFLite export that it checked against the Keras model.

The demo trains for minutes, so it runs once, on the default (TensorFlow) backend, as the README runs
it: the installed ``keras-seg`` command in its own process. test_cli.py covers the demo's options and
refusals on every backend with a few samples.
"""

import json
import os
import re
import subprocess
import sys

import keras
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the README's demo runs on the default backend (TensorFlow); once per CI run")


def test_demo_reaches_the_readme_iou_and_checks_its_tflite_export(tmp_path):
    command = os.path.join(os.path.dirname(sys.executable), "keras-seg")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # the default backend, as in the README
    result = subprocess.run([command, "demo", "--output", str(tmp_path / "demo-run")], env=env,
                            capture_output=True, text=True)
    out = result.stdout
    assert result.returncode == 0, (out + result.stderr)[-3000:]  # 1: IoU below 0.9; 3: TFLite mismatch
    assert "tensorflow backend" in out
    iou = float(re.search(r"held-out IoU: ([0-9.]+)", out).group(1))
    assert iou >= 0.9
    assert json.loads((tmp_path / "demo-run" / "metrics.json").read_text())["iou"] == pytest.approx(iou, abs=1e-4)
    diff = float(re.search(r"max \|tflite - keras\| = ([0-9.e+-]+) \(ok\)", out).group(1))
    assert diff <= 1e-3
    assert {"model.keras", "model.tflite", "history.png", "predictions.png"} <= set(os.listdir(tmp_path / "demo-run"))
