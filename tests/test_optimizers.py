"""keras_seg.optimizers against torch.optim (the update rules SMP's training uses)."""

import keras
import numpy as np
import pytest
import torch

from keras_seg import optimizers
from tests.parity import relative_error

SETTINGS = [
    dict(),
    dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
    dict(weight_decay=0.1),
    dict(amsgrad=True),
]


def _gradients(steps, shape, seed=0):
    """Gradients with elements of every magnitude, those near epsilon included (where Keras's Adam differs)."""
    rng = np.random.RandomState(seed)
    return [(rng.randn(*shape) * 10.0 ** rng.uniform(-10, 0, shape)).astype("float32") for _ in range(steps)]


def _keras_steps(optimizer, start, gradients):
    variable = keras.Variable(start)
    for g in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    return keras.ops.convert_to_numpy(variable)


def _torch_steps(settings, start, gradients):
    kw = {"lr": settings.get("learning_rate", 1e-3), "betas": (settings.get("beta_1", 0.9), settings.get("beta_2", 0.999)),
          "eps": settings.get("epsilon", 1e-8), "weight_decay": settings.get("weight_decay", 0.0), "amsgrad": settings.get("amsgrad", False)}
    param = torch.nn.Parameter(torch.from_numpy(start.copy()))
    opt = torch.optim.Adam([param], **kw)
    for g in gradients:
        param.grad = torch.from_numpy(g)
        opt.step()
    return param.detach().numpy()


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s) or "defaults")
def test_torch_adam_steps_equal_torch_optim_adam(settings):
    start = np.random.RandomState(1).randn(64, 33).astype("float32") * 0.1
    gradients = _gradients(5, start.shape)
    expected = _torch_steps(settings, start, gradients)
    actual = _keras_steps(optimizers.TorchAdam(**settings), start, gradients)
    assert relative_error(actual - start, expected - start) < 1e-5


def test_keras_adam_is_not_torch_adam():
    """Why TorchAdam exists: Keras's Adam, even with torch's epsilon, moves small-gradient weights differently."""
    start = np.random.RandomState(1).randn(64, 33).astype("float32") * 0.1
    gradients = _gradients(5, start.shape)
    expected = _torch_steps({}, start, gradients)
    actual = _keras_steps(keras.optimizers.Adam(1e-3, epsilon=1e-8), start, gradients)
    assert relative_error(actual - start, expected - start) > 1e-2


def test_torch_adam_config_round_trip_and_errors():
    opt = optimizers.TorchAdam(0.01, weight_decay=0.5, amsgrad=True)
    again = optimizers.TorchAdam.from_config(opt.get_config())
    assert (again.l2_weight_decay, again.amsgrad, again.epsilon) == (0.5, True, 1e-8)
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt)).get_config() == opt.get_config()
    with pytest.raises(ValueError, match="weight_decay should be a number >= 0"):
        optimizers.TorchAdam(weight_decay=-1.0)


def test_optimizer_names():
    """The names compile_for and the CLI take: "adam" is torch's Adam, the others Keras's."""
    assert isinstance(optimizers.get("adam", 0.01), optimizers.TorchAdam)
    assert isinstance(optimizers.get("SGD", 0.01), keras.optimizers.SGD)
