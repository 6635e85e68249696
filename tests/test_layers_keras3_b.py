"""Keras 3 layers, group b: EinsumDense, RMSNormalization, GroupQueryAttention, the RNN cell API,
ConvLSTM, SpectralNormalization, JaxLayer and FlaxLayer. The layer table (``layer_cases.py``)
covers shapes, jit, gradients, Keras parity and saving; this file covers what a table row cannot:
training with ``fit``, user-written cells, nested states, configs and error messages."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_cases import flax_two_dense, jax_dense_call, jax_dense_init

import kfunc
from kfunc import layers as L
from kfunc.errors import LayerConfigError, LayerInputError
from kfunc.models import Model, load_model
from kfunc.saving import UnknownObjectError, register


def _rng(seed=0):
    return np.random.default_rng(seed)


def _normal(shape, seed=0):
    return _rng(seed).standard_normal(shape).astype("float32")


def _keras_call(layer, *args, **kwargs):
    """A built Keras layer's outputs on arrays through one jitted ``stateless_call`` (Keras's eager
    calls run op by op, seconds on small CPUs)."""
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def call(trainable, non_trainable, args):
        return layer.stateless_call(trainable, non_trainable, *args, **kwargs)[0]

    return jax.jit(call)(trainable, non_trainable, args)


# ---------------------------------------------------------------------- the RNN cell API
@register("test_keras3_b>MinimalCell")
class MinimalCell(L.Layer):
    """A user-written cell (Keras's documentation example): ``h = x W + h_prev U``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units))
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, self.units))

    def call(self, inputs, states):
        output = jnp.tanh(inputs @ self.kernel.value + states[0] @ self.recurrent_kernel.value)
        return output, [output]

    def get_config(self):
        return super().get_config() | {"units": self.units}


def test_rnn_over_a_user_cell_matches_a_loop_and_trains_with_fit(tmp_path):
    inputs = kfunc.Input(shape=(5, 3))
    outputs = L.Dense(1)(L.RNN(MinimalCell(4, name="minimal"), name="rnn")(inputs))
    model = Model(inputs, outputs)
    x = _normal((32, 5, 3))
    y = np.sin(x.sum(axis=(1, 2)))[:, None].astype("float32")

    cell = model.get_layer("rnn").cell
    w, u = cell.kernel.numpy(), cell.recurrent_kernel.numpy()
    h = np.zeros((32, 4), "float32")
    for t in range(5):
        h = np.tanh(x[:, t] @ w + h @ u)
    dense = model.layers[-1]
    expected = h @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, rtol=1e-5, atol=1e-5)

    params, _ = model.get_variables()
    assert set(params["rnn"]) == {"minimal"}  # Keras's path: rnn/minimal/kernel
    model.compile(optimizer="adam", loss="mse")
    losses = model.fit(x, y, epochs=25, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0]

    model.save(tmp_path / "cell.kfunc")
    loaded = load_model(tmp_path / "cell.kfunc")
    np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)),
                               rtol=1e-6)


def test_a_user_cell_over_padded_steps_keeps_its_state_and_repeats_its_output():
    layer = L.RNN(MinimalCell(3), return_sequences=True, return_state=True)
    x = _normal((2, 5, 2), seed=13)
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 1, 1]], bool)
    layer(x)
    w, u = layer.cell.kernel.numpy(), layer.cell.recurrent_kernel.numpy()
    sequence, state = layer(x, mask=mask)
    h = np.zeros((2, 3), "float32")
    for t in range(5):
        new = np.tanh(x[:, t] @ w + h @ u)
        h = np.where(mask[:, t, None], new, h)
        np.testing.assert_allclose(np.asarray(sequence[:, t]), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(state), h, rtol=1e-5, atol=1e-6)


def test_stacked_cells_return_nested_states_like_keras():
    keras = pytest.importorskip("keras")
    x = _normal((2, 4, 3), seed=1)

    def build(layers_module):
        # Zeros: the weights are set below, and Keras's random initializers take seconds to compile.
        zeros = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
        cells = [layers_module.LSTMCell(3, **zeros), layers_module.GRUCell(2, **zeros)]
        return layers_module.RNN(layers_module.StackedRNNCells(cells), return_sequences=True, return_state=True)

    ours, theirs = build(L), build(keras.layers)
    ours(x)
    theirs(keras.Input(shape=(4, 3)))
    ours.set_weights([0.5 * _normal(w.shape, seed=i) for i, w in enumerate(ours.get_weights())])
    theirs.set_weights(ours.get_weights())
    ours_out, theirs_out = ours(x), _keras_call(theirs, x)
    assert len(ours_out) == len(theirs_out) == 3
    assert [len(s) for s in ours_out[1:]] == [2, 1]  # [h, c] of the LSTM cell, [h] of the GRU cell
    for a, b in zip(jax.tree_util.tree_leaves(ours_out), jax.tree_util.tree_leaves(theirs_out), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["SimpleRNNCell", "GRUCell", "LSTMCell"])
def test_a_cell_called_on_one_step_matches_keras(name):
    keras = pytest.importorskip("keras")
    zeros = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # the weights are set below
    ours, theirs = getattr(L, name)(3, **zeros), getattr(keras.layers, name)(3, **zeros)
    x = _normal((2, 4), seed=2)
    states = [_normal((2, 3), seed=3 + i) for i in range(2 if name == "LSTMCell" else 1)]
    ours(x, states)
    theirs.build((None, 4))
    ours.set_weights([0.5 * _normal(w.shape, seed=i) for i, w in enumerate(ours.get_weights())])
    theirs.set_weights(ours.get_weights())
    ours_out, ours_states = ours(x, states)
    theirs_out, theirs_states = _keras_call(theirs, x, states)
    np.testing.assert_allclose(np.asarray(ours_out), np.asarray(theirs_out), rtol=1e-5, atol=1e-5)
    for a, b in zip(ours_states, theirs_states, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_lstm_keeps_its_weight_paths_and_equals_rnn_over_lstm_cell():
    inputs = kfunc.Input(shape=(5, 3))
    lstm = L.LSTM(4, name="lstm")
    model = Model(inputs, lstm(inputs))
    params, _ = model.get_variables()
    assert set(params["lstm"]) == {"kernel", "recurrent_kernel", "bias"}
    assert [v.path for v in lstm.weights] == ["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"]
    assert lstm.units == 4 and lstm.kernel.shape == (3, 16)
    rnn = L.RNN(L.LSTMCell(4))
    x = _normal((2, 5, 3), seed=4)
    rnn(x)
    rnn.set_weights(lstm.get_weights())
    np.testing.assert_allclose(np.asarray(rnn(x)), np.asarray(lstm(x)), rtol=1e-6)
    config = lstm.get_config()
    assert {"units", "unit_forget_bias", "return_sequences", "seed"} <= set(config)
    assert L.LSTM.from_config(config).get_config() == config


def test_rnn_dropout_masks_are_drawn_once_per_sequence():
    layer = L.RNN(L.SimpleRNNCell(3, dropout=0.5, recurrent_dropout=0.5), return_sequences=True)
    x = np.ones((2, 6, 4), "float32")
    layer(x)
    params, state = layer.get_variables()
    key = jax.random.key(1)
    first, _ = layer.apply(params, state, x, training=True, key=key)
    again, _ = layer.apply(params, state, x, training=True, key=key)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    inference, _ = layer.apply(params, state, x)
    assert not np.allclose(np.asarray(first), np.asarray(inference))
    with pytest.raises(LayerConfigError, match="needs a random key"):
        layer.apply(params, state, x, training=True)


def test_bidirectional_over_rnn_cell_has_one_cell_per_direction():
    layer = L.Bidirectional(L.RNN(L.GRUCell(2), return_sequences=True))
    layer(_normal((2, 4, 3)))
    assert len(layer.get_weights()) == 6
    assert layer.forward_layer.cell is not layer.backward_layer.cell


def test_rnn_errors_name_the_layer():
    with pytest.raises(LayerConfigError, match=r"RNN: cell must be a Layer with a state_size"):
        L.RNN(L.Dense(3))
    with pytest.raises(LayerConfigError, match=r"stateful=True\) is not supported"):
        L.RNN(L.GRUCell(2), stateful=True)
    with pytest.raises(LayerConfigError, match="StackedRNNCells: cells must be a non-empty list"):
        L.StackedRNNCells([])
    with pytest.raises(LayerConfigError, match="LSTM: units must be a positive integer"):
        L.LSTM(0)
    layer = L.RNN(L.LSTMCell(3), name="rnn_states")
    with pytest.raises(LayerInputError, match=r"'rnn_states'.*initial_state must be 2 array"):
        layer(_normal((2, 4, 3)), initial_state=[np.zeros((2, 3), "float32")])


# ---------------------------------------------------------------------- EinsumDense, RMSNormalization
def test_einsum_dense_shapes_config_and_errors():
    layer = L.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="e", activation="relu")
    outputs = layer(kfunc.Input(shape=(4, 5)))
    assert outputs.shape == (None, 4, 2, 3)
    assert layer.kernel.shape == (5, 2, 3) and layer.bias.shape == (3,)
    clone = L.EinsumDense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(LayerConfigError, match="equation must have the form"):
        L.EinsumDense("ab->b", 3)
    with pytest.raises(LayerConfigError, match="bias_axes='z' must name axes of the output term"):
        L.EinsumDense("ab,bc->ac", 3, bias_axes="z")(kfunc.Input(shape=(4,)))
    with pytest.raises(LayerConfigError, match="kernel axis 'q'"):
        L.EinsumDense("ab,bq->ab", 4)(kfunc.Input(shape=(4,)))


def test_rms_normalization_formula_and_errors():
    x = _normal((3, 4), seed=5)
    layer = L.RMSNormalization(epsilon=1e-3)
    layer(x)
    layer.set_weights([np.array([1.0, 2.0, 0.5, -1.0], "float32")])
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-3) * np.array([1.0, 2.0, 0.5, -1.0])
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5)
    assert L.RMSNormalization.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(LayerConfigError, match="axis=0 must name axes after the batch axis"):
        L.RMSNormalization(axis=0)(x)


# ---------------------------------------------------------------------- GroupQueryAttention
def test_group_query_attention_masks_match_keras_and_config_round_trips():
    keras = pytest.importorskip("keras")
    query, value = _normal((2, 4, 6), seed=6), _normal((2, 5, 6), seed=7)
    mask = _rng(8).random((2, 4, 5)) > 0.3

    def build(layers_module):
        return layers_module.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2,
                                                 kernel_initializer="zeros")

    ours, theirs = build(L), build(keras.layers)
    ours(query, value)
    theirs(keras.Input(shape=(4, 6)), keras.Input(shape=(5, 6)))
    ours.set_weights([0.5 * _normal(w.shape, seed=i) for i, w in enumerate(ours.get_weights())])
    theirs.set_weights(ours.get_weights())
    ours_out, ours_scores = ours(query, value, attention_mask=mask, return_attention_scores=True)
    theirs_out, theirs_scores = _keras_call(theirs, query, value, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(ours_out), np.asarray(theirs_out), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours_scores), np.asarray(theirs_scores), rtol=1e-5, atol=1e-5)
    config = ours.get_config()
    assert set(config) - {"name", "trainable", "dtype"} <= set(theirs.get_config()) | {"seed"}
    assert L.GroupQueryAttention.from_config(config).get_config() == config
    with pytest.raises(LayerConfigError, match=r"num_query_heads \(3\) must be a multiple of num_key_value_heads"):
        L.GroupQueryAttention(2, 3, 2)


# ---------------------------------------------------------------------- ConvLSTM
def test_conv_lstm_config_round_trip_and_errors():
    layer = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True)
    layer(_normal((1, 2, 4, 4, 1)))
    config = layer.get_config()
    assert config["filters"] == 2 and config["kernel_size"] == (3, 3)
    assert L.ConvLSTM2D.from_config(config).get_config() == config
    with pytest.raises(LayerConfigError, match="ConvLSTM1D: strides > 1 cannot be combined with dilation_rate > 1"):
        L.ConvLSTM1D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(LayerConfigError, match="inputs must have rank 5"):
        L.ConvLSTM2D(2, 3)(kfunc.Input(shape=(3, 4, 2)))


# ---------------------------------------------------------------------- SpectralNormalization
def test_spectral_normalization_trains_and_moves_its_vector():
    inputs = kfunc.Input(shape=(4,))
    wrapped = L.SpectralNormalization(L.Dense(3), name="sn")
    model = Model(inputs, L.Dense(1)(wrapped(inputs)))
    x = _normal((32, 4), seed=9)
    y = x[:, :1] - x[:, 1:2]
    u_before = wrapped.vector_u.numpy().copy()
    model.compile(optimizer="adam", loss="mse")
    losses = model.fit(x, y, epochs=20, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert not np.allclose(wrapped.vector_u.numpy(), u_before)
    # In training the kernel is divided by its largest singular value (estimated), so its norm is about 1.
    outputs, _ = wrapped.apply(*wrapped.get_variables(), x, training=True)
    kernel = wrapped.layer.kernel.numpy()
    sigma = np.linalg.svd(kernel, compute_uv=False)[0]
    np.testing.assert_allclose(np.asarray(outputs), x @ (kernel / sigma) + wrapped.layer.bias.numpy(), rtol=0.05,
                               atol=0.05)
    with pytest.raises(LayerConfigError, match="neither a 'kernel' nor an 'embeddings' weight"):
        L.SpectralNormalization(L.Dropout(0.5))(inputs)
    with pytest.raises(LayerConfigError, match="power_iterations must be a positive integer"):
        L.SpectralNormalization(L.Dense(2), power_iterations=0)


# ---------------------------------------------------------------------- JaxLayer and FlaxLayer
def test_jax_layer_params_train_with_fit_and_save_by_registered_name(tmp_path):
    inputs = kfunc.Input(shape=(4,))
    jax_layer = L.JaxLayer(jax_dense_call, init_fn=jax_dense_init, name="jax_dense")
    model = Model(inputs, L.Dense(1)(jax_layer(inputs)))
    params, _ = model.get_variables()
    assert set(params["jax_dense"]) == {"b", "w"} and params["jax_dense"]["w"].shape == (4, 3)
    fresh, _ = model.init(jax.random.key(5))
    assert not np.allclose(fresh["jax_dense"]["w"], params["jax_dense"]["w"])  # init_fn runs with the key
    x = _normal((32, 4), seed=10)
    y = np.tanh(x @ np.ones((4, 1), "float32"))
    before = jax_layer.get_weights()
    model.compile(optimizer="adam", loss="mse")
    losses = model.fit(x, y, epochs=20, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert not np.allclose(jax_layer.get_weights()[1], before[1])  # gradients reached the JAX params
    model.save(tmp_path / "jax.kfunc")
    loaded = load_model(tmp_path / "jax.kfunc")
    np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)),
                               rtol=1e-6)


def test_jax_layer_from_given_params_and_its_errors(tmp_path):
    params = {"w": np.eye(3, dtype="float32"), "scale": 2.0}
    layer = L.JaxLayer(lambda params, inputs: params["scale"] * inputs @ params["w"], params=params)
    np.testing.assert_allclose(np.asarray(layer(np.ones((1, 3), "float32"))), [[2.0, 2.0, 2.0]])
    assert [w.shape for w in layer.get_weights()] == [(), (3, 3)]
    with pytest.raises(LayerConfigError, match=r"JaxLayer: call_fn must take arguments named from .*\['x'\]"):
        L.JaxLayer(lambda x: x)
    with pytest.raises(LayerConfigError, match="JaxLayer: call_fn takes params or state, so give init_fn"):
        L.JaxLayer(lambda params, inputs: inputs)

    def unregistered_call(params, inputs):
        return inputs @ params["w"]

    inputs = kfunc.Input(shape=(3,))
    model = Model(inputs, L.JaxLayer(unregistered_call, params={"w": np.eye(3, dtype="float32")})(inputs))
    model.save(tmp_path / "unregistered.kfunc")
    with pytest.raises(UnknownObjectError, match=r"'unregistered_call'.*kfunc\.saving\.register"):
        load_model(tmp_path / "unregistered.kfunc")


def test_flax_layer_trains_with_fit_and_saves_a_registered_module(tmp_path):
    pytest.importorskip("flax")
    inputs = kfunc.Input(shape=(4,))
    flax_layer = L.FlaxLayer(flax_two_dense(), name="flax")
    model = Model(inputs, flax_layer(inputs))
    params, _ = model.get_variables()
    assert set(params["flax"]) == {"params.Dense_0.bias", "params.Dense_0.kernel", "params.Dense_1.bias",
                                   "params.Dense_1.kernel"}
    x = _normal((32, 4), seed=11)
    y = np.stack([x[:, 0], -x[:, 1]], axis=1)
    model.compile(optimizer="adam", loss="mse")
    losses = model.fit(x, y, epochs=40, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < 0.85 * losses[0]
    model.save(tmp_path / "flax.kfunc")
    loaded = load_model(tmp_path / "flax.kfunc")
    np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)),
                               rtol=1e-6)


def test_flax_layer_batch_norm_state_is_updated_in_training():
    nn = pytest.importorskip("flax.linen")

    class Normalized(nn.Module):
        @nn.compact
        def __call__(self, inputs, training):
            return nn.BatchNorm(use_running_average=not training, momentum=0.5)(nn.Dense(2)(inputs))

    layer = L.FlaxLayer(Normalized())
    x = _normal((8, 3), seed=12)
    layer(x)
    params, state = layer.get_variables()
    assert {name.split(".")[0] for name in state} == {"batch_stats"} and len(state) == 2
    _, new_state = layer.apply(params, state, x, training=True)
    _, same_state = layer.apply(params, state, x, training=False)
    assert all(not np.allclose(new_state[k], state[k]) for k in state)
    for k in state:
        np.testing.assert_array_equal(same_state[k], state[k])


def test_flax_layer_without_flax_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_flax(name, *args, **kwargs):
        if name == "flax" or name.startswith("flax."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_flax)
    with pytest.raises(ImportError, match=r"FlaxLayer needs Flax.*pip install flax"):
        L.FlaxLayer(object())
