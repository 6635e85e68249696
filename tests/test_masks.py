"""Masks flow through the graph as in Keras 3: made by ``Embedding(mask_zero=True)`` and
``Masking``, respected by RNNs, pooling, merges, wrappers, nested models and the loss; every
model here is compared with the same model built in Keras 3 with the same weights."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kfunc  # noqa: E402

keras = pytest.importorskip("keras")

STEPS, VOCAB = 6, 10


def _ids(seed=0, batch=4):
    """Integer sequences ``(batch, STEPS)`` padded with zeros at the end (row 3 unpadded)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (batch, STEPS)).astype("int32")
    ids[0, 4:] = 0
    ids[1, 2:] = 0
    ids[2, 1:] = 0
    return ids


def _pair(build):
    """The same model built by ``build(module, layers)`` in Keras and kfunc; kfunc gets Keras's weights."""
    made = []
    for module, layers in ((keras, keras.layers), (kfunc, kfunc.layers)):
        made.append(build(module, layers))
    reference, model = made
    model.set_weights(reference.get_weights())
    return reference, model


def _embedded(module, layers, **rnn):
    inputs = module.Input((STEPS,), dtype="int32")
    return inputs, layers.Embedding(VOCAB, 4, mask_zero=True)(inputs)


def _assert_same(reference, model, inputs, atol=1e-6):
    expected = jax.tree_util.tree_leaves(reference.predict(inputs, verbose=0))
    got = jax.tree_util.tree_leaves(model.predict(inputs, verbose=0))
    assert len(expected) == len(got)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=atol)


def _sequence_model(make_layer):
    def build(module, layers):
        inputs, x = _embedded(module, layers)
        return module.Model(inputs, make_layer(layers)(x))

    return build


SEQUENCE_LAYERS = {
    "lstm_last": lambda L: L.LSTM(3),
    "gru_sequences": lambda L: L.GRU(3, return_sequences=True),
    "simple_rnn_backwards_sequences": lambda L: L.SimpleRNN(3, go_backwards=True, return_sequences=True),
    "lstm_zero_output_state": lambda L: L.LSTM(3, return_sequences=True, return_state=True, zero_output_for_mask=True),
    "bidirectional_concat": lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True)),
    "bidirectional_none_state": lambda L: L.Bidirectional(L.GRU(2, return_state=True), merge_mode=None),
    "global_average_pooling1d": lambda L: L.GlobalAveragePooling1D(),
}


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_layers_after_a_masked_embedding_match_keras(name):
    reference, model = _pair(_sequence_model(SEQUENCE_LAYERS[name]))
    _assert_same(reference, model, _ids())


def test_rnn_carries_state_over_padded_steps():
    """A padded step changes nothing: the last output equals the output at the last real step."""
    inputs = kfunc.Input((STEPS,), dtype="int32")
    embedded = kfunc.layers.Embedding(VOCAB, 4, mask_zero=True)(inputs)
    sequences = kfunc.layers.LSTM(3, return_sequences=True)(embedded)
    last = kfunc.layers.LSTM(3)
    model = kfunc.Model(inputs, [sequences, last(embedded)])
    last.set_weights(model.layers[2].get_weights())
    ids = _ids()
    full, final = model.predict(ids, verbose=0)
    lengths = (ids != 0).sum(axis=1)
    np.testing.assert_allclose(final, full[np.arange(len(ids)), lengths - 1], atol=1e-6)
    # Keras's rule: padded steps of the sequence repeat the previous output.
    np.testing.assert_allclose(full[1, 2:], np.broadcast_to(full[1, 1], (STEPS - 2, 3)), atol=1e-6)


def test_masking_layer_matches_keras_and_zeroes_padded_steps():
    def build(module, layers):
        inputs = module.Input((STEPS, 3))
        masked = layers.Masking(mask_value=-1.0)(inputs)
        return module.Model(inputs, [masked, layers.LSTM(2, return_sequences=True)(masked)])

    reference, model = _pair(build)
    x = np.random.default_rng(1).standard_normal((3, STEPS, 3)).astype("float32")
    x[0, 3:] = -1.0
    x[1, :2] = -1.0
    _assert_same(reference, model, x)
    masked, _ = model.predict(x, verbose=0)
    assert np.all(masked[0, 3:] == 0) and np.all(masked[1, :2] == 0)


def test_merge_layers_combine_masks_like_keras():
    def build(module, layers):
        a = module.Input((STEPS,), dtype="int32")
        b = module.Input((STEPS,), dtype="int32")
        dense = module.Input((STEPS, 4))
        ea = layers.Embedding(VOCAB, 4, mask_zero=True)(a)
        eb = layers.Embedding(VOCAB, 4, mask_zero=True)(b)
        added = layers.LSTM(2, return_sequences=True)(layers.Add()([ea, eb]))
        joined = layers.LSTM(2)(layers.Concatenate()([ea, dense]))
        biggest = layers.GlobalAveragePooling1D()(layers.Maximum()([ea, eb]))
        return module.Model([a, b, dense], [added, joined, biggest])

    reference, model = _pair(build)
    other = _ids(seed=5)[::-1].copy()
    dense = np.random.default_rng(2).standard_normal((4, STEPS, 4)).astype("float32")
    _assert_same(reference, model, [_ids(), other, dense])


def test_masks_pass_through_dense_dropout_time_distributed_and_nested_models():
    def build(module, layers):
        inner_in = module.Input((STEPS, 4))
        inner = module.Model(inner_in, layers.Dropout(0.3)(layers.Dense(4, activation="tanh")(inner_in)))
        inputs, x = _embedded(module, layers)
        x = inner(x)
        x = layers.TimeDistributed(layers.Dense(3))(x)
        x = layers.Activation("relu")(x)
        return module.Model(inputs, layers.GRU(2)(x))

    reference, model = _pair(build)
    _assert_same(reference, model, _ids())


def test_model_call_with_masks_returns_output_masks():
    inputs = kfunc.Input((STEPS,), dtype="int32")
    x = kfunc.layers.Embedding(VOCAB, 4, mask_zero=True)(inputs)
    model = kfunc.Model(inputs, [kfunc.layers.LSTM(2, return_sequences=True)(x), kfunc.layers.LSTM(2)(x)])
    ids = _ids()
    outputs, masks = model.call_with_masks(ids)
    np.testing.assert_array_equal(masks[0], ids != 0)
    assert masks[1] is None
    lowered = kfunc.lower(model)
    variables = lowered.init(jax.random.key(0))
    _, _, pure_masks = model.apply(*variables, ids, return_masks=True)
    np.testing.assert_array_equal(pure_masks[0], ids != 0)


def test_a_mask_given_to_model_call_reaches_its_layers():
    inputs = kfunc.Input((STEPS, 3))
    model = kfunc.Model(inputs, kfunc.layers.GlobalAveragePooling1D()(inputs))
    x = np.random.default_rng(3).standard_normal((2, STEPS, 3)).astype("float32")
    keep = np.ones((2, STEPS), bool)
    keep[0, 2:] = False
    got = model(x, mask=keep)
    np.testing.assert_allclose(got[0], x[0, :2].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[1], x[1].mean(axis=0), rtol=1e-6)


def test_custom_layer_compute_mask_and_mask_argument():
    seen = {}

    class DropFirstStep(kfunc.layers.Layer):
        def call(self, inputs, mask=None):
            seen["mask"] = mask
            return inputs

        def compute_mask(self, inputs, mask=None):
            return mask.at[:, 0].set(False)

    inputs = kfunc.Input((STEPS,), dtype="int32")
    x = kfunc.layers.Embedding(VOCAB, 4, mask_zero=True)(inputs)
    pooled = kfunc.layers.GlobalAveragePooling1D()(DropFirstStep()(x))
    model = kfunc.Model(inputs, [x, pooled])
    ids = _ids()
    embedded, got = model(ids)  # eager, so the mask the layer saw is a concrete array
    np.testing.assert_array_equal(np.asarray(seen["mask"]), ids != 0)
    keep = (ids != 0) & (np.arange(STEPS) > 0)
    expected = (embedded * keep[..., None]).sum(1) / np.maximum(keep.sum(1, keepdims=True), 1)
    rows = keep.any(axis=1)
    np.testing.assert_allclose(got[rows], expected[rows], rtol=1e-5, atol=1e-6)


def test_a_layer_without_mask_support_warns_that_it_drops_the_mask():
    inputs = kfunc.Input((STEPS,), dtype="int32")
    x = kfunc.layers.Embedding(VOCAB, 4, mask_zero=True)(inputs)
    model = kfunc.Model(inputs, kfunc.layers.Flatten(name="flat")(x))
    with pytest.warns(UserWarning, match=r"Layer 'flat' \(Flatten\) does not support masking"):
        model(_ids())


def test_rnn_rejects_a_mask_of_the_wrong_shape():
    layer = kfunc.layers.LSTM(2, name="enc")
    x = np.zeros((2, STEPS, 3), "float32")
    with pytest.raises(kfunc.errors.LayerInputError, match=r"'enc'.*mask must have shape \(batch, timesteps\) = \(2, 6\).*\(2, 5\)"):
        layer(x, mask=np.ones((2, 5), bool))


def _tagger(module, layers):
    inputs, x = _embedded(module, layers)
    x = layers.LSTM(4, return_sequences=True)(x)
    return module.Model(inputs, layers.TimeDistributed(layers.Dense(3, activation="softmax"))(x))


def test_losses_and_metrics_ignore_padded_steps_like_keras():
    reference, model = _pair(_tagger)
    for m in (reference, model):
        m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ids = _ids(batch=5)
    targets = np.random.default_rng(4).integers(0, 3, (5, STEPS)).astype("int32")
    expected = reference.evaluate(ids, targets, batch_size=5, verbose=0)
    got = model.evaluate(ids, targets, batch_size=5, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Per-sample weights (Keras 3 itself fails on these with a mask): sum(loss * w * kept) / kept steps.
    weights = np.array([1.0, 0.5, 2.0, 1.0, 0.0], "float32")
    probabilities = model.predict(ids, verbose=0)
    step_losses = -np.log(np.take_along_axis(probabilities, targets[..., None], axis=-1)[..., 0])
    kept = ids != 0
    manual = (step_losses * kept * weights[:, None]).sum() / kept.sum()
    weighted = model.evaluate(ids, targets, sample_weight=weights, batch_size=5, verbose=0)
    np.testing.assert_allclose(weighted[0], manual, rtol=1e-5)
    # Targets at padded steps change nothing.
    changed = np.where(ids == 0, (targets + 1) % 3, targets)
    np.testing.assert_allclose(
        model.evaluate(ids, changed, batch_size=5, verbose=0), model.evaluate(ids, targets, batch_size=5, verbose=0)
    )


def test_fit_on_masked_sequences_matches_keras_and_learns():
    reference, model = _pair(_tagger)
    for m in (reference, model):
        m.compile(keras.optimizers.SGD(0.5) if m is reference else kfunc.optimizers.SGD(0.5),
                  "sparse_categorical_crossentropy")
    ids = _ids(batch=8, seed=7)
    targets = (ids % 3).astype("int32")
    reference.fit(ids, targets, batch_size=4, epochs=2, shuffle=False, verbose=0)
    history = model.fit(ids, targets, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for got, expected in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    longer = model.fit(ids, targets, batch_size=4, epochs=30, shuffle=False, verbose=0)
    assert longer.history["loss"][-1] < history.history["loss"][0]


def test_masked_model_saves_and_loads(tmp_path):
    _, model = _pair(_tagger)
    path = tmp_path / "tagger.kfunc"
    model.save(path)
    loaded = kfunc.models.load_model(path)
    assert loaded.layers[1].mask_zero
    _, masks = loaded.call_with_masks(_ids())
    np.testing.assert_array_equal(masks, _ids() != 0)
    np.testing.assert_allclose(loaded.predict(_ids(), verbose=0), model.predict(_ids(), verbose=0), atol=1e-7)


def test_a_model_without_masks_compiles_without_mask_operations():
    inputs = kfunc.Input((STEPS, 3))
    model = kfunc.Model(inputs, kfunc.layers.LSTM(2)(inputs))
    params, state = model.init(jax.random.key(0))
    text = str(jax.make_jaxpr(lambda p, x: model.apply(p, state, x)[0])(params, jnp.zeros((2, STEPS, 3))))
    assert "select_n" not in text


@pytest.mark.slow  # tests/test_readme.py runs this README block (and checks the same) by default
def test_readme_masking_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("## Masking", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace: dict = {}
    exec(compile(code, "README.md masking", "exec"), namespace)
    np.testing.assert_array_equal(namespace["masks"], namespace["ids"][:2] != 0)


def test_sequential_passes_masks_like_keras():
    def build(module, layers):
        return module.Sequential(
            [module.Input((STEPS,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True), layers.Dense(3),
             layers.SimpleRNN(2)]
        )

    reference, model = _pair(build)
    _assert_same(reference, model, _ids())


def test_attention_layers_get_their_masks_from_the_graph_like_keras():
    def build(module, layers):
        queries = module.Input((STEPS,), dtype="int32")
        values = module.Input((STEPS + 1,), dtype="int32")
        q = layers.Embedding(VOCAB, 4, mask_zero=True)(queries)
        v = layers.Embedding(VOCAB, 4, mask_zero=True)(values)
        self_attended = layers.MultiHeadAttention(num_heads=2, key_dim=3)(q, v)
        dot = layers.Attention()([q, v])
        additive = layers.AdditiveAttention()([q, v])
        pooled = layers.GlobalAveragePooling1D()(layers.Add()([dot, additive]))
        return module.Model([queries, values], [self_attended, layers.LSTM(2)(dot), pooled])

    reference, model = _pair(build)
    other = np.concatenate([_ids(seed=9)[::-1], np.ones((4, 1), "int32")], axis=1)
    other[1, 3:] = 0
    _assert_same(reference, model, [_ids(), other], atol=1e-5)


def test_batch_normalization_keeps_padded_steps_out_of_batch_statistics_like_keras():
    reference, layer = keras.layers.BatchNormalization(), kfunc.layers.BatchNormalization()
    x = np.random.default_rng(6).standard_normal((3, STEPS, 4)).astype("float32")
    keep = _ids(batch=3) != 0
    reference(x)
    layer(x)
    layer.set_weights(reference.get_weights())
    expected = reference(x, training=True, mask=keep)
    outputs, state = layer.apply(*layer.get_variables(), x, training=True, mask=keep)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["moving_mean"], reference.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(kfunc.errors.LayerInputError, match="mask must have one axis less"):
        layer(x, training=True, mask=keep[:, :, None, None])


@pytest.mark.parametrize("function", [lambda x: x * 2.0, lambda x: x[:, :4]], ids=["scale", "slice"])
def test_lambda_drops_the_mask_unless_given_one_like_keras(function):
    def build(module, layers):
        inputs, x = _embedded(module, layers)
        return module.Model(inputs, layers.LSTM(3)(layers.Lambda(function)(x)))

    reference, model = _pair(build)
    _assert_same(reference, model, _ids())


def test_lambda_function_receives_the_mask_when_it_names_it():
    def masked_sum(x, mask=None):
        return x.sum(axis=1) if mask is None else (x * mask[..., None].astype(x.dtype)).sum(axis=1)

    def build(module, layers):
        inputs = module.Input((STEPS,), dtype="int32")
        x = layers.Embedding(VOCAB, 2, mask_zero=True, embeddings_initializer="ones")(inputs)
        return module.Model(inputs, layers.Lambda(masked_sum, mask=lambda x, m: None)(x))

    reference, model = _pair(build)
    _assert_same(reference, model, _ids())
    np.testing.assert_allclose(model.predict(_ids(), verbose=0)[:, 0], (_ids() != 0).sum(axis=1))


def test_rnn_over_time_distributed_rnn_uses_a_step_while_any_word_is_real():
    """Sentences of words: the outer LSTM gets the (batch, sentences, words) mask, as in Keras."""
    ids = np.random.default_rng(0).integers(1, VOCAB, (3, 4, 5)).astype("int32")
    ids[0, :, 3:] = 0
    ids[1, 2:, :] = 0
    ids[2, 1, 1:] = 0

    def build(module, layers):
        inputs = module.Input((4, 5), dtype="int32")
        words = layers.Embedding(VOCAB, 4, mask_zero=True)(inputs)
        return module.Model(inputs, layers.LSTM(2)(layers.TimeDistributed(layers.LSTM(3))(words)))

    reference, model = _pair(build)
    _assert_same(reference, model, ids)


def test_a_loss_that_reduces_the_timesteps_of_a_masked_output_is_refused():
    inputs, x = _embedded(kfunc, kfunc.layers)
    model = kfunc.Model(inputs, kfunc.layers.LSTM(2, return_sequences=True, name="tagger")(x))
    model.compile("sgd", lambda y, p: jnp.mean((y - p) ** 2, axis=(1, 2)))
    with pytest.raises(kfunc.train.losses.TrainingConfigError, match=r"Output 'tagger' carries a mask .*keep the timestep axes"):
        model.fit(_ids(), np.zeros((4, STEPS, 2), "float32"), verbose=0)


def test_labels_for_an_output_of_unknown_length_are_checked_when_traced():
    tokens = kfunc.Input((None,), dtype="int32")
    x = kfunc.layers.Embedding(VOCAB, 4, mask_zero=True)(tokens)
    model = kfunc.Model(tokens, kfunc.layers.Dense(3, activation="softmax", name="tags")(x))
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(kfunc.data.arrays.DataError, match=r"Labels of output 'tags' have shape \(None, 8\).*\(None, 6\)"):
        model.fit(_ids(), np.zeros((4, 8), "int32"), verbose=0)


@pytest.mark.parametrize("masked", [False, True])
def test_batch_norm_statistics_leave_out_the_padding_of_a_partial_last_batch(masked):
    ids = _ids(batch=6, seed=11)
    targets = (ids[:, :1] % 2).astype("float32")

    def build(module, layers):
        inputs = module.Input((STEPS,), dtype="int32")
        x = layers.BatchNormalization()(layers.Embedding(VOCAB, 4, mask_zero=masked)(inputs))
        return module.Model(inputs, layers.Dense(1, activation="sigmoid")(layers.LSTM(2)(x)))

    reference, model = _pair(build)
    reference.compile(keras.optimizers.SGD(0.1), "binary_crossentropy")
    model.compile(kfunc.optimizers.SGD(0.1), "binary_crossentropy")
    expected = reference.fit(ids, targets, batch_size=4, shuffle=False, verbose=0).history["loss"]
    got = model.fit(ids, targets, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
