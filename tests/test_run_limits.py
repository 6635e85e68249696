"""Keras 3's debugging caps (kfunc/run_limits.py, ``kfunc.config.set_max_epochs`` and
``set_max_steps_per_epoch``): fit, evaluate and predict run the same hooks as Keras 3 under them,
with Keras's warnings; ``predict(steps=)``."""

import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kfunc  # noqa: E402
from kfunc.errors import ArgumentError, DataError  # noqa: E402
from test_callbacks_keras3 import recorder_class  # noqa: E402

rng = np.random.default_rng(5)
X = rng.random((40, 3), dtype=np.float32)
Y = X.sum(axis=1, keepdims=True)


@pytest.fixture
def capped():
    """Both libraries capped at 2 epochs and 3 steps per epoch for the test, then uncapped."""
    for lib in (kfunc, keras):
        lib.config.set_max_epochs(2)
        lib.config.set_max_steps_per_epoch(3)
    yield
    for lib in (kfunc, keras):
        lib.config.set_max_epochs(None)
        lib.config.set_max_steps_per_epoch(None)


def _run(lib, base):
    lib.utils.set_random_seed(0)
    inputs = lib.Input((3,))
    model = lib.Model(inputs, lib.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    recorder = base()
    with pytest.warns(UserWarning, match="Limiting epochs to 2"):
        history = model.fit(X, Y, batch_size=4, epochs=5, verbose=0, validation_data=(X, Y), callbacks=[recorder])
    with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 3"):
        model.evaluate(X, Y, batch_size=4, verbose=0, callbacks=[recorder])
    with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 3"):
        predicted = model.predict(X, batch_size=4, verbose=0, callbacks=[recorder])
    return history.history, recorder.calls, predicted.shape


def test_caps_run_the_hooks_keras_runs(capped):
    assert kfunc.config.max_epochs() == 2 and kfunc.config.max_steps_per_epoch() == 3
    ours = _run(kfunc, recorder_class(kfunc.callbacks.Callback))
    theirs = _run(keras, recorder_class(keras.callbacks.Callback))
    assert len(ours[0]["loss"]) == len(theirs[0]["loss"]) == 2
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2] == (12, 1)  # 3 batches of 4


def test_predict_steps_and_keras_defaults():
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(2)(inputs))
    full = model.predict(X, verbose=0)
    np.testing.assert_allclose(model.predict(X, batch_size=8, steps=2, verbose=0), full[:16], rtol=1e-6)
    batches = ((X[i:i + 10],) for i in range(0, 40, 10))
    np.testing.assert_allclose(model.predict(batches, steps=3, verbose=0), full[:30], rtol=1e-6)
    with pytest.raises(DataError, match="predict: steps must be a positive integer or None, received 0"):
        model.predict(X, steps=0)


def test_bad_caps_are_refused():
    with pytest.raises(ArgumentError, match="set_max_epochs expects a positive integer or None"):
        kfunc.config.set_max_epochs(0)
    with pytest.raises(ArgumentError, match="set_max_steps_per_epoch expects a positive integer or None"):
        kfunc.config.set_max_steps_per_epoch("3")


def test_environment_variables_set_the_caps():
    code = "import kfunc; print(kfunc.config.max_epochs(), kfunc.config.max_steps_per_epoch())"
    env = dict(os.environ, KERAS_MAX_EPOCHS="4", KERAS_MAX_STEPS_PER_EPOCH="7")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["4", "7"]
