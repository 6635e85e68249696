"""A Sequential without an input shape builds when the data arrives, as in Keras 3: compile works
before that, and fit / evaluate / predict, a call on arrays or symbolic tensors, a call inside a
custom layer and ``build(shape)`` each build it."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc import layers  # noqa: E402
from kfunc.errors import GraphError  # noqa: E402

X = np.linspace(-1.0, 1.0, 24, dtype="float32").reshape(8, 3)
Y = np.linspace(0.0, 1.0, 8, dtype="float32").reshape(8, 1)


def _stack(lib):
    return lib.Sequential([lib.layers.Dense(4, activation="tanh"), lib.layers.Dense(1)])


def test_compile_before_build_then_fit_builds_and_trains_like_keras():
    ours, theirs = _stack(kfunc), _stack(keras)
    ours.compile(optimizer="sgd", loss="mse")
    theirs.compile(optimizer="sgd", loss="mse")
    assert not ours.built and ours.layers[0].weights == []
    # Same starting weights: build both from the data shape, copy Keras's into kfunc.
    theirs.build((None, 3))
    ours.build((None, 3))
    ours.set_weights(theirs.get_weights())
    ours_history = ours.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    theirs_history = theirs.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours_history.history["loss"], theirs_history.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours.predict(X, verbose=0), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)


def test_fit_evaluate_and_predict_each_build_an_unbuilt_model():
    for run in (
        lambda m: m.fit(X, Y, epochs=1, verbose=0),
        lambda m: m.evaluate(X, Y, verbose=0),
        lambda m: m.predict(X, verbose=0),
    ):
        model = _stack(kfunc)
        model.compile(optimizer="sgd", loss="mse")
        run(model)
        assert model.built and model.input_shape == (None, 3) and model.output_shape == (None, 1)


def test_call_on_arrays_builds_and_matches_keras():
    ours, theirs = _stack(kfunc), _stack(keras)
    theirs(X)
    ours(X)
    assert ours.built and len(ours.layers) == 2 and not any(l.is_input_layer for l in ours.layers)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(np.asarray(ours(X)), np.asarray(theirs(X)), rtol=1e-5, atol=1e-6)


def test_call_on_a_symbolic_tensor_builds_with_its_shape_and_dtype():
    model = kfunc.Sequential([layers.Embedding(10, 2), layers.Flatten()])
    ids = kfunc.Input((3,), dtype="int32")
    features = model(ids)
    assert features.shape == (None, 6) and model.input_shape == (None, 3)
    functional = kfunc.Model(ids, layers.Dense(1)(features))
    assert functional.predict(np.array([[1, 2, 3]], "int32"), verbose=0).shape == (1, 1)


def test_a_custom_layer_holding_an_unbuilt_sequential():
    class Block(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = kfunc.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)])

        def call(self, inputs):
            return self.inner(inputs) * 2.0

    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, Block()(inputs))
    assert model.output_shape == (None, 2) and len(model.weights) == 4
    model.compile(optimizer="sgd", loss="mse")
    before = model.predict(X, verbose=0)
    model.fit(X, np.zeros((8, 2), "float32"), epochs=2, verbose=0)
    assert not np.allclose(before, model.predict(X, verbose=0))


def test_layers_add_and_pop_before_and_after_build():
    model = kfunc.Sequential()
    model.add(layers.Dense(3))
    model.add(layers.Dense(2))
    assert model.pop().units == 2 and [l.units for l in model.layers] == [3]
    model.add(layers.Dense(5))
    model.build((None, 4))
    assert model.output_shape == (None, 5) and all(not l.is_input_layer for l in model.layers)
    model.add(layers.Dense(1))
    assert model.output_shape == (None, 1) and len(model.layers) == 3
    model.pop()
    assert model.output_shape == (None, 5)
    assert model.predict(np.ones((2, 4), "float32"), verbose=0).shape == (2, 5)


def test_summary_of_an_unbuilt_model_says_unbuilt():
    text = _stack(kfunc).summary(print_fn=lambda line: None)
    assert "0 (unbuilt)" in text and "?" in text and "Total params: 0" in text


def test_accessing_the_graph_of_an_unbuilt_model_says_how_to_build_it():
    with pytest.raises(GraphError, match="does not know its input shape yet.*build\\(input_shape\\)"):
        _stack(kfunc).inputs
    with pytest.raises(GraphError, match="needs input_shape"):
        _stack(kfunc).build()
