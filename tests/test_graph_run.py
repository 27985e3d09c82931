"""ReleasingGraph: a functional model drops each intermediate after its last consumer, and computes
what Keras's own graph run computes."""

import gc
import weakref

import keras
import numpy as np
import pytest

from backbones.layers import ReleasingGraph


REFS, SEEN = {}, {}  # module-level: Keras would copy dicts assigned to layer attributes


class Probe(keras.layers.Layer):
    """``x * 1`` that keeps a weak reference to its (eager) output under its name."""

    def call(self, x):
        y = x * 1.0
        try:
            REFS[self.name] = weakref.ref(y)
        except TypeError:  # tensors without weak references (traced or TF / JAX arrays)
            pass
        return y


class Snapshot(keras.layers.Layer):
    """Identity that records which probed tensors are still alive when it runs."""

    def call(self, x):
        gc.collect()  # Keras's torch tree utilities leave call arguments in reference cycles
        SEEN.update({name: ref() is not None for name, ref in REFS.items()})
        return x


class Released(ReleasingGraph, keras.Model):
    pass


def _graph():
    x = keras.Input((4,))
    a = Probe(name="a")(x)
    b = keras.layers.Dense(4, name="dense")(a)
    c = Probe(name="c")(b)
    d = keras.layers.Add(name="add")([c, a])  # `a` read twice: alive until here
    e = Probe(name="e")(d)
    f = Snapshot(name="snapshot")(e)
    return x, [f, c]  # `c` is also an output: kept


def test_intermediates_are_released_after_their_last_consumer():
    inputs, outputs = _graph()
    model = Released(inputs=inputs, outputs=outputs)
    plain = keras.Model(inputs=inputs, outputs=outputs)
    x = np.random.RandomState(0).rand(2, 4).astype("float32")
    expected = plain.predict_on_batch(x)
    REFS.clear(), SEEN.clear()
    got = model.predict_on_batch(x)  # eager and without autograd on torch: nothing else holds `a`
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    if keras.backend.backend() == "torch":
        assert SEEN == {"a": False, "c": True, "e": True}  # `c` is an output, `e` the snapshot's input


def test_unconnected_output_is_refused_as_keras_does():
    x, y = keras.Input((4,)), keras.Input((4,))
    z = keras.layers.Dense(2)(y)
    with pytest.raises(ValueError, match="not connected|disconnected|Graph disconnected"):
        Released(inputs=x, outputs=z)


class Recorder(keras.layers.Layer):
    """Identity that records the dtype it was given and the autocast scope it runs in."""

    def call(self, x):
        from keras.src import backend

        scope = backend.get_autocast_scope()
        SEEN[self.name] = (keras.backend.standardize_dtype(x.dtype), scope.dtype if scope is not None else None)
        return x


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float32"])
def test_direct_calls_convert_and_autocast_as_keras_call_does(policy):
    """A mixed-policy model gives its layers the inputs and autocast scopes Keras's ``__call__`` gives them
    (a float32 layer inside it included), with equal outputs and BatchNorm statistics in both modes."""
    from backbones import layers as L

    def build(cls):
        keras.utils.set_random_seed(0)
        x = keras.Input((6, 6, 3))
        y = L.conv2d(x, 8, 3, "conv", data_format="channels_last", padding=1)
        y = L.batch_norm(y, "bn", data_format="channels_last")
        y = Recorder(name="mixed_layer", dtype=policy)(y)
        y = Recorder(name="float_layer", dtype="float32")(keras.layers.Dense(2, name="dense", dtype=policy)(y))
        return cls(inputs=x, outputs=y, dtype=policy)

    x = np.random.RandomState(0).rand(2, 6, 6, 3).astype("float32")
    results = {}
    for cls in (keras.Model, Released):
        model = build(cls)
        SEEN.clear()
        outs = [keras.ops.convert_to_numpy(keras.ops.cast(model(x, training=t), "float32")) for t in (True, False)]
        bn = model.get_layer("bn")
        results[cls] = (outs, dict(SEEN), keras.ops.convert_to_numpy(bn.moving_variance))
    (keras_outs, keras_seen, keras_var), (outs, seen, var) = results[keras.Model], results[Released]
    assert seen == keras_seen
    if policy == "mixed_bfloat16":
        assert keras_seen["mixed_layer"] == ("bfloat16", "bfloat16") and keras_seen["float_layer"][0] == "float32"
    for got, expected in zip(outs, keras_outs):
        np.testing.assert_allclose(got, expected, rtol=2e-2 if policy != "float32" else 1e-5, atol=1e-2 if policy != "float32" else 1e-6)
    np.testing.assert_allclose(var, keras_var, rtol=1e-2 if policy != "float32" else 1e-6)


def test_layers_called_with_training_in_the_graph_get_the_callers_value():
    """A node that carries ``training=`` itself (a DropPath-style call), on a layer that goes through
    ``__call__`` (an activity regularizer) and on one called directly: the model's training value wins,
    as in Keras's own run (it used to raise "got multiple values for keyword argument 'training'")."""
    x = keras.Input((4,))
    y = keras.layers.Dense(4, activity_regularizer="l2", name="regularized")(x, training=False)
    y = keras.layers.Dropout(0.5, name="dropout")(y, training=False)
    model = Released(inputs=x, outputs=y)
    data = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(data, training=False)),
                                  keras.ops.convert_to_numpy(keras.Model(inputs=x, outputs=y)(data, training=False)))
    trained = keras.ops.convert_to_numpy(model(data, training=True))
    assert (trained == 0).any()  # dropout ran: the caller's training=True reached it
