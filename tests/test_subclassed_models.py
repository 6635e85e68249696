"""Subclassed models (``class M(kfunc.Model)`` with ``call``) against Keras 3 subclassed models
with the same code and the same starting weights: fit losses and metrics, predictions, weight
order; and save/load, lower(), summary and the errors."""

import jax
import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc import layers as kl  # noqa: E402
from kfunc.errors import GraphError  # noqa: E402
from kfunc.saving import register  # noqa: E402

rng = np.random.default_rng(5)
X = rng.normal(size=(24, 5)).astype("float32")
Y = rng.normal(size=(24, 1)).astype("float32")


def model_classes(lib):
    """The same subclassed models written against ``lib`` (kfunc or keras)."""
    layers = lib.layers

    class BatchNormMLP(lib.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = layers.Dense(8, activation="relu")
            self.norm = layers.BatchNormalization()
            self.out = layers.Dense(1)

        def call(self, inputs, training=False):
            return self.out(self.norm(self.hidden(inputs), training=training))

    class NestedBlocks(lib.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = [[layers.Dense(6, activation="tanh"), layers.Dense(6)], [layers.Dense(4)]]
            self.heads = {"main": layers.Dense(1)}

        def call(self, inputs, training=False):
            x = inputs
            for block in self.blocks:
                for layer in block:
                    x = layer(x)
            return self.heads["main"](x)

    class TwoInputs(lib.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.left = layers.Dense(4, activation="relu")
            self.right = layers.Dense(4, activation="relu")
            self.out = layers.Dense(1)

        def call(self, inputs, training=False):
            joined = layers.concatenate([self.left(inputs["a"]), self.right(inputs["b"])]) if lib is kfunc else \
                lib.ops.concatenate([self.left(inputs["a"]), self.right(inputs["b"])], axis=-1)
            return self.out(joined)

    return BatchNormMLP, NestedBlocks, TwoInputs


def _pair(index, x):
    ours, theirs = model_classes(kfunc)[index](), model_classes(keras)[index]()
    ours(x)
    theirs(x)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


@pytest.mark.parametrize(
    "index", [0, pytest.param(1, marks=pytest.mark.slow)], ids=["batchnorm_training", "nested_lists_and_dicts"]
)
def test_fit_evaluate_predict_match_keras(index):
    ours, theirs = _pair(index, X[:2])
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    for model in (ours, theirs):
        model.compile(optimizer=model_optimizer(model), loss="mse", metrics=["mae"])
    ours_history = ours.fit(X, Y, epochs=2, batch_size=12, shuffle=False, verbose=0).history
    theirs_history = theirs.fit(X, Y, epochs=2, batch_size=12, shuffle=False, verbose=0).history
    for key in ("loss", "mae"):
        np.testing.assert_allclose(ours_history[key], theirs_history[key], rtol=1e-5)
    np.testing.assert_allclose(ours.predict(X, verbose=0), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.evaluate(X, Y, verbose=0), theirs.evaluate(X, Y, verbose=0), rtol=1e-5)
    for ours_weight, theirs_weight in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(ours_weight, np.asarray(theirs_weight), rtol=1e-4, atol=1e-6)


def model_optimizer(model):
    lib = kfunc if isinstance(model, kfunc.Model) else keras
    return lib.optimizers.SGD(learning_rate=0.05)


def test_dict_inputs_match_keras():
    data = {"a": X[:, :3], "b": X[:, 3:]}
    ours, theirs = _pair(2, {k: v[:2] for k, v in data.items()})
    assert ours.input_names == ["a", "b"]
    np.testing.assert_allclose(ours.predict(data), theirs.predict(data, verbose=0), rtol=1e-5, atol=1e-6)
    ours.compile("sgd", "mse")
    theirs.compile("sgd", "mse")
    ours_loss = ours.fit(data, Y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]
    theirs_loss = theirs.fit(data, Y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours_loss, theirs_loss, rtol=1e-5)


class DropoutMLP(kfunc.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = kl.Dense(16)
        self.drop = kl.Dropout(0.5)
        self.out = kl.Dense(1)

    def call(self, inputs, training=False):
        x = self.hidden(inputs)
        if training:  # Python control flow on the flag: traced per value
            x = self.drop(x)
        return self.out(x)


def test_training_flag_chooses_the_traced_branch_and_lower_is_pure():
    model = DropoutMLP()
    model.compile("adam", "mse")  # before the build: waits for the data
    history = model.fit(X, Y, epochs=1, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"][0])
    lowered = kfunc.lower(model)
    params, state = lowered.init(jax.random.key(0))
    assert set(params) == {model.hidden.name, model.out.name}
    apply = lowered.apply
    inference, _ = apply(params, state, X, training=False)
    again, _ = apply(params, state, X, training=False)
    trained_a, _ = apply(params, state, X, training=True, key=jax.random.key(1))
    trained_b, _ = apply(params, state, X, training=True, key=jax.random.key(1))
    np.testing.assert_array_equal(inference, again)
    np.testing.assert_array_equal(trained_a, trained_b)
    assert not np.allclose(inference, trained_a)
    grads = jax.grad(lambda p: lowered.apply(p, state, X, training=True, key=jax.random.key(2))[0].sum())(params)
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))


def test_summary_lists_the_layers_with_shapes():
    model = DropoutMLP(name="dropper")
    model.build((None, 5))
    text = model.summary(print_fn=lambda line: None)
    assert 'Model: "dropper"' in text and "Connected to" not in text
    assert f"{model.hidden.name} (Dense)" in text and "(None, 16)" in text and "Total params: 113" in text


@register("test_subclassed>Regressor")
class Regressor(kfunc.Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = kl.Dense(units, activation="relu")
        self.out = kl.Dense(1)

    def call(self, inputs):
        return self.out(self.hidden(inputs))

    def get_config(self):
        return super().get_config() | {"units": self.units}


def test_registered_subclassed_model_saves_and_loads(tmp_path):
    model = Regressor(units=3)
    model.compile("sgd", "mse")
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.kfunc")
    loaded = kfunc.models.load_model(tmp_path / "m.kfunc")
    assert type(loaded) is Regressor and loaded.units == 3
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)
    loaded.fit(X, Y, epochs=1, batch_size=8, verbose=0)  # the compile settings came back too

    model.save_weights(tmp_path / "w.weights.h5")
    again = Regressor(units=3)
    again.build((None, 5))
    again.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-6)


def test_errors_name_the_model_and_the_fix():
    class NoCall(kfunc.Model):
        def __init__(self):
            super().__init__()

    with pytest.raises(GraphError, match="needs inputs and outputs.*subclass Model and define call"):
        NoCall()
    model = DropoutMLP(name="unbuilt")
    with pytest.raises(GraphError, match="'unbuilt' .*is not built yet.*build\\(input_shape\\)"):
        model.inputs

    class Twins(kfunc.Model):
        def __init__(self):
            super().__init__()
            self.a = kl.Dense(2, name="twin")
            self.b = kl.Dense(2, name="twin")

        def call(self, inputs):
            return self.b(self.a(inputs))

    with pytest.raises(GraphError, match="two of its layers are named 'twin'"):
        Twins()(X[:2])
    with pytest.raises(GraphError, match="defines call\\(\\), so it computes with call"):
        DropoutMLP(inputs=kl.Input((3,)), outputs=None)
