"""Callbacks are called as Keras 3 calls them: the same hooks in the same order with the same
log keys for fit (with validation), evaluate and predict; epoch-only and test-only callbacks keep
fit's fused dispatches."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kfunc  # noqa: E402
from kfunc.testing import count_compilations  # noqa: E402

rng = np.random.default_rng(3)
X = rng.random((48, 4), dtype=np.float32)
Y = (X @ rng.random((4, 1), dtype=np.float32)).astype(np.float32)
XV, YV = X[:20], Y[:20]

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


def recorder_class(base):
    """A callback of ``base`` (kfunc's or Keras's Callback) that records every hook it gets as
    ``(hook, epoch or batch, sorted log keys)``, and checks that logs is always a dict."""

    def make(hook):
        def record(self, *args, **kwargs):
            *index, logs = args + tuple(kwargs.values())
            assert isinstance(logs, dict), (hook, logs)
            self.calls.append((hook, *index, tuple(sorted(logs))))
        return record

    namespace = {hook: make(hook) for hook in HOOKS}
    namespace["__init__"] = lambda self: (base.__init__(self), setattr(self, "calls", []))[0]
    return type("Recorder", (base,), namespace)


def run_all(lib, recorder):
    model = lib.Sequential([lib.layers.Input(shape=(4,)), lib.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(X, Y, batch_size=16, epochs=2, validation_data=(XV, YV), verbose=0, callbacks=[recorder],
              shuffle=False)
    model.evaluate(X, Y, batch_size=16, verbose=0, callbacks=[recorder])
    model.predict(X, batch_size=16, verbose=0, callbacks=[recorder])
    return model


@pytest.fixture(scope="module")
def both_runs():
    ours = recorder_class(kfunc.callbacks.Callback)()
    theirs = recorder_class(keras.callbacks.Callback)()
    kfunc.utils.clear_session()
    run_all(kfunc, ours)
    run_all(keras, theirs)
    return ours, theirs


def test_hooks_and_log_keys_match_keras3(both_runs):
    ours, theirs = both_runs
    assert ours.calls == theirs.calls
    assert ("on_test_batch_end", 1, ("loss", "mae")) in ours.calls  # validation fires the test hooks
    assert ours.calls[-1] == ("on_predict_end", ())


def test_params_and_model_as_keras():
    seen = {}

    class Spy(kfunc.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.update(params=dict(self.params), model=self.model)

    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[Spy()])
    assert seen["params"] == {"verbose": 0, "epochs": 3, "steps": 3}
    assert seen["model"] is model


class EpochOnly(kfunc.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = 0

    def on_epoch_end(self, epoch, logs=None):
        self.ends += 1


class ValidationBatchesOnly(kfunc.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_test_batch_end(self, batch, logs=None):
        self.batches.append(batch)


@pytest.mark.parametrize("callback_class", [EpochOnly, ValidationBatchesOnly])
def test_callbacks_without_train_batch_hooks_keep_fused_training(callback_class):
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = callback_class()
    with count_compilations() as compiles:
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0, validation_data=(XV, YV), callbacks=[callback])
    assert compiles.of("run_train_steps") == 1 and compiles.of("run_one_train_step") == 0
    if callback_class is ValidationBatchesOnly:
        assert callback.batches == [0, 1, 2] * 2  # 20 validation rows in batches of 8
    else:
        assert callback.ends == 2


def test_stop_training_from_a_batch_hook_ends_the_epoch():
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")

    def stop(batch, logs):
        if batch == 1:
            model.stop_training = True

    history = model.fit(X, Y, batch_size=8, epochs=3, verbose=0,
                        callbacks=[kfunc.callbacks.LambdaCallback(on_train_batch_end=stop)])
    assert history.epoch == [0] and model.optimizer.iterations == 2


def test_batch_hooks_see_the_current_weights():
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    kernels = []

    class Kernels(kfunc.callbacks.Callback):  # as in Keras, self.model syncs the weights mid-epoch
        def on_train_batch_end(self, batch, logs=None):
            kernels.append(self.model.get_weights()[0])

    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[Kernels()])
    assert len(kernels) == 3
    assert not np.array_equal(kernels[0], kernels[1])
    np.testing.assert_array_equal(kernels[-1], model.get_weights()[0])


def test_callbacks_must_be_callback_instances():
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(kfunc.errors.CallbackError, match="callbacks must be kfunc.callbacks.Callback instances, "
                                                         "received function"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[lambda: None])
