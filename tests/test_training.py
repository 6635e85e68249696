"""compile / fit / evaluate: the guide's weighted multi-output training, equality with a
hand-written optax loop, compile counts, failed calls, NaN guard, reproducibility."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kfunc
from kfunc.layers import Dense, Dropout, Input
from kfunc.models import Model
from kfunc.testing import count_compilations
from kfunc.train.callbacks import Callback
from test_guide import headline_model as guide_headline_model

rng = np.random.default_rng(7)


def headline_model(words=12, vocabulary=40):
    return guide_headline_model(words, vocabulary, embedding=8, units=6, hidden=(16,))


def headline_data(n=96, words=12, vocabulary=40):
    headlines = rng.integers(1, vocabulary, (n, words)).astype(np.int32)
    additional = rng.random((n, 5), dtype=np.float32)
    labels = (headlines[:, 0] > vocabulary // 2).astype(np.float32)
    return headlines, additional, labels


def test_guide_multi_output_with_lists_and_dicts_gives_weighted_sum():
    headlines, additional, labels = headline_data()
    model = headline_model()
    start = model.get_weights()
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", loss_weights=[1.0, 0.2])
    history = model.fit([headlines, additional], [labels, labels], epochs=2, batch_size=32, verbose=0, shuffle=False)
    assert set(history.history) == {"loss", "main_output_loss", "aux_output_loss"}
    result = model.evaluate([headlines, additional], [labels, labels], verbose=0, return_dict=True)
    assert list(result) == ["loss", "main_output_loss", "aux_output_loss"]
    assert result["loss"] == pytest.approx(result["main_output_loss"] + 0.2 * result["aux_output_loss"], rel=1e-5)
    by_list = model.get_weights()

    model.set_weights(start)
    model.compile(
        optimizer="rmsprop",
        loss={"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
        loss_weights={"main_output": 1.0, "aux_output": 0.2},
    )
    model.fit(
        {"main_input": headlines, "aux_input": additional},
        {"main_output": labels, "aux_output": labels},
        epochs=2, batch_size=32, verbose=0, shuffle=False,
    )
    for a, b in zip(by_list, model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    by_dict = model.evaluate({"main_input": headlines, "aux_input": additional},
                             {"main_output": labels, "aux_output": labels}, verbose=0, return_dict=True)
    for key in result:
        assert by_dict[key] == pytest.approx(result[key], rel=1e-6)


def test_metrics_names_for_multi_output_and_validation():
    headlines, additional, labels = headline_data(64)
    model = headline_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit([headlines, additional], [labels, labels], epochs=1, validation_split=0.25, verbose=0)
    assert list(history.history) == [
        "loss", "main_output_loss", "aux_output_loss", "main_output_accuracy", "aux_output_accuracy",
        "val_loss", "val_main_output_loss", "val_aux_output_loss", "val_main_output_accuracy", "val_aux_output_accuracy",
    ]


def small_regressor(dropout=0.0):
    inputs = Input(shape=(6,))
    x = Dense(12, activation="tanh")(inputs)
    if dropout:
        x = Dropout(dropout)(x)
    return Model(inputs, Dense(2)(x))


def test_fit_equals_a_hand_written_optax_loop():
    x = rng.random((80, 6), dtype=np.float32)
    y = rng.random((80, 2), dtype=np.float32)
    model = small_regressor()
    params, state = model.get_variables()
    model.compile(optimizer=optax.adam(1e-2), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # 10 steps

    transformation = optax.adam(1e-2)
    opt_state = transformation.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss(p):
            out, _ = model.apply(p, state, xb)
            return jnp.mean(jnp.mean((out - yb) ** 2, axis=-1))

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = transformation.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for i in range(10):
        params, opt_state = step(params, opt_state, x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8])
    trained, _ = model.get_variables()
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6), trained, params)


def test_string_optimizer_uses_keras_defaults():
    x = rng.random((32, 6), dtype=np.float32)
    y = rng.random((32, 2), dtype=np.float32)
    model = small_regressor()
    params, state = model.get_variables()
    model.compile(optimizer="rmsprop", loss="mse")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    transformation = optax.rmsprop(1e-3, decay=0.9, eps=1e-7, eps_in_sqrt=True)
    grads = jax.grad(lambda p: jnp.mean((model.apply(p, state, x)[0] - y) ** 2))(params)
    updates, _ = transformation.update(grads, transformation.init(params), params)
    expected = optax.apply_updates(params, updates)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), model.get_variables().params, expected
    )


def test_fit_compiles_the_train_step_once_and_a_second_fit_nothing():
    x = rng.random((100, 6), dtype=np.float32)  # 100 = 3 full batches + a partial one
    y = rng.random((100, 2), dtype=np.float32)
    model = small_regressor(dropout=0.3)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    with count_compilations() as first:
        model.fit(x, y, batch_size=32, epochs=3, validation_data=(x[:40], y[:40]), verbose=0)
    # One compile for the whole batches, one for the short last batch (100 = 3 * 32 + 4; the
    # validation data, 40 = 32 + 8), whatever the number of epochs.
    assert first.of("run_train_steps") == 1 and first.of("run_train_batch") == 1, first.names
    assert first.of("run_eval_steps") == 1 and first.of("run_eval_batch") == 1, first.names
    with count_compilations() as second:
        model.fit(x, y, batch_size=32, epochs=2, validation_data=(x[:40], y[:40]), verbose=0)
        model.evaluate(x[:40], y[:40], verbose=0)
    assert second.count == 0, second.names


class _FailAt(Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("callback failure")


def test_a_failed_fit_changes_nothing_and_the_next_fit_works():
    x = rng.random((64, 6), dtype=np.float32)
    y = rng.random((64, 2), dtype=np.float32)
    model = small_regressor()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    weights = model.get_weights()
    opt_state = jax.tree_util.tree_map(np.asarray, model._trainer.opt_state)
    step = int(model._trainer.step)
    with pytest.raises(RuntimeError, match="callback failure"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[_FailAt(1)])
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    jax.tree_util.tree_map(np.testing.assert_array_equal, opt_state, model._trainer.opt_state)
    assert int(model._trainer.step) == step
    with pytest.raises(kfunc.data.arrays.DataError):
        model.fit(x, y[:10], verbose=0)
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    history = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and int(model._trainer.step) == step + 2


def test_non_finite_loss_stops_before_the_bad_update():
    x = rng.random((64, 6), dtype=np.float32)
    y = rng.random((64, 2), dtype=np.float32)
    x[40] = np.nan  # in the third batch of 16
    model = small_regressor()
    model.compile(optimizer="sgd", loss="mse")
    reference = small_regressor()
    reference.set_weights(model.get_weights())
    reference.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                        callbacks=[kfunc.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert int(model._trainer.step) == 2
    reference.fit(x[:32], y[:32], batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(reference.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # bitwise on CPU; a GPU may round the last bit


def test_set_random_seed_repeats_init_shuffling_and_dropout_bitwise():
    def run():
        kfunc.utils.set_random_seed(123)
        model = small_regressor(dropout=0.5)
        model.compile(optimizer="adam", loss="mse")
        data = np.random.default_rng(0)
        model.fit(data.random((50, 6), dtype=np.float32), data.random((50, 2), dtype=np.float32),
                  batch_size=8, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_steps_per_execution_does_not_change_the_result():
    x = rng.random((70, 6), dtype=np.float32)
    y = rng.random((70, 2), dtype=np.float32)
    results = []
    for steps in (1, 3, "auto"):
        kfunc.utils.set_random_seed(5)
        model = small_regressor(dropout=0.2)
        model.compile(optimizer="adam", loss="mse", steps_per_execution=steps)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        results.append(model.get_weights())
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_partial_last_batch_counts_each_sample_once():
    x = rng.random((10, 6), dtype=np.float32)
    y = rng.random((10, 2), dtype=np.float32)
    model = small_regressor()
    model.compile(optimizer="sgd", loss="mse")
    loss = model.evaluate(x, y, batch_size=4, verbose=0)
    predictions = model.predict(x)
    assert loss == pytest.approx(float(np.mean((predictions - y) ** 2)), rel=1e-5)


def test_generator_input_with_steps_per_epoch():
    model = small_regressor()
    model.compile(optimizer="adam", loss="mse")

    def batches():
        while True:
            yield rng.random((8, 6), dtype=np.float32), rng.random((8, 2), dtype=np.float32)

    history = model.fit(batches(), steps_per_epoch=5, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and int(model._trainer.step) == 10


def test_sample_and_class_weights():
    x = rng.random((40, 6), dtype=np.float32)
    y = rng.random((40, 2), dtype=np.float32)
    model = small_regressor()
    model.compile(optimizer="sgd", loss="mse")
    weights = np.zeros(40, np.float32)
    weights[:20] = 2.0
    weighted = model.evaluate(x, y, sample_weight=weights, verbose=0, batch_size=40)
    per_sample = np.mean((model.predict(x) - y) ** 2, axis=-1)
    assert weighted == pytest.approx(float(np.sum(per_sample * weights) / 40), rel=1e-5)

    inputs = Input(shape=(6,))
    classifier = Model(inputs, Dense(3, activation="softmax")(inputs))
    classifier.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    labels = rng.integers(0, 3, 40)
    history = classifier.fit(x, labels, class_weight={0: 1.0, 1: 0.0, 2: 0.0}, epochs=1, verbose=0, batch_size=40)
    probabilities = classifier.predict(x)
    assert np.isfinite(history.history["loss"][0]) and probabilities.shape == (40, 3)


def test_verbose_two_prints_one_line_per_epoch_and_no_carriage_returns(capsys):
    x = rng.random((20, 6), dtype=np.float32)
    y = rng.random((20, 2), dtype=np.float32)
    model = small_regressor()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert " - loss: " in lines[1] and " - mae: " in lines[1]
    model.fit(x, y, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b[" not in out and out.startswith("1/1 " + "━" * 20 + " ")  # Keras 3's bar


def test_learning_rate_as_an_optax_schedule():
    x = rng.random((32, 6), dtype=np.float32)
    y = rng.random((32, 2), dtype=np.float32)
    schedule = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    model = small_regressor()
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=schedule), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5**3)
    with pytest.raises(kfunc.losses.TrainingConfigError, match="follows a schedule"):
        model.optimizer.learning_rate = 0.3


def test_frozen_layer_does_not_change_during_fit():
    inputs = Input(shape=(6,))
    frozen = Dense(4, name="frozen")
    model = Model(inputs, Dense(2)(frozen(inputs)))
    frozen.trainable = False
    before = frozen.get_weights()
    model.compile(optimizer="adam", loss="mse")
    model.fit(rng.random((16, 6), dtype=np.float32), rng.random((16, 2), dtype=np.float32), epochs=2, verbose=0)
    for a, b in zip(before, frozen.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
