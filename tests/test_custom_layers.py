"""User-defined layers (subclasses of ``kfunc.layers.Layer``): shapes inferred from ``call``,
numbers, training with compile/fit, weight order, non-trainable state updated with
``Variable.assign``, saving through ``kfunc.saving.register``, and the README's example."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers as L
from kfunc.models import Model, load_model
from kfunc.saving import UnknownObjectError, register


@register("test_custom>Linear")
class Linear(L.Layer):
    """``inputs @ kernel + bias``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = self.add_weight("bias", (self.units,), initializer="zeros")

    def call(self, inputs):
        return jnp.matmul(inputs, self.kernel.value) + self.bias.value

    def get_config(self):
        return super().get_config() | {"units": self.units}


@register("test_custom>ResidualBlock")
class ResidualBlock(L.Layer):
    """``inputs + fc2(relu(fc1(inputs)))``; sublayers are named so a reloaded model finds their
    weights under the same paths (auto-generated names differ from process to process)."""

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.fc1 = L.Dense(hidden, activation="relu", name="fc1")
        self.fc2 = None

    def build(self, input_shape):
        self.fc2 = L.Dense(input_shape[-1], name="fc2")

    def call(self, inputs):
        return inputs + self.fc2(self.fc1(inputs))

    def get_config(self):
        return super().get_config() | {"hidden": self.hidden}


@register("test_custom>RunningCenter")
class RunningCenter(L.Layer):
    """``scale * (inputs - moving_mean)``; in training ``moving_mean`` moves toward the batch mean
    by ``momentum`` (state updated with ``Variable.assign``, like BatchNormalization)."""

    def __init__(self, momentum=0.5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum

    def build(self, input_shape):
        # Declared non-trainable first: get_weights still lists trainable weights first.
        self.moving_mean = self.add_weight("moving_mean", (input_shape[-1],), "zeros", trainable=False)
        self.scale = self.add_weight("scale", (input_shape[-1],), "ones")

    def call(self, inputs, training=False):
        if training:
            mean = jnp.mean(inputs, axis=0)
            self.moving_mean.assign(self.moving_mean.value * self.momentum + mean * (1.0 - self.momentum))
        return self.scale.value * (inputs - self.moving_mean.value)

    def get_config(self):
        return super().get_config() | {"momentum": self.momentum}


def _model():
    inputs = kfunc.Input(shape=(3,), name="x")
    h = RunningCenter(name="center")(inputs)
    h = Linear(4, name="linear")(h)
    h = ResidualBlock(5, name="block")(h)
    outputs = Linear(1, name="head")(h)
    return Model(inputs, outputs, name="custom")


def _random_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(0.5 * rng.standard_normal(w.shape)).astype(w.dtype) for w in model.get_weights()])


def _numpy_forward(weights, x):
    scale, mean, k1, b1, f1k, f1b, f2k, f2b, k2, b2 = weights
    h = scale * (x - mean)
    h = h @ k1 + b1
    h = h + (np.maximum(h @ f1k + f1b, 0.0) @ f2k + f2b)
    return h @ k2 + b2


def test_symbolic_shapes_match_the_jitted_call():
    model = _model()
    assert [layer.output.shape for layer in model.layers[1:]] == [(None, 3), (None, 4), (None, 4), (None, 1)]
    params, state = model.get_variables()
    x = np.ones((7, 3), "float32")
    outputs, _ = jax.jit(lambda p, s, x: model.apply(p, s, x))(params, state, x)
    assert outputs.shape == (7,) + model.output.shape[1:]
    assert outputs.dtype == model.output.dtype == jnp.float32


def test_weights_order_and_shapes():
    model = _model()
    assert [v.path for v in model.weights] == [
        "center/scale", "center/moving_mean", "linear/kernel", "linear/bias",
        "fc1/kernel", "fc1/bias", "fc2/kernel", "fc2/bias", "head/kernel", "head/bias",
    ]  # fmt: skip
    assert [w.shape for w in model.get_weights()] == [(3,), (3,), (3, 4), (4,), (4, 5), (5,), (5, 4), (4,), (4, 1), (1,)]
    assert [v.name for v in model.get_layer("center").non_trainable_weights] == ["moving_mean"]
    params, state = model.get_variables()
    assert set(params["block"]) == {"fc1", "fc2"} and set(state) == {"center"}


def test_numbers_match_numpy():
    model = _model()
    _random_weights(model)
    x = np.random.default_rng(1).standard_normal((6, 3)).astype("float32")
    expected = _numpy_forward(model.get_weights(), x)
    np.testing.assert_allclose(np.asarray(model.predict(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-5, atol=1e-5)


def test_non_trainable_state_moves_only_in_training():
    model = _model()
    _random_weights(model)
    x = np.random.default_rng(2).standard_normal((8, 3)).astype("float32")
    params, state = model.get_variables()
    old = np.asarray(state["center"]["moving_mean"])
    _, same = model.apply(params, state, x)
    np.testing.assert_array_equal(same["center"]["moving_mean"], old)
    outputs, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, training=True))(params, state, x)
    moved = 0.5 * old + 0.5 * x.mean(axis=0)
    np.testing.assert_allclose(new_state["center"]["moving_mean"], moved, rtol=1e-6, atol=1e-6)
    weights = model.get_weights()
    weights[1] = moved  # training computes with the updated moving mean
    np.testing.assert_allclose(np.asarray(outputs), _numpy_forward(weights, x), rtol=1e-5, atol=1e-5)


def test_fit_lowers_the_loss_and_updates_state():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 3)) + 2.0).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0] and model.evaluate(x, y, verbose=0) < before
    np.testing.assert_allclose(model.get_layer("center").moving_mean.numpy(), x.mean(axis=0), atol=0.3)


def test_registered_custom_layers_round_trip(tmp_path):
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(4).standard_normal((16, 3)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.kfunc")
    loaded = load_model(tmp_path / "m.kfunc")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.get_layer("block").hidden == 5 and loaded.get_layer("center").momentum == 0.5
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(model.predict(x)), np.asarray(loaded.predict(x)))


def test_an_unregistered_custom_layer_saves_but_does_not_load(tmp_path):
    class PlainScale(L.Layer):
        def build(self, input_shape):
            self.w = self.add_weight("w", (input_shape[-1],), "ones")

        def call(self, inputs):
            return inputs * self.w.value

    inputs = kfunc.Input(shape=(2,))
    model = Model(inputs, PlainScale(name="plain")(inputs))
    model.save(tmp_path / "m.kfunc")
    with pytest.raises(UnknownObjectError, match=r"'PlainScale'.*kfunc\.saving\.register"):
        load_model(tmp_path / "m.kfunc")
    loaded = load_model(tmp_path / "m.kfunc", custom_objects={"PlainScale": PlainScale})
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 2), "float32")), [[1.0, 1.0]])


@pytest.mark.parametrize(
    "layer", [Linear(3, name="lin"), ResidualBlock(4, name="res", trainable=False), RunningCenter(0.9, name="rc")]
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer) and clone.get_config() == config


@pytest.mark.slow  # tests/test_readme.py runs this README block (and checks the same) by default
def test_readme_custom_layers_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes custom.kfunc
    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("\n## Custom layers\n", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace: dict = {}
    exec(compile(code, "README.md custom layers", "exec"), namespace)
    assert namespace["model"].output.shape == (None, 1)
    np.testing.assert_array_equal(namespace["model"].predict(namespace["x"]), namespace["restored"].predict(namespace["x"]))
