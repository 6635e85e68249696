"""MultiHeadAttention, Attention and AdditiveAttention: masks, scores, dropout, training, saving
and error messages (shapes, gradients and plain Keras parity: the attention cases of
``layer_cases.py``)."""

from __future__ import annotations

import functools
import os
import re
import textwrap
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers as L
from kfunc.errors import LayerConfigError, LayerInputError, LayerInputTypeError
from kfunc.models import Model, load_model

keras = pytest.importorskip("keras")

B, T, S, DIM = 3, 4, 5, 6
RNG = np.random.default_rng(0)
QUERY = RNG.standard_normal((B, T, DIM)).astype("float32")
VALUE = RNG.standard_normal((B, S, DIM)).astype("float32")
KEY = RNG.standard_normal((B, S, 3)).astype("float32")
# Row 1 of the query mask is all False, row 2 of the value mask too: queries that attend to nothing.
QUERY_MASK = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
VALUE_MASK = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 0, 1], [0, 0, 0, 0, 0]], bool)
KEY_MASK = np.array([[1, 1, 1, 1, 0], [1, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool)


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-6)


def _pair(name, with_key=True, **kwargs):
    """The same layer from Keras and kfunc, built on (QUERY, VALUE, KEY) (without KEY if not
    ``with_key``) or [QUERY, VALUE, VALUE], kfunc holding Keras's weights."""
    keras_layer, kfunc_layer = getattr(keras.layers, name)(**kwargs), getattr(L, name)(**kwargs)
    if name == "MultiHeadAttention":
        key = KEY if with_key else None
        # With the scores, Keras takes its explicit path (its fused one fails when value_dim != key_dim).
        keras_layer(QUERY, VALUE, key, return_attention_scores=True), kfunc_layer(QUERY, VALUE, key)
    else:
        keras_layer([QUERY, VALUE, VALUE]), kfunc_layer([QUERY, VALUE, VALUE])
    weights = [RNG.standard_normal(w.shape).astype("float32") for w in keras_layer.get_weights()]
    keras_layer.set_weights(weights)
    kfunc_layer.set_weights(keras_layer.get_weights())
    return keras_layer, kfunc_layer


# ---------------------------------------------------------------------- MultiHeadAttention vs Keras
def test_mha_weights_follow_keras_names_order_and_shapes():
    keras_layer, layer = _pair("MultiHeadAttention", num_heads=2, key_dim=4, value_dim=3, use_gate=True)
    assert [v.path for v in layer.weights] == [
        f"{part}/{kind}" for part in ("query", "key", "gate", "value", "attention_output") for kind in ("kernel", "bias")
    ]
    assert [v.shape for v in layer.weights] == [tuple(w.shape) for w in keras_layer.weights]
    assert layer.weights[0].shape == (DIM, 2, 4) and layer.weights[-2].shape == (2, 3, DIM)
    params = layer.get_variables().params
    assert params["query"]["kernel"].shape == (DIM, 2, 4) and params["attention_output"]["bias"].shape == (DIM,)


@pytest.mark.parametrize("key_given", [False, True])
def test_mha_query_value_key_masks_match_keras_attention_mask(key_given):
    """Keras's call reads the query mask from the tensor (never from ``query_mask=``), so the Keras
    side gets the masks combined as its ``attention_mask``. A query with every key masked gets zero
    weights when the scores are returned (Keras's explicit softmax) and the average of every value
    otherwise (Keras's fused attention): kfunc follows both."""
    keras_layer, layer = _pair("MultiHeadAttention", key_given, num_heads=2, key_dim=3)
    key = KEY if key_given else None
    masks = {"query_mask": QUERY_MASK, "value_mask": VALUE_MASK} | ({"key_mask": KEY_MASK} if key_given else {})
    combined = QUERY_MASK[:, :, None] & VALUE_MASK[:, None, :] & (KEY_MASK[:, None, :] if key_given else True)
    expected, expected_scores = keras_layer(QUERY, VALUE, key, attention_mask=combined, return_attention_scores=True)
    outputs, scores = layer(QUERY, VALUE, key, return_attention_scores=True, **masks)
    _close(outputs, expected)
    _close(scores, expected_scores)
    plain = layer(QUERY, VALUE, key, **masks)
    _close(plain, keras_layer(QUERY, VALUE, key, attention_mask=combined))
    has_key = combined.any(axis=-1)
    _close(np.asarray(plain)[has_key], np.asarray(outputs)[has_key])
    # Fully masked rows attend to nothing: zero weights, so the output is the output projection's bias.
    assert np.all(np.asarray(scores)[1] == 0) and np.all(np.asarray(scores)[2] == 0)
    _close(np.asarray(outputs)[1], np.broadcast_to(layer.output_dense.bias.numpy(), (T, DIM)))


def test_mha_causal_mask_sliding_window_and_attention_mask_match_keras():
    keras_layer, layer = _pair("MultiHeadAttention", False, num_heads=2, key_dim=3, sliding_window=2)
    attention_mask = RNG.random((B, T, S)) > 0.3
    expected, expected_scores = keras_layer(
        QUERY, VALUE, attention_mask=attention_mask & VALUE_MASK[:, None, :], use_causal_mask=True,
        return_attention_scores=True,
    )
    outputs, scores = layer(QUERY, VALUE, value_mask=VALUE_MASK, attention_mask=attention_mask, use_causal_mask=True,
                            return_attention_scores=True)
    _close(outputs, expected)
    _close(scores, expected_scores)
    # Causal: query i never attends to a key after it.
    assert np.all(np.triu(np.asarray(scores), k=1) == 0)


def test_mha_matches_keras_in_a_model_with_embedding_masks():
    """Masks made by Embedding(mask_zero=True) reach query_mask and value_mask through the graph."""

    def build(layers, input_fn, model_cls):
        ids = input_fn((S,), dtype="int32")
        x = layers.Embedding(7, DIM, mask_zero=True)(ids)
        out, scores = layers.MultiHeadAttention(2, 3)(x, x, return_attention_scores=True)
        return model_cls(ids, [out, scores])

    keras_model = build(keras.layers, keras.Input, keras.Model)
    model = build(L, kfunc.Input, Model)
    model.set_weights(keras_model.get_weights())
    ids = np.array([[1, 2, 0, 0, 3], [0, 4, 5, 0, 0], [1, 2, 3, 4, 5]], "int32")
    for actual, expected in zip(model(ids), keras_model(ids), strict=True):
        _close(actual, expected)
    assert np.all(np.asarray(model(ids)[1])[0, :, :, 2] == 0)  # the padded key gets no weight


def test_mha_output_keeps_the_query_mask():
    ids_in = kfunc.Input((S,), dtype="int32")
    x = L.Embedding(7, DIM, mask_zero=True)(ids_in)
    model = Model(ids_in, L.MultiHeadAttention(2, 3)(x, x))
    ids = np.array([[1, 2, 0, 0, 3], [0, 4, 5, 0, 0], [1, 2, 3, 4, 5]], "int32")
    params, state = model.get_variables()
    _, _, mask = model.apply(params, state, ids, return_masks=True)
    np.testing.assert_array_equal(np.asarray(mask), ids != 0)


def test_mha_higher_rank_attention_axes_match_keras():
    query = RNG.standard_normal((2, 3, 4, 5)).astype("float32")
    value = RNG.standard_normal((2, 3, 2, 5)).astype("float32")
    attention_mask = RNG.random((2, 3, 4, 2)) > 0.3
    for axes in [None, (2,), -2]:
        keras_layer = keras.layers.MultiHeadAttention(2, 3, attention_axes=axes)
        layer = L.MultiHeadAttention(2, 3, attention_axes=axes)
        keras_layer(query, value), layer(query, value)
        layer.set_weights(keras_layer.get_weights())
        mask = attention_mask if axes is not None else None  # (batch, other axis, T, S) for one attended axis
        expected = keras_layer(query, value, attention_mask=mask, return_attention_scores=True)
        actual = layer(query, value, attention_mask=mask, return_attention_scores=True)
        for a, e in zip(actual, expected, strict=True):
            assert a.shape == e.shape
            _close(a, e)


def test_mha_symbolic_shapes_with_scores():
    q, v = kfunc.Input((T, DIM)), kfunc.Input((S, 5))
    out, scores = L.MultiHeadAttention(3, 2, output_shape=(2, 4))(q, v, return_attention_scores=True)
    assert out.shape == (None, T, 2, 4) and scores.shape == (None, 3, T, S)
    out = L.MultiHeadAttention(2, 2)(kfunc.Input((None, DIM)), kfunc.Input((None, 5)))
    assert out.shape == (None, None, DIM)


# ---------------------------------------------------------------------- Attention / AdditiveAttention vs Keras
@pytest.mark.parametrize(
    "name, kwargs",
    [("Attention", {}), ("Attention", {"use_scale": True, "score_mode": "concat"}), ("AdditiveAttention", {})],
)
def test_attention_masks_and_causal_match_keras(name, kwargs):
    keras_layer, layer = _pair(name, **kwargs)
    for mask, causal in [([QUERY_MASK, VALUE_MASK], False), ([None, VALUE_MASK], True), (None, True)]:
        inputs = [QUERY, VALUE, VALUE[..., ::-1]]
        expected = keras_layer(inputs, mask=mask, use_causal_mask=causal, return_attention_scores=True)
        actual = layer(inputs, mask=mask, use_causal_mask=causal, return_attention_scores=True)
        for a, e in zip(actual, expected, strict=True):
            _close(a, e)
    outputs = np.asarray(layer([QUERY, VALUE], mask=[QUERY_MASK, VALUE_MASK]))
    assert np.all(outputs[~QUERY_MASK] == 0)  # masked queries give zeros


def test_attention_compute_mask_is_the_query_mask():
    layer = L.Attention()
    assert layer.compute_mask([QUERY, VALUE], None) is None
    assert layer.compute_mask([QUERY, VALUE], [None, VALUE_MASK]) is None
    assert layer.compute_mask([QUERY, VALUE], [QUERY_MASK, VALUE_MASK]) is QUERY_MASK
    assert layer.supports_masking
    with pytest.raises(LayerInputError, match=r"'attention' \(Attention\): mask must be a list \[query_mask, value_mask\]"):
        layer.compute_mask([QUERY, VALUE], QUERY_MASK)


def test_attention_scores_shapes():
    q, v = kfunc.Input((T, DIM)), kfunc.Input((S, 2))
    k = kfunc.Input((S, DIM))
    out, scores = L.AdditiveAttention()([q, v, k], return_attention_scores=True)
    assert out.shape == (None, T, 2) and scores.shape == (None, T, S)


# ---------------------------------------------------------------------- dropout
def test_mha_dropout_in_training_only_and_deterministic_per_key():
    layer = L.MultiHeadAttention(2, 3, dropout=0.5, seed=3)
    layer(QUERY, VALUE)
    params, state = layer.get_variables()

    @functools.partial(jax.jit, static_argnums=0)
    def apply(training, key):
        return layer.apply(params, state, QUERY, VALUE, training=training, key=key, return_attention_scores=True)[0]

    def run(training, key=None):
        outputs, scores = apply(training, jax.random.key(0) if key is None else key)
        return np.asarray(outputs), np.asarray(scores)

    inference, inference_scores = run(False)
    first, first_scores = run(True, jax.random.key(1))
    assert np.all(np.isfinite(first))
    assert not np.allclose(first, inference)
    np.testing.assert_array_equal(first, run(True, jax.random.key(1))[0])
    assert not np.allclose(first, run(True, jax.random.key(2))[0])
    # As in Keras, the scores returned are the probabilities before dropout.
    _close(first_scores, inference_scores)
    # Called directly on arrays, the random key is dropout_key= (key= is the attention key tensor).
    direct = layer(QUERY, VALUE, training=True, dropout_key=jax.random.key(1))
    _close(direct, first)  # eager against jitted: equal up to rounding
    grads = jax.jit(jax.grad(lambda p: jnp.sum(layer.apply(p, state, QUERY, VALUE, training=True, key=jax.random.key(4))[0])))(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_attention_dropout_drops_weights():
    layer = L.Attention(dropout=0.5)
    layer([QUERY, VALUE])
    params, state = layer.get_variables()
    (_, weights), _ = layer.apply(params, state, [QUERY, VALUE], training=True, key=jax.random.key(0),
                                  return_attention_scores=True)
    (_, clean), _ = layer.apply(params, state, [QUERY, VALUE], return_attention_scores=True)
    weights, clean = np.asarray(weights), np.asarray(clean)
    dropped = weights == 0
    assert 0 < dropped.mean() < 1
    _close(weights[~dropped], 2 * clean[~dropped])  # kept weights scaled by 1 / (1 - rate)
    again, _ = layer.apply(params, state, [QUERY, VALUE], training=True, key=jax.random.key(0))
    different, _ = layer.apply(params, state, [QUERY, VALUE], training=True, key=jax.random.key(1))
    assert np.allclose(again, layer.apply(params, state, [QUERY, VALUE], training=True, key=jax.random.key(0))[0])
    assert not np.allclose(again, different)


def test_dropout_without_a_key_in_training_says_how_to_pass_one():
    mha = L.MultiHeadAttention(2, 3, dropout=0.2)
    with pytest.raises(LayerConfigError, match=r"'multi_head_attention' \(MultiHeadAttention\) uses dropout=0.2 .* dropout_key="):
        mha(QUERY, VALUE, training=True)
    with pytest.raises(LayerConfigError, match=r"'attention' \(Attention\) uses dropout=0.2 .* pass key="):
        L.Attention(dropout=0.2)([QUERY, VALUE], training=True)


# ---------------------------------------------------------------------- models: fit, save, load
def _transformer_block(dropout=0.1):
    tokens = kfunc.Input((S, DIM), name="tokens")
    attended = L.MultiHeadAttention(2, 4, dropout=dropout, name="mha")(tokens, tokens, use_causal_mask=True)
    x = L.LayerNormalization()(L.add([tokens, attended]))
    pooled = L.GlobalAveragePooling1D()(x)
    return Model(tokens, L.Dense(1, name="head")(pooled), name="block")


def test_model_with_mha_trains_with_fit():
    model = _transformer_block()
    x = RNG.standard_normal((64, S, DIM)).astype("float32")
    y = (x[:, :, 0].mean(axis=1, keepdims=True) > 0).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0]


def test_save_load_round_trip_keeps_config_weights_and_outputs(tmp_path):
    q, v, k = kfunc.Input((T, DIM)), kfunc.Input((S, DIM)), kfunc.Input((S, 3))
    out, scores = L.MultiHeadAttention(2, 3, value_dim=2, use_gate=True, dropout=0.1, output_shape=5,
                                       kernel_initializer="he_normal", name="mha")(
        q, v, key=k, return_attention_scores=True, use_causal_mask=False)
    attended = L.AdditiveAttention(dropout=0.2, name="additive")([q, v])
    model = Model([q, v, k], [out, scores, L.Attention(score_mode="concat", name="luong")([q, attended])])
    model.set_weights([RNG.standard_normal(w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path / "attention.kfunc"
    model.save(path)
    loaded = load_model(path)
    for name in ("mha", "additive", "luong"):
        assert loaded.get_layer(name).get_config() == model.get_layer(name).get_config()
    assert loaded.get_layer("mha").get_config()["output_shape"] == (5,)
    for actual, expected in zip(loaded([QUERY, VALUE, KEY]), model([QUERY, VALUE, KEY]), strict=True):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected))


def test_mha_kernel_regularizer_and_constraint_reach_every_projection():
    layer = L.MultiHeadAttention(2, 3, kernel_regularizer="l2", bias_constraint="non_neg")
    layer(QUERY, VALUE)
    kernels = [v for v in layer.weights if v.name == "kernel"]
    assert len(kernels) == 4 and all(v.constraint is not None for v in layer.weights if v.name == "bias")
    _close(sum(layer.losses), sum(0.01 * np.sum(np.square(v.numpy())) for v in kernels))


def test_get_config_matches_keras_names():
    layer = L.MultiHeadAttention(2, 3)
    keras_config = keras.layers.MultiHeadAttention(2, 3).get_config()
    assert set(layer.get_config()) - {"dtype", "trainable", "name"} <= set(keras_config)
    assert set(L.AdditiveAttention().get_config()) == set(keras.layers.AdditiveAttention().get_config())
    assert L.MultiHeadAttention.from_config(layer.get_config()).get_config() == layer.get_config()


# ---------------------------------------------------------------------- errors
def test_wrong_ranks_name_the_layer():
    with pytest.raises(LayerInputError, match=r"'mha' \(MultiHeadAttention\): query \(input 0\) must have rank >= 3.*\(None, 6\)"):
        L.MultiHeadAttention(2, 3, name="mha")(kfunc.Input((DIM,)), kfunc.Input((S, DIM)))
    with pytest.raises(LayerInputError, match=r"'mha2' \(MultiHeadAttention\): query, value and key must have the same rank"):
        L.MultiHeadAttention(2, 3, name="mha2")(kfunc.Input((T, DIM)), kfunc.Input((2, S, DIM)))
    with pytest.raises(LayerInputError, match=r"'att' \(Attention\): input 1 \(value\) must have rank >= 3"):
        L.Attention(name="att")([kfunc.Input((T, DIM)), kfunc.Input((DIM,))])
    with pytest.raises(LayerInputError, match=r"'att2' \(Attention\) must be called on a list \[query, value\]"):
        L.Attention(name="att2")(kfunc.Input((T, DIM)))


def test_mismatched_feature_sizes_name_the_layer():
    mha = L.MultiHeadAttention(2, 3, name="mha")
    mha(kfunc.Input((T, DIM)), kfunc.Input((S, DIM)))
    with pytest.raises(LayerInputError, match=r"'mha' \(MultiHeadAttention\) was built for value tensors of 6 features.*\(None, 5, 4\)"):
        mha(kfunc.Input((T, DIM)), kfunc.Input((S, 4)))
    with pytest.raises(LayerInputError, match=r"'mha' \(MultiHeadAttention\) was built for query tensors of 6 features"):
        mha(QUERY[..., :4], VALUE)
    with pytest.raises(LayerInputError, match=r"value and key must have the same shape except the last axis"):
        L.MultiHeadAttention(2, 3)(kfunc.Input((T, DIM)), kfunc.Input((S, DIM)), kfunc.Input((S + 1, DIM)))
    with pytest.raises(LayerInputError, match=r"'att' \(Attention\): query has 6 features but key has 3.*'dot' score"):
        L.Attention(name="att")([kfunc.Input((T, DIM)), kfunc.Input((S, DIM)), kfunc.Input((S, 3))])
    with pytest.raises(LayerInputError, match=r"value and key must have the same number of timesteps"):
        L.Attention()([kfunc.Input((T, DIM)), kfunc.Input((S, DIM)), kfunc.Input((S + 1, DIM))])
    additive = L.AdditiveAttention(name="add_att")
    additive([QUERY, VALUE])
    with pytest.raises(LayerInputError, match=r"'add_att' \(AdditiveAttention\) was built for queries of 6 features"):
        additive([QUERY[..., :4], VALUE[..., :4]])


def test_mask_and_axis_errors():
    mha = L.MultiHeadAttention(2, 3, name="mha")
    query4 = RNG.standard_normal((2, 3, 4, 5)).astype("float32")
    with pytest.raises(LayerInputError, match=r"'mha' \(MultiHeadAttention\): query_mask, use_causal_mask need rank-3 inputs"):
        mha(query4, query4, query_mask=np.ones((2, 3), bool), use_causal_mask=True)
    mha3 = L.MultiHeadAttention(2, 3, name="mha3")
    with pytest.raises(LayerInputError, match=r"'mha3' \(MultiHeadAttention\): the attention mask has shape \(1, 3, 4, 5, 6\)"):
        mha3(QUERY, VALUE, attention_mask=np.ones((1, 3, 4, 5, 6), bool))
    with pytest.raises(LayerConfigError, match=r"attention_axes=\(3,\) must name distinct axes of the query between batch and features, 1 to 1"):
        L.MultiHeadAttention(2, 3, attention_axes=3)(QUERY, VALUE)


def test_argument_errors():
    with pytest.raises(LayerConfigError, match="num_heads must be a positive integer"):
        L.MultiHeadAttention(0, 3)
    with pytest.raises(LayerConfigError, match="output_shape must be a positive int"):
        L.MultiHeadAttention(2, 3, output_shape=(2, -1))
    with pytest.raises(LayerConfigError, match=r"flash_attention=True\) is not supported"):
        L.MultiHeadAttention(2, 3, flash_attention=True)
    with pytest.raises(LayerConfigError, match="score_mode must be one of"):
        L.Attention(score_mode="cosine")
    with pytest.raises(LayerConfigError, match="AdditiveAttention always scores"):
        L.AdditiveAttention(score_mode="dot")
    mha = L.MultiHeadAttention(2, 3, name="mha")
    with pytest.raises(LayerInputTypeError, match=r"'mha' \(MultiHeadAttention\): key= is the attention key tensor.*dropout_key="):
        mha(QUERY, VALUE, key=jax.random.key(0))
    with pytest.raises(LayerInputTypeError, match=r"'mha' \(MultiHeadAttention\) was called without a value tensor"):
        mha(QUERY)
    mha(QUERY, VALUE, KEY)
    params, state = mha.get_variables()
    with pytest.raises(LayerInputTypeError, match=r"the key tensor must be passed positionally to apply\(\)"):
        mha.apply(params, state, QUERY, VALUE, key=KEY)


@pytest.mark.slow  # tests/test_readme.py runs this README block (and checks the same) by default
def test_readme_attention_example_runs():
    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("\n- **Attention**", 1)[1].split("\n- **", 1)[0]
    code = textwrap.dedent(re.findall(r"```python\n(.*?)```", section, re.DOTALL)[0])
    namespace: dict = {}
    exec(compile(code, "README.md attention", "exec"), namespace)  # noqa: S102 - the README's own code
    assert namespace["scores"].shape == (None, 2, 10, 10)
    assert namespace["model"].output.shape == (None, 1)
