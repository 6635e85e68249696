"""A failed fit / evaluate changes nothing: weights, optimizer state (learning rate included),
step, dropout key, the optimizer's configuration and what callbacks read afterwards."""

import jax
import numpy as np
import pytest

import kfunc
from kfunc.data.arrays import DataError
from kfunc.layers import Dense, Dropout, Input
from kfunc.models import Model
from kfunc.train.callbacks import Callback, LearningRateScheduler

rng = np.random.default_rng(3)
X = rng.random((24, 5), dtype=np.float32)
Y = rng.random((24, 2), dtype=np.float32)


def regressor():
    inputs = Input(shape=(5,))
    hidden = Dense(8, activation="tanh", name="hidden")(inputs)
    return Model(inputs, Dense(2, name="out")(Dropout(0.2)(hidden)))


class RaiseAt(Callback):
    """Raises ``error`` at the end of epoch ``epoch`` (after the learning rate was changed)."""

    def __init__(self, epoch, error):
        super().__init__()
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True
            raise self.error


def trainer_view(model):
    """Everything a failed call must leave as it was, as host values."""
    trainer = model._trainer
    return {
        "weights": [np.asarray(w) for w in model.get_weights()],
        "opt_state": jax.tree_util.tree_map(np.asarray, trainer.opt_state),
        "step": int(trainer.step),
        "key": np.asarray(trainer.dropout_key),
        "learning_rate": model.optimizer.learning_rate,
        "iterations": model.optimizer.iterations,
        "stop_training": model.stop_training,
        "metrics_names": model.metrics_names,
    }


def assert_same_view(before, after):
    assert before.keys() == after.keys()
    for key in before:
        if key in ("weights", "opt_state"):
            jax.tree_util.tree_map(np.testing.assert_array_equal, before[key], after[key])
        elif key == "key":
            np.testing.assert_array_equal(before[key], after[key])
        else:
            assert before[key] == after[key], key


@pytest.mark.parametrize("error", [RuntimeError("callback failure"), KeyboardInterrupt()])
def test_a_failed_fit_restores_the_learning_rate_a_scheduler_set(error):
    model = regressor()
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.05), loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    before = trainer_view(model)
    assert before["learning_rate"] == pytest.approx(0.05)
    scheduler = LearningRateScheduler(lambda epoch, rate: rate * 0.5)
    with pytest.raises(type(error)):
        model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[scheduler, RaiseAt(1, error)])
    assert_same_view(before, trainer_view(model))
    # The next fit trains from the restored state: equal to a model that never saw the failed fit.
    reference = regressor()
    reference.set_weights(before["weights"])
    reference.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.05), loss="mse")
    reference._trainer.step = model._trainer.step
    reference._trainer.dropout_key = model._trainer.dropout_key
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    reference.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(reference.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_setting_the_learning_rate_never_edits_the_optimizer_state_in_place():
    model = regressor()
    model.compile(optimizer=kfunc.optimizers.Adam(learning_rate=0.01), loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    held = model._trainer.opt_state
    held_rate = float(model._trainer.hyperparams()["learning_rate"])
    model.optimizer.learning_rate = 0.5
    assert model._trainer.opt_state is not held
    assert model.optimizer.learning_rate == pytest.approx(0.5)
    found = []
    jax.tree_util.tree_map(lambda node: found.append(float(node.hyperparams["learning_rate"])), held,
                           is_leaf=lambda node: hasattr(node, "hyperparams"))
    assert found == [pytest.approx(held_rate)]


def test_data_that_goes_bad_mid_fit_restores_everything():
    model = regressor()
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    before = trainer_view(model)

    def batches():
        for _ in range(3):
            yield X[:8], Y[:8]
        yield X[:8], np.full((8, 3), 1.0, np.float32)  # labels of the wrong shape

    with pytest.raises(DataError, match=r"Labels of output 'out'"):
        model.fit(batches(), epochs=1, steps_per_epoch=4, verbose=0, callbacks=[LearningRateScheduler(lambda e, r: 0.3)])
    assert_same_view(before, trainer_view(model))


def test_a_failed_fit_after_freezing_a_layer_leaves_a_trainer_that_still_trains():
    model = regressor()
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    before = trainer_view(model)
    model.get_layer("hidden").trainable = False
    with pytest.raises(RuntimeError, match="callback failure"):
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0, callbacks=[RaiseAt(0, RuntimeError("callback failure"))])
    model.stop_training = False
    assert_same_view(before | {"stop_training": False}, trainer_view(model))
    frozen = model.get_layer("hidden").get_weights()
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(frozen, model.get_layer("hidden").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_evaluate_interrupted_mid_way_leaves_the_trainer_untouched():
    model = regressor()
    model.compile(optimizer="adam", loss="mse")
    weights = model.get_weights()

    def batches():
        yield X[:8], Y[:8]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.evaluate(batches(), verbose=0)
    assert model._trainer.opt_state is None and model._trainer._compiled == {}
    assert model.metrics_names == []
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(model.evaluate(X, Y, verbose=0))
