"""The NaN guard (``TerminateOnNaN`` or ``fit(terminate_on_nan=True)``) refuses a step whose loss,
gradients or new weights are not finite, or that overflows the optimizer state: training stops
and the weights are those after the last good step, bitwise on CPU."""

import jax
import numpy as np
import pytest

import kfunc
from kfunc.callbacks import LearningRateScheduler, TerminateOnNaN
from kfunc.layers import Dense, Input
from kfunc.models import Model

rng = np.random.default_rng(5)
X = rng.random((32, 4), dtype=np.float32) + 0.5
Y = np.full((32, 2), 100.0, np.float32)  # far from the outputs: gradients well above 1


def regressor():
    inputs = Input(shape=(4,))
    return Model(inputs, Dense(2)(Dense(5, activation="tanh")(inputs)))


def exact(a, b):
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(a, b)
    else:  # an accelerator may round the last bit differently between two compiled programs
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_an_overflowing_update_with_a_finite_loss_is_refused():
    model = regressor()
    start = model.get_weights()
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=3e38), loss="mse")
    loss = model.evaluate(X, Y, batch_size=8, verbose=0)
    assert np.isfinite(loss)
    history = model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and int(model._trainer.step) == 0
    for a, b in zip(start, model.get_weights(), strict=True):
        exact(a, b)
    # Without the guard the same step leaves weights non-finite.
    unguarded = regressor()
    unguarded.set_weights(start)
    unguarded.compile(optimizer=kfunc.optimizers.SGD(learning_rate=3e38), loss="mse")
    unguarded.fit(X[:8], Y[:8], batch_size=8, epochs=1, verbose=0)
    assert not all(np.all(np.isfinite(w)) for w in unguarded.get_weights())


def test_the_weights_after_the_stop_are_those_of_the_last_good_step():
    model = regressor()
    start = model.get_weights()
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=1e-3), loss="mse")
    # Epoch 0 trains at 1e-3; epoch 1's first step overflows at 3e38.
    schedule = LearningRateScheduler(lambda epoch, rate: 1e-3 if epoch == 0 else 3e38)
    history = model.fit(X, Y, batch_size=8, epochs=3, shuffle=False, verbose=0, terminate_on_nan=True,
                        callbacks=[schedule])
    assert len(history.history["loss"]) == 2 and int(model._trainer.step) == 4
    reference = regressor()
    reference.set_weights(start)
    reference.compile(optimizer=kfunc.optimizers.SGD(learning_rate=1e-3), loss="mse")
    reference.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(reference.get_weights(), model.get_weights(), strict=True):
        exact(a, b)


def test_a_step_that_overflows_the_optimizer_state_is_refused():
    """Adam's second moment of a 1e20 gradient overflows to inf; the update itself is then 0 and
    the weights stay finite, but the weight could never move again."""
    inputs = Input(shape=(1,))
    model = Model(inputs, Dense(1, use_bias=False)(inputs))
    model.compile(optimizer="adam", loss="mse")
    start = model.get_weights()
    x = np.full((4, 1), 1e10, np.float32)
    y = np.zeros((4, 1), np.float32)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, terminate_on_nan=True)
    assert int(model._trainer.step) == 0
    exact(start[0], model.get_weights()[0])
    leaves = jax.tree_util.tree_leaves(model._trainer.opt_state)
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in leaves if np.asarray(leaf).dtype.kind == "f")


@pytest.mark.parametrize("verbose", [0, 2])
def test_a_non_finite_loss_still_stops_and_says_so(verbose, capsys):
    model = regressor()
    model.compile(optimizer="sgd", loss="mse")
    x = X.copy()
    x[9] = np.nan  # second batch
    model.fit(x, Y, batch_size=8, epochs=2, shuffle=False, verbose=verbose, terminate_on_nan=True)
    assert int(model._trainer.step) == 1
    if verbose:
        assert "training stopped before applying that step" in capsys.readouterr().out
