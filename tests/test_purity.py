"""Pure by construction: a trace's values live in a context of that trace, never on shared
objects; the graph keeps the structure of each call as it was recorded."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc.core.binding import in_pure_call


class _Rendezvous(layers.Layer):
    """``x * w``, read twice around a barrier so two threads are inside ``call`` together."""

    def __init__(self, barrier, **kwargs):
        super().__init__(**kwargs)
        self.barrier = barrier

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        before = self.w.value
        if self.barrier is not None and in_pure_call() and not isinstance(before, jax.core.Tracer):
            self.barrier.wait(timeout=10)
        after = self.w.value
        return x * before + x * after


def _model(barrier):
    inputs = kfunc.Input(shape=(3,))
    return kfunc.Model(inputs, _Rendezvous(barrier, name="meet")(inputs))


def test_two_threads_applying_different_params_to_one_model_each_see_their_own():
    barrier = threading.Barrier(2)
    model = _model(barrier)
    owned = model.get_weights()
    params = [{"meet": {"w": jnp.full((3,), value, jnp.float32)}} for value in (2.0, 5.0)]
    x = np.ones((2, 3), np.float32)
    results, errors = [None, None], []

    def run(index):
        try:
            outputs, _ = model.apply(params[index], {}, x)
            results[index] = np.asarray(outputs)
        except Exception as error:  # reported below: a thread's exception must fail the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    np.testing.assert_array_equal(results[0], np.full((2, 3), 4.0))
    np.testing.assert_array_equal(results[1], np.full((2, 3), 10.0))
    # The shared variable was never written: the owned value and predict are unchanged.
    for before, after in zip(owned, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.full((2, 3), 2.0))


def test_jitted_apply_from_threads_with_different_params():
    model = _model(None)
    apply = jax.jit(lambda p, x: model.apply(p, {}, x)[0])
    x = np.ones((4, 3), np.float32)
    results = {}

    def run(value):
        p = {"meet": {"w": jnp.full((3,), value, jnp.float32)}}
        results[value] = [np.asarray(apply(p, x)) for _ in range(5)]

    threads = [threading.Thread(target=run, args=(float(v),)) for v in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for value, outputs in results.items():
        for output in outputs:
            np.testing.assert_array_equal(output, np.full((4, 3), 2 * value))
    assert len(results) == 4


def test_apply_leaves_no_binding_behind_even_when_the_call_raises():
    class Boom(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(), initializer="ones", name="w")

        def call(self, x):
            if not isinstance(x, jax.core.Tracer) and float(jnp.sum(x)) > 100:
                raise RuntimeError("boom")
            return x * self.w.value

    inputs = kfunc.Input(shape=(2,))
    model = kfunc.Model(inputs, Boom(name="boom")(inputs))
    with pytest.raises(RuntimeError, match="boom"):
        model.apply({"boom": {"w": jnp.float32(7.0)}}, {}, np.full((1, 2), 100.0, np.float32))
    assert not in_pure_call()
    np.testing.assert_array_equal(model.predict(np.ones((1, 2), np.float32), verbose=0), [[1.0, 1.0]])


def test_assign_inside_apply_is_returned_as_state_and_leaves_the_variable_alone():
    class Counter(layers.Layer):
        def build(self, input_shape):
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

        def call(self, x):
            self.count.assign_add(1.0)
            self.count.assign(self.count.value * 2.0)
            return x + self.count.value

    inputs = kfunc.Input(shape=(1,))
    model = kfunc.Model(inputs, Counter(name="counter")(inputs))
    params, state = model.init(jax.random.key(0))
    outputs, new_state = model.apply(params, {"counter": {"count": jnp.float32(3.0)}}, np.zeros((1, 1), np.float32))
    assert float(new_state["counter"]["count"]) == 8.0
    np.testing.assert_array_equal(outputs, [[8.0]])
    assert float(model.get_weights()[0]) == 0.0


# ---------------------------------------------------------------------- a frozen graph
def test_mutating_the_callers_list_after_the_call_does_not_change_the_graph():
    a, b = kfunc.Input(shape=(1,), name="a"), kfunc.Input(shape=(2,), name="b")
    parts = [a, b]
    joined = layers.Concatenate()(parts)
    parts.reverse()
    parts.append(a)
    model = kfunc.Model([a, b], joined)
    out = model.predict([np.zeros((1, 1), np.float32), np.ones((1, 2), np.float32)], verbose=0)
    np.testing.assert_array_equal(out, [[0.0, 1.0, 1.0]])


def test_mutating_a_dict_of_call_arguments_after_the_call_does_not_change_the_graph():
    class Pick(layers.Layer):
        def call(self, inputs):
            return inputs["x"] - inputs["y"]

    x, y = kfunc.Input(shape=(2,), name="x"), kfunc.Input(shape=(2,), name="y")
    arguments = {"x": x, "y": y}
    out = Pick()(arguments)
    arguments["x"], arguments["y"] = y, x
    model = kfunc.Model([x, y], out)
    result = model.predict([np.full((1, 2), 5.0, np.float32), np.ones((1, 2), np.float32)], verbose=0)
    np.testing.assert_array_equal(result, [[4.0, 4.0]])


def test_sequential_pop_with_a_layer_shared_by_another_model(tmp_path):
    shared = layers.Dense(3, name="shared_dense")
    sequential = kfunc.Sequential([kfunc.Input(shape=(4,)), layers.Dense(4), shared])
    inputs = kfunc.Input(shape=(4,))
    other = kfunc.Model(inputs, shared(inputs))  # the shared layer's most recent node is other's
    nodes_before = list(shared._inbound_nodes)
    sequential.pop()
    assert [layer.name for layer in sequential.layers][-1] != "shared_dense"
    assert shared._inbound_nodes[: len(nodes_before)] == nodes_before
    # The other model still works, extends and saves.
    extended = kfunc.Model(other.input, layers.Dense(1)(other.output))
    assert extended.predict(np.ones((2, 4), np.float32), verbose=0).shape == (2, 1)
    other.save(tmp_path / "other.kfunc")
    loaded = kfunc.models.load_model(tmp_path / "other.kfunc")
    np.testing.assert_allclose(loaded.predict(np.ones((2, 4), np.float32), verbose=0),
                               other.predict(np.ones((2, 4), np.float32), verbose=0))
    assert sequential.predict(np.ones((2, 4), np.float32), verbose=0).shape == (2, 4)
    sequential.add(layers.Dense(2))
    assert sequential.output_shape == (None, 2)
