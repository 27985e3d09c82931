"""Segformer against SMP's Segformer: parity, interop, input check, training and errors."""

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch

import keras_seg
from tests.parity import (NATIVE_FORMAT, assert_parity, assert_state_dicts_identical, assert_trains, image, relative_error,
                          run_keras, run_smp, smp_model, tmpdir, to_format, to_keras, trained)

CONFIGS = {
    # ResNet: 5 MLPs, including the stride-2 feature (downsampled to 1/4)
    "default_channels32": dict(encoder_name="resnet18", decoder_segmentation_channels=32),
    "depth3_in1_classes3_aux": dict(
        encoder_name="resnet18", encoder_depth=3, decoder_segmentation_channels=16, in_channels=1, classes=3,
        aux_params=dict(classes=2, dropout=None),
    ),
    "depth4_up8": dict(encoder_name="resnet18", encoder_depth=4, decoder_segmentation_channels=16, upsampling=8),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_parity_with_smp(config, data_format):
    cfg = CONFIGS[config]
    model = smp_model("Segformer", **cfg)
    assert_parity(model, image((1, cfg.get("in_channels", 3), 64, 96)), data_format)


def test_interop_round_trip_bit_identical():
    reference = trained(smp_model("Segformer", encoder_name="resnet18", encoder_depth=3, decoder_segmentation_channels=16, classes=2, aux_params={"classes": 3}))
    model = to_keras(reference, "channels_last")
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d)
    assert type(back).__name__ == "Segformer"
    assert_state_dicts_identical(reference.state_dict(), back.state_dict())


def test_checkpoint_keras_seg_trained_is_smps_model():
    """Weights that start in keras-seg (its own init, one training step), written with save_pretrained
    and read by SMP itself: SMP's model holds the same tensors and gives the same outputs (a
    translator that were wrong both ways would pass the round trip above, not this)."""
    model = keras_seg.Segformer("resnet18", encoder_depth=3, encoder_weights=None, decoder_segmentation_channels=16,
                                classes=2, aux_params={"classes": 3}, data_format=NATIVE_FORMAT)
    x = image((2, 3, 32, 32))
    targets = [np.random.RandomState(i).rand(*o.shape).astype("float32") for i, o in enumerate(model(to_format(x, NATIVE_FORMAT)))]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=["mse", "mse"])
    model.train_on_batch(to_format(x, NATIVE_FORMAT), targets)
    d = tmpdir()
    model.save_pretrained(d)
    back = smp.from_pretrained(d).eval()
    assert type(back).__name__ == "Segformer"
    ours = model.torch_state_dict()
    assert int(ours["encoder.bn1.num_batches_tracked"]) == 1  # a trained checkpoint
    assert_state_dicts_identical({k: torch.from_numpy(np.asarray(v)) for k, v in ours.items()}, back.state_dict())
    for a, e in zip(run_keras(model, x, NATIVE_FORMAT), run_smp(back, x)):
        assert a.shape == e.shape and relative_error(a, e) < 1e-4, (a.shape, e.shape)


def test_mlp_weights_are_linear_layout():
    reference = smp_model("Segformer", encoder_name="resnet18", encoder_depth=3, decoder_segmentation_channels=16)
    model = to_keras(reference, "channels_first")
    state = model.torch_state_dict()
    for i in range(3):  # features at strides 2, 4, 8
        key = f"decoder.mlp_stage.{i}.linear.weight"
        np.testing.assert_array_equal(state[key], reference.state_dict()[key].numpy())


def test_training_step_finite_gradients():
    model = keras_seg.Segformer("resnet18", encoder_depth=3, encoder_weights=None, decoder_segmentation_channels=16, data_format=NATIVE_FORMAT)
    assert_trains(model, image((2, 3, 32, 32)), NATIVE_FORMAT)


def test_non_divisible_input_raises(data_format):
    model = keras_seg.Segformer("resnet18", encoder_weights=None, encoder_depth=4, decoder_segmentation_channels=8, data_format=data_format)
    x = image((1, 3, 20, 32))
    x = x if data_format == "channels_first" else x.transpose(0, 2, 3, 1)
    with pytest.raises(keras_seg.InputShapeError, match=r"divisible by 16.*\(32, 32\)"):
        model(x)


def test_config_and_create_model():
    model = keras_seg.create_model("segformer", encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_segmentation_channels=8)
    assert isinstance(model, keras_seg.Segformer) and model.name == "segformer-resnet18"
    assert keras_seg.Segformer.from_config(model.get_config()).get_config() == model.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encoder_depth=2), r"cannot be less than 3, got 2.*encoder_depth must be at least 3"),
        (dict(encoder_depth=6), "depth should be in range"),
        (dict(aux_params={"classes": 2, "pooling": "sum"}), "Pooling should be one of"),
        (dict(activation="relu6"), "Activation should be"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_seg.Segformer(**{"encoder_name": "resnet18", "encoder_weights": None, "decoder_segmentation_channels": 8, **kwargs})
