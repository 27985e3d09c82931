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
