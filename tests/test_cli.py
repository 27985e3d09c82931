"""The ``keras-seg`` command line, run in-process through ``keras_seg.cli.main``.

One tiny training run (32 px, Unet with a depth-2 resnet18 encoder, one epoch) is
shared by the evaluate / predict / convert / export / resume tests.
"""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_seg import cli, training
from keras_seg.data import SyntheticSegmentation

BACKEND = keras.backend.backend()
TINY = ["--image-size", "32", "--encoder-depth", "2", "--decoder-channels", "16,8", "--batch-size", "8", "--verbose", "0"]
SYNTHETIC = ["--train-samples", "16", "--val-samples", "8"]

# One pytest-xdist worker runs this module, so the module-scoped training run happens once.
pytestmark = pytest.mark.xdist_group("cli")


def run_cli(*argv):
    """``keras-seg ARGV`` in this process; returns the exit status."""
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch synthetic training run's output folder."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert run_cli("train", "--output", out, "--epochs", 1, *SYNTHETIC, *TINY) == 0
    return out


def make_folder_dataset(root, n=6, size=32, classes=3):
    """images/ + masks/ (class-index PNGs) from the synthetic multiclass set."""
    ds = SyntheticSegmentation(n, size, mode="multiclass", seed=1)
    os.makedirs(root / "images")
    os.makedirs(root / "masks")
    for i in range(n):
        image, mask = ds[i]
        Image.fromarray(image).save(root / "images" / f"im{i}.jpg", quality=95)
        Image.fromarray(np.minimum(mask, classes - 1).astype(np.uint8)).save(root / "masks" / f"im{i}.png")
    return root


def files_in(folder):
    return sorted(p for p in os.listdir(folder)) if os.path.isdir(folder) else []


def temporaries_under(folder):
    """Hidden temporary files or folders anywhere below ``folder``."""
    return [os.path.join(root, name) for root, dirs, files in os.walk(folder) for name in dirs + files
            if name.startswith(".") or ".tmp" in name]


def dead_pid():
    """The id of a process that has ended (its temporaries are stale)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- train / resume -----------------------------------------------------------------------


def test_train_writes_model_checkpoints_and_run_file(trained, capsys):
    assert {"run.json", "model.keras", "smp", "history.png", "metrics.json", "checkpoints"} <= set(files_in(trained))
    assert files_in(trained / "checkpoints") == ["epoch-0001.keras", "state.json"]
    run = json.loads((trained / "run.json").read_text())
    assert run["model"]["arch"] == "unet" and run["image_size"] == [32, 32] and run["mode"] == "binary"
    assert {"config.json", "model.safetensors"} <= set(files_in(trained / "smp"))
    assert temporaries_under(trained) == []  # no temporary file left, in checkpoints/ and smp/ too
    model = training.load_checkpoint(trained / "model.keras", compile=False)
    assert getattr(model, "optimizer", None) is None  # portable: loads on every backend


def test_train_resume_continues_from_last_checkpoint(trained, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    # without --resume, existing checkpoints are not overwritten
    assert run_cli("train", "--output", out, "--epochs", 2, *SYNTHETIC, *TINY) == 2
    assert "--resume" in capsys.readouterr().err
    # a different model cannot resume this run
    assert run_cli("train", "--output", out, "--epochs", 2, "--resume", *SYNTHETIC,
                   *TINY[:4], "--decoder-channels", "8,8", *TINY[6:]) == 2
    assert "differ" in capsys.readouterr().err
    pid = dead_pid()
    stale = [out / "checkpoints" / f".epoch-0002.keras.{pid}-k1ll3d_x.tmp.keras", out / f".model.keras.{pid}-abc.tmp.keras"]
    for path in stale:
        path.write_bytes(b"half a model")
    (out / f".smp.{pid}-q9.tmp").mkdir()
    live = out / "checkpoints" / f".epoch-0009.keras.{os.getpid()}-busy.tmp.keras"  # a writer still at work
    live.write_bytes(b"")
    assert run_cli("train", "--output", out, "--epochs", 2, "--resume", *SYNTHETIC, *TINY) == 0
    assert "removed 2 temporary file(s)" in capsys.readouterr().out  # out/: the .keras file and the folder
    assert temporaries_under(out) == [str(live)]
    live.unlink()
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    assert state["history"]["loss"][0] == json.loads((trained / "checkpoints" / "state.json").read_text())["history"]["loss"][0]
    assert files_in(out / "checkpoints") == ["epoch-0001.keras", "epoch-0002.keras", "state.json"]


def test_train_on_folder_multiclass_then_evaluate(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "data")
    out = tmp_path / "run"
    code = run_cli("train", "--data", data, "--mode", "multiclass", "--classes", 3, "--output", out, "--epochs", 1,
                   "--val-fraction", 0.34, "--metrics", "iou", *TINY[:6], "--batch-size", 2, "--verbose", 2, "--resume")
    assert code == 0
    text = capsys.readouterr().out
    assert f"--resume: no checkpoint in {out / 'checkpoints'}; starting from epoch 1." in text
    assert "mean" in text and "pixel accuracy" in text  # the metrics table
    assert run_cli("evaluate", out, "--data", data, "--batch-size", 4) == 0
    assert "class_2" in capsys.readouterr().out


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--arch", "unet3000", *TINY], "unknown architecture"),
    (["--encoder", "resnet7", *TINY], "unknown encoder"),
    (["--encoder", "tu-vit_tiny_patch16_224.nope", *TINY], "Invalid pretrained tag (nope) for vit_tiny_patch16_224"),
    (["--encoder", "keras_hub:/no/such/preset", *TINY], "keras-hub cannot load preset '/no/such/preset'"),
    (["--data", "/no/such/folder", *TINY], "folder not found"),
    (["--arch", "fpn", "--encoder-depth", "3", "--image-size", "36"], "divisible by 8"),  # Unet takes any size
    (["--mode", "binary", "--classes", "3", *TINY], "--classes must be 1"),
    (["--mode", "multiclass", "--data", "synthetic", "--classes", "1", *TINY], "classes"),
    (["--metrics", "iou,dice", *TINY], "unknown metric name(s) 'dice'; valid names: iou, f1"),
    (["--workers", "0", *TINY], "--workers 0: must be a positive integer"),
    (["--lr", "0", *TINY], "--lr 0.0: the learning rate must be positive"),
    (["--keep-checkpoints", "-1", *TINY], "--keep-checkpoints -1"),
    (["--val-fraction", "1.5", *TINY], "--val-fraction 1.5"),
])
def test_train_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert run_cli("train", "--output", out, "--epochs", 1, *SYNTHETIC, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1, err
    assert files_in(out) == []


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("train", "--image-size", "big")
    assert e.value.code == 2 and "image size must be N or HxW" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("frobnicate")


def test_folder_dataset_errors(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "data", n=2)
    os.remove(data / "masks" / "im1.png")
    out = tmp_path / "run"
    assert run_cli("train", "--data", data, "--output", out, *TINY) == 2
    assert "without a mask" in capsys.readouterr().err
    assert run_cli("train", "--data", data, "--output", out) == 2
    assert "needs --image-size" in capsys.readouterr().err
    assert files_in(out) == []


def test_other_commands_bad_input(trained, tmp_path, capsys):
    assert run_cli("evaluate", tmp_path / "missing.keras") == 2
    assert "not found" in capsys.readouterr().err
    broken = tmp_path.parent / f"{tmp_path.name}-broken"
    broken.mkdir()
    data = (trained / "model.keras").read_bytes()
    (broken / "truncated.keras").write_bytes(data[: len(data) // 2])
    (broken / "text.keras").write_text("not a model")
    for name in ("truncated.keras", "text.keras"):
        assert run_cli("evaluate", broken / name) == 2
        err = capsys.readouterr().err
        assert "not a zip archive" in err and "not found" not in err.lower() and err.count("\n") == 1, err
    assert run_cli("predict", trained, tmp_path / "no_images") == 2
    assert "not found" in capsys.readouterr().err
    assert run_cli("convert", tmp_path / "no_checkpoint", tmp_path / "m.keras") == 2
    assert "not found" in capsys.readouterr().err
    assert run_cli("export", trained, tmp_path / "m.onnx", "--format", "litert") == 2
    assert ".tflite" in capsys.readouterr().err
    assert run_cli("export", tmp_path / "missing.keras", tmp_path / "m.tflite") == 2
    assert "not found" in capsys.readouterr().err
    assert files_in(tmp_path) == []


# -- evaluate / predict ---------------------------------------------------------------------


def test_evaluate_prints_table_and_writes_json(trained, tmp_path, capsys):
    scores_path = tmp_path / "scores.json"
    assert run_cli("evaluate", trained / "model.keras", "--val-samples", 8, "--json", scores_path) == 0
    text = capsys.readouterr().out
    assert "iou" in text and "shape" in text
    scores = json.loads(scores_path.read_text())
    saved = json.loads((trained / "metrics.json").read_text())
    assert scores["iou"] == pytest.approx(saved["iou"], abs=1e-6)  # same held-out split as training's


def test_predict_writes_masks_and_overlays_at_input_size(trained, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    ds = SyntheticSegmentation(2, (40, 36), seed=3)
    for i in range(2):
        Image.fromarray(ds[i][0]).save(images / f"pic{i}.png")
    out = tmp_path / "pred"
    assert run_cli("predict", trained, images, "--output", out) == 0
    assert files_in(out / "masks") == ["pic0.png", "pic1.png"]
    assert files_in(out / "overlays") == ["pic0.png", "pic1.png"]
    mask = np.asarray(Image.open(out / "masks" / "pic0.png"))
    assert mask.shape == (40, 36) and set(np.unique(mask)) <= {0, 1}
    assert np.asarray(Image.open(out / "overlays" / "pic0.png")).shape == (40, 3 * 36, 3)

    (images / "bad.png").write_bytes(b"not a png")  # sorts first: the others are still predicted
    shutil.rmtree(out)
    capsys.readouterr()
    assert run_cli("predict", trained, images, "--output", out) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "bad.png" in err[0] and err[1] == "error: 1 of 3 image(s) could not be predicted (listed above)."
    assert files_in(out / "masks") == ["pic0.png", "pic1.png"]


# -- convert / export / list-encoders ---------------------------------------------------------


def test_convert_smp_checkpoint_to_keras(tmp_path, capsys):
    # a folder SMP itself wrote (trained BatchNorm statistics and counters), not one keras-seg wrote
    from tests.parity import image, run_keras, run_smp, smp_model, trained as trained_module

    reference = trained_module(smp_model("Unet", encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8), classes=2))
    reference.save_pretrained(tmp_path / "smp")
    x = image((1, 3, 32, 48))
    expected = run_smp(reference, x)[0]
    native = cli._default_data_format()
    other = "channels_last" if native == "channels_first" else "channels_first"
    for data_format, option in ((native, []), (other, ["--data-format", other])):
        out = tmp_path / f"{data_format}.keras"
        assert run_cli("convert", tmp_path / "smp", out, *option) == 0
        converted = training.load_checkpoint(out, compile=False)
        assert type(converted).__name__ == "Unet" and converted.data_format == data_format
        np.testing.assert_allclose(run_keras(converted, x, data_format)[0], expected, atol=1e-4 * np.abs(expected).max())
    assert run_cli("convert", tmp_path / "smp", tmp_path / "converted.h5") == 2


def _broken_checkpoint(trained, folder, name, content):
    shutil.copytree(trained / "smp", folder)
    if name != "config.json":
        os.remove(folder / "model.safetensors")
    (folder / name).write_bytes(content)
    return folder


def test_convert_broken_checkpoints_is_one_clear_line(trained, tmp_path, capsys):
    import torch

    weights = (trained / "smp" / "model.safetensors").read_bytes()
    pickled = tmp_path / "pickled.bin"
    torch.save({"weights": torch.zeros(2), "callback": shutil.rmtree}, pickled)
    cases = {
        "truncated": ("model.safetensors", weights[: len(weights) // 2], "is not a readable safetensors file"),
        "random": ("model.safetensors", os.urandom(4096), "is not a readable safetensors file"),
        "pickle": ("pytorch_model.bin", pickled.read_bytes(), "refused it (Unsupported global: GLOBAL shutil.rmtree)"),
        "not_json": ("config.json", b"{not json", "is not valid JSON"),
        "json_list": ("config.json", b"[1, 2]", "holds a JSON list"),
    }
    for case, (name, content, message) in cases.items():
        folder = _broken_checkpoint(trained, tmp_path / case, name, content)
        assert run_cli("convert", folder, tmp_path / f"{case}.keras") == 2, case
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and str(folder / name) in err and err.count("\n") == 1, err
        assert not os.path.exists(tmp_path / f"{case}.keras")


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    """The trained run exported by ``keras-seg export RUN OUT`` with no size option: float32 and int8
    LiteRT (int8 calibrated on 4 of the run's training images)."""
    folder = tmp_path_factory.mktemp("exports")
    paths = {"float32": folder / "f32.tflite", "int8": folder / "q8.tflite"}
    assert run_cli("export", trained, paths["float32"]) == 0  # checked against Keras (exit 3 beyond 1e-3)
    assert run_cli("export", trained, paths["int8"], "--quantize", "int8", "--calibration-samples", 4) == 0
    return paths


def test_export_litert_and_check(trained, exports, tmp_path, capsys):
    # exports["float32"] was exported with the check (exit 3 had it differed from Keras by > 1e-3)
    out = tmp_path / "model.tflite"
    shutil.copy(exports["float32"], out)
    # an existing export is replaced only with --overwrite
    first = out.read_bytes()
    assert first[4:8] == b"TFL3"
    assert run_cli("export", trained, out, "--format", "litert", "--no-check") == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err
    out.write_bytes(first[:8] + b"older export")
    assert run_cli("export", trained, out, "--format", "litert", "--no-check", "--overwrite") == 0
    replaced = out.read_bytes()
    assert replaced[4:8] == b"TFL3" and len(replaced) > 1000 and files_in(tmp_path) == ["model.tflite"]


def test_export_never_replaces_other_files_or_folders(trained, tmp_path, capsys):
    user_dir = tmp_path / "some_dir"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("mine")
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3 a previous export")
    not_tflite = tmp_path / "photo.tflite"
    not_tflite.write_text("a user's file")
    cases = [
        (user_dir, "tf_saved_model", [], "already exists: pass --overwrite"),
        (user_dir, "tf_saved_model", ["--overwrite"], "is not a SavedModel folder from a previous export"),
        (tflite, "tf_saved_model", ["--overwrite"], "is not a SavedModel folder"),  # never a file by a folder
        (not_tflite, "litert", ["--overwrite"], "is not a .tflite file from a previous export"),
        (user_dir, "onnx", ["--overwrite"], "is not an .onnx file"),
    ]
    for path, fmt, flags, message in cases:
        assert run_cli("export", trained, path, "--format", fmt, *flags) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1, err
    assert (user_dir / "notes.txt").read_text() == "mine" and files_in(user_dir) == ["notes.txt"]
    assert tflite.read_bytes().endswith(b"a previous export") and not_tflite.read_text() == "a user's file"
    assert files_in(tmp_path) == ["model.tflite", "photo.tflite", "some_dir"]


def test_export_run_folder_int8_then_evaluate_artifacts_as_json(trained, exports, capsys):
    from keras_seg.artifacts import Artifact

    artifact = Artifact(exports["int8"])
    assert artifact.input_shape == ((1, 32, 32, 3) if BACKEND != "torch" else (1, 3, 32, 32))  # the run's size and layout
    assert run_cli("evaluate", trained, "--model", exports["float32"], "--model", exports["int8"], "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # nothing but JSON lines
    assert [(line["model"], line["format"]) for line in lines] == [(str(exports[k]), "litert") for k in ("float32", "int8")]
    saved = json.loads((trained / "metrics.json").read_text())
    assert lines[0]["iou"] == pytest.approx(saved["iou"], abs=1e-4)  # the run's own held-out set
    assert 0 <= lines[1]["iou"] <= 1 and lines[1]["per_class"].keys() == saved["per_class"].keys()


def test_export_quantize_bad_input(trained, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(trained / "model.keras", bare / "model.keras")  # no run.json: no training data known
    cases = [
        ([trained, tmp_path / "q.tflite", "--quantize", "int4"], "--quantize int4: unknown value; valid values are float16, dynamic, int8, int8_full."),
        ([trained, tmp_path / "q", "--format", "tf_saved_model", "--quantize", "float16"], "--format litert only"),
        ([bare / "model.keras", tmp_path / "q.tflite", "--image-size", 32, "--quantize", "int8"],
         "--quantize int8 needs calibration data: export a run folder"),
        ([trained, tmp_path / "q.tflite", "--quantize", "int8", "--calibration-data", tmp_path / "none"], "folder not found"),
    ]
    for argv, message in cases:
        assert run_cli("export", *argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1, err
    assert files_in(tmp_path) == ["bare"] and files_in(bare) == ["model.keras"]


def test_evaluate_artifact_bad_input(trained, exports, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a model")
    cases = [
        (["--model", exports["int8"], "--image-size", 64], "takes 32x32 images, but the run's images are 64x64"),
        (["--model", tmp_path / "missing.tflite"], "not found"),
        (["--model", tmp_path / "notes.txt"], "must be a .tflite file, an .onnx file or a SavedModel folder"),
        (["--model", tmp_path], "not a SavedModel export"),
    ]
    for argv, message in cases:
        assert run_cli("evaluate", trained, *argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1, err


def test_list_encoders(capsys):
    assert run_cli("list-encoders") == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("resnet18") and "imagenet" in line for line in lines)
    assert len(lines) > 5


# -- demo ------------------------------------------------------------------------------------


def test_demo_refuses_a_training_run_output(trained, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = {name: (out / "checkpoints" / name).read_bytes() for name in files_in(out / "checkpoints")}
    run_json = (out / "run.json").read_bytes()
    assert run_cli("demo", "--out", out, "--epochs", 1, "--train-samples", 16, "--val-samples", 8, "--image-size", 32,
                   "--no-export", "--verbose", 0) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not of an earlier demo" in err and "--output" in err, err
    assert {name: (out / "checkpoints" / name).read_bytes() for name in files_in(out / "checkpoints")} == before
    assert (out / "run.json").read_bytes() == run_json


def test_demo_reduced(tmp_path, capsys):
    """The demo's whole path on a few samples (the real demo trains for minutes)."""
    out = tmp_path / "demo"
    code = run_cli("demo", "--out", out, "--epochs", 1, "--train-samples", 16, "--val-samples", 8, "--image-size", 32,
                   "--batch-size", 8, "--no-export", "--target-iou", 0, "--verbose", 0)
    assert code == 0
    assert {"model.keras", "history.png", "predictions.png", "run.json"} <= set(files_in(out))
    assert "held-out IoU" in capsys.readouterr().out
    assert files_in(out / "checkpoints") == ["epoch-0001.keras", "state.json"]
    assert json.loads((out / "run.json").read_text())["command"] == "demo"
    # a demo starts afresh in its own earlier output
    assert run_cli("demo", "--out", out, "--epochs", 1, "--train-samples", 8, "--val-samples", 8, "--image-size", 32,
                   "--batch-size", 8, "--no-export", "--target-iou", 0, "--verbose", 0) == 0
    assert files_in(out / "checkpoints") == ["epoch-0001.keras", "state.json"]
