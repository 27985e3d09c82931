"""Quantized LiteRT exports (keras_seg.quantize): float16, dynamic-range, int8 and full-integer int8.

One toy Unet (64 px, depth-2 resnet18) trained briefly on synthetic shapes is exported
in each mode; every artifact runs in the LiteRT interpreter and is compared with the
Keras model, outputs and held-out IoU. The TFLite converter is TensorFlow's, so these
run on the TensorFlow backend (the torch/JAX route through the TensorFlow subprocess
is covered by tests/test_cli.py's int8 export of a run folder on every backend).
"""

import os
import re
import warnings

import keras
import numpy as np
import pytest

from keras_seg import quantize, training
from keras_seg.artifacts import SegmentationArtifact, litert_interpreter
from keras_seg.data import SegmentationDataLoader, SyntheticSegmentation, get_preprocessing_params

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="TFLite conversion is TensorFlow's; other backends export through it in a subprocess")
SIZE = 64


def test_bad_quantize_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown quantize value 'int4'; valid values are float16, dynamic, int8, int8_full\."):
        quantize.check_quantize("int4")
    with pytest.raises(ValueError, match="'int8' needs calibration data"):
        quantize.check_quantize("int8", None)
    with pytest.raises(ValueError, match=r"non-empty batch of images .* shape \(64, 64, 3\)"):
        quantize.check_quantize("int8", np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize.check_quantize("int8", np.full((1, 8, 8, 3), np.nan))
    assert quantize.check_quantize("dynamic", None) is None  # no calibration needed


def test_export_checks_quantize_before_converting(tmp_path):
    """On every backend (torch / JAX convert in a TensorFlow subprocess) a bad quantize request is
    keras-seg's ValueError, raised before any conversion, and nothing is written."""
    from keras_seg import Unet, export

    model = Unet("resnet18", encoder_weights=None, encoder_depth=2, decoder_channels=(8, 8), classes=1)
    target = tmp_path / "q.tflite"
    with pytest.raises(ValueError, match="'int8' needs calibration data"):
        export.export_model(model, target, "litert", (32, 32), quantize="int8")
    with pytest.raises(ValueError, match="Unknown quantize value 'int4'"):
        export.export_model(model, target, "litert", (32, 32), quantize="int4")
    assert os.listdir(tmp_path) == []


@TF_ONLY
def test_converter_kwargs_per_mode():
    import tensorflow as tf

    calibration = np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)
    float16, dynamic, int8, int8_full = (quantize.converter_kwargs(m, calibration) for m in quantize.QUANTIZE_MODES)
    assert float16 == {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    assert dynamic == {"optimizations": [tf.lite.Optimize.DEFAULT]}
    assert int8_full["target_spec"] == {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    assert int8["target_spec"] == {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]}
    samples = list(int8["representative_dataset"]())
    assert len(samples) == 3 and all(len(s) == 1 and s[0].shape == (1, 8, 8, 3) for s in samples)
    np.testing.assert_array_equal(np.concatenate([s[0] for s in samples]), calibration)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([])  # every key is a converter attribute
    assert all(hasattr(converter, k) for k in {**float16, **int8})


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A briefly trained binary Unet, its held-out loader, and its float16/dynamic/int8 exports."""
    from keras_seg import export

    keras.utils.set_random_seed(0)
    model = training.build_model("unet", encoder_name="resnet18", encoder_depth=2, decoder_channels=[16, 8], classes=1,
                                 encoder_weights=None, data_format="channels_last")
    prep = get_preprocessing_params("resnet18", "imagenet")
    loader = lambda split, n, **kw: SegmentationDataLoader(  # noqa: E731
        SyntheticSegmentation(n, SIZE, seed=0, split=split), 16, preprocessing=prep, data_format="channels_last", **kw)
    train, val = loader("train", 128, shuffle=True), loader("val", 32)
    training.compile_for(model, "binary", learning_rate=3e-3)
    model.fit(train, epochs=3, verbose=0)
    calibration = np.concatenate([train[i][0] for i in range(2)])  # 32 training images
    folder = tmp_path_factory.mktemp("quantize")
    paths = {}
    for mode in quantize.QUANTIZE_MODES:
        paths[mode] = str(folder / f"{mode}.tflite")
        export.export_model(model, paths[mode], "litert", (SIZE, SIZE), quantize=mode, calibration=calibration)
    return model, val, paths


@TF_ONLY
def test_litert_interpreter_runs_artifacts_without_warnings(toy):
    pytest.importorskip("ai_edge_litert", reason="the ai-edge-litert package (.[litert]) is not installed")
    from keras_seg.export import _tflite_interpreter

    model, val, paths = toy
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tf.lite.Interpreter's deprecation warning would fail this
        interpreters = [_tflite_interpreter(paths["int8"]), litert_interpreter(paths["int8"], threads=1)]
        SegmentationArtifact(paths["int8"], model.config).predict(val[0][0][:2])
    assert all(type(i).__module__.startswith("ai_edge_litert") for i in interpreters)


@TF_ONLY
@pytest.mark.parametrize("mode,rel_tolerance", [
    ("float16", 1e-2),  # measured on this toy model: 1.1e-3 of the output scale
    ("dynamic", 0.08),  # measured: 1.5e-2
    ("int8", 0.1),  # measured: 4.3e-2
    ("int8_full", 0.1),  # measured: 4.3e-2 (no normalisation statistics in this Unet: the same model as int8)
])
def test_quantized_artifact_matches_keras(toy, mode, rel_tolerance):
    model, val, paths = toy
    images = val[0][0][:4]
    expected = training.predict_logits(model, images)
    actual = SegmentationArtifact(paths[mode], model.config).predict(images)
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rel_tolerance * scale


@TF_ONLY
def test_int8_weights_halve_float16_file(toy):
    _, _, paths = toy  # measured: float16 0.51 of float32's size, dynamic and int8 0.53 of float16's
    for mode in ("dynamic", "int8", "int8_full"):
        ratio = os.path.getsize(paths[mode]) / os.path.getsize(paths["float16"])
        assert 0.45 <= ratio <= 0.65, (mode, ratio)


@TF_ONLY
@pytest.mark.parametrize("mode", ["int8", "int8_full"])
def test_int8_artifact_is_integer_and_keeps_float_io(toy, mode):
    from keras_seg.export import _tflite_interpreter

    model, val, paths = toy
    interpreter = _tflite_interpreter(paths[mode])
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    kinds = {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}
    assert "int8" in kinds
    float16 = {np.dtype(d["dtype"]).name for d in _tflite_interpreter(paths["float16"]).get_tensor_details()}
    assert "int8" not in float16 and "float16" in float16


@TF_ONLY
def test_quantized_iou_close_to_float(toy):
    model, val, paths = toy
    reference = training.evaluate_masks(model, val, "binary")["iou"]
    assert reference > 0.25  # the toy model has learnt the shapes (measured 0.34)
    for mode, points in (("float16", 0.002), ("dynamic", 0.01), ("int8", 0.01), ("int8_full", 0.01)):  # measured: all within 0.0006
        iou = training.evaluate_masks(SegmentationArtifact(paths[mode], model.config), val, "binary")["iou"]
        assert abs(iou - reference) <= points, (mode, iou, reference)


@TF_ONLY
def test_int8_keeps_normalisation_statistics_in_float(tmp_path):
    """int8 runs GroupNorm's statistics (mean, variance, rsqrt) as float ops and every conv in int8;
    int8_full quantizes them too. On a conv -> GroupNorm -> conv net whose group scales span 0.1 to 10
    (variances over four decades, as in FPN's decoder) int8's output stays close to Keras's and int8_full's
    does not (measured: 8.8e-2 and 6.3e-1 of the output scale)."""
    from keras_seg import export
    from keras_seg.export import _tflite_interpreter

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.Lambda(lambda t: t * keras.ops.repeat(keras.ops.logspace(-1, 1, 4), 4), name="spread")(x)
    x = keras.layers.GroupNormalization(groups=4, name="gn")(x)
    outputs = keras.layers.Conv2D(2, 1, name="conv2")(keras.layers.ReLU()(x))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
    assert quantize.statistics_layers(model) == ["gn"]
    paths = {mode: str(tmp_path / f"{mode}.tflite") for mode in ("int8", "int8_full")}
    errors = {}
    for mode, path in paths.items():
        export.export_model(model, path, "litert", (16, 16), quantize=mode, calibration=images)
        interpreter = _tflite_interpreter(path)
        kinds = lambda pattern: {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()  # noqa: E731
                                 if re.search(pattern, d["name"])}
        gn_kinds, conv_kinds = kinds(r"(^|[/;])gn(_\d+)?/(moments/mean|moments/variance|Rsqrt)$"), kinds(r"(^|[/;])conv\d(_\d+)?/")
        assert "int8" in conv_kinds, (mode, conv_kinds)
        assert ("float32" in gn_kinds) == (mode == "int8"), (mode, gn_kinds)
        expected = keras.ops.convert_to_numpy(model(images[:4]))
        actual = np.concatenate([export.run_exported(path, "litert", images[i:i + 1])[0] for i in range(4)])
        errors[mode] = np.abs(actual - expected).max() / np.abs(expected).max()
    assert errors["int8"] < 0.15 and errors["int8_full"] > 3 * errors["int8"], errors
