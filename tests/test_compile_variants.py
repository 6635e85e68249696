"""compile() without a loss, steps_per_execution, jit_compile / run_eagerly, train_on_batch,
test_on_batch, predict_on_batch and model.stop_training, compared with Keras 3."""

import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc.testing import count_compilations
from kfunc.train.losses import TrainingConfigError

keras = pytest.importorskip("keras")

rng = np.random.default_rng(11)
X = rng.random((37, 3), dtype=np.float32)
Y = rng.random((37, 2), dtype=np.float32)


def regressor(lib):
    i = lib.layers.Input(shape=(3,))
    return lib.Model(i, lib.layers.Dense(2, name="out")(lib.layers.Dense(4, activation="tanh", name="hidden")(i)))


def same_pair(**compile_args):
    """A kfunc and a Keras model with the same weights, compiled alike (SGD, mse)."""
    pair = {}
    for lib in (kfunc, keras):
        model = regressor(lib)
        model.compile(lib.optimizers.SGD(0.1), "mse", **compile_args)
        pair[lib] = model
    pair[kfunc].set_weights(pair[keras].get_weights())
    return pair


def test_train_on_batch_and_test_on_batch_as_keras():
    pair = same_pair(metrics=["mae"])
    results = {lib: [model.train_on_batch(X[:8], Y[:8]), model.train_on_batch(X[8:16], Y[8:16], return_dict=True),
                     model.test_on_batch(X[:8], Y[:8])] for lib, model in pair.items()}
    ours, theirs = results[kfunc], results[keras]
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    assert list(ours[1]) == list(theirs[1]) == ["loss", "mae"]
    np.testing.assert_allclose(list(ours[1].values()), list(theirs[1].values()), rtol=1e-5)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5)
    for a, b in zip(pair[kfunc].get_weights(), pair[keras].get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pair[kfunc].predict_on_batch(X[:5]), pair[keras].predict_on_batch(X[:5]), rtol=1e-5)
    with count_compilations() as compiles:  # same batch size: nothing new to compile
        for start in (16, 24):
            pair[kfunc].train_on_batch(X[start:start + 8], Y[start:start + 8])
            pair[kfunc].test_on_batch(X[start:start + 8], Y[start:start + 8])
            pair[kfunc].predict_on_batch(X[start:start + 5])
    assert compiles.count == 0, compiles.names


class Recorder(keras.callbacks.Callback):
    """Records batch hooks; sets stop_training at the first on_train_batch_end at or after ``stop_at``.
    A Keras callback: kfunc calls the hooks of any object that defines them."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.events, self.stop_at = [], stop_at

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("end", batch))
        if self.stop_at is not None and batch >= self.stop_at:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch))


class KfuncRecorder(kfunc.callbacks.Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.events, self.stop_at = [], stop_at

    on_train_batch_begin = Recorder.on_train_batch_begin
    on_train_batch_end = Recorder.on_train_batch_end
    on_epoch_end = Recorder.on_epoch_end


def test_steps_per_execution_batch_hooks_and_stop_training_as_keras():
    pair = same_pair(steps_per_execution=4)
    recorders = {kfunc: (KfuncRecorder(), KfuncRecorder(stop_at=5)), keras: (Recorder(), Recorder(stop_at=5))}
    histories = {}
    for lib, model in pair.items():
        full, stopping = recorders[lib]
        model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[full])
        histories[lib] = model.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[stopping]).history
    # 37 samples in batches of 4: 10 steps, run as executions of 4, 4 and 2 steps.
    assert recorders[kfunc][0].events == recorders[keras][0].events == [
        ("begin", 0), ("end", 3), ("begin", 4), ("end", 7), ("begin", 8), ("end", 11), ("epoch_end", 0)]
    # Stopped after the execution ending at step 7, then the epoch ends and fit returns.
    assert recorders[kfunc][1].events == recorders[keras][1].events
    assert len(histories[kfunc]["loss"]) == len(histories[keras]["loss"]) == 1
    np.testing.assert_allclose(histories[kfunc]["loss"], histories[keras]["loss"], rtol=1e-5)
    for a, b in zip(pair[kfunc].get_weights(), pair[keras].get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class ActivityPenalty(layers.Layer):
    """Adds ``mean(x ** 2)`` of its input as a loss: the model's only training signal."""

    def call(self, x):
        self.add_loss(kfunc.ops.mean(x**2))
        return x


def test_compile_without_a_loss_trains_on_added_losses():
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, ActivityPenalty()(layers.Dense(2, name="proj")(inputs)))
    model.compile(kfunc.optimizers.SGD(0.1))
    kernel, bias = model.get_weights()
    history = model.fit(X, batch_size=37, epochs=2, shuffle=False, verbose=0).history
    # One full-batch SGD step on mean((x W + b) ** 2), computed by hand.
    projected = X @ kernel + bias
    assert history["loss"][0] == pytest.approx(np.mean(projected**2), rel=1e-5)
    grad_kernel = X.T @ (2 * projected) / projected.size
    grad_bias = np.sum(2 * projected, axis=0) / projected.size
    after_one = (kernel - 0.1 * grad_kernel, bias - 0.1 * grad_bias)
    projected_after = X @ after_one[0] + after_one[1]
    assert history["loss"][1] == pytest.approx(np.mean(projected_after**2), rel=1e-4)


def test_compile_only_to_evaluate_metrics_and_predict():
    model = regressor(kfunc)
    model.compile(metrics=["mae"])
    logs = model.evaluate(X, Y, verbose=0, return_dict=True)
    assert logs["loss"] == 0.0 and logs["mae"] == pytest.approx(np.mean(np.abs(model.predict(X) - Y)), rel=1e-5)
    with pytest.raises(TrainingConfigError, match=r"fit: model '.*' has nothing to train on: compile\(\) was given no "
                                                  r"loss and no layer adds one .*pass a loss to compile"):
        model.fit(X, Y, verbose=0)


class Shout(layers.Layer):
    """Prints at every call on arrays: shows whether the step runs in Python."""

    calls = 0

    def call(self, x):
        Shout.calls += 1
        return x


def eager_and_jitted_pair():
    models = []
    for compile_args in ({}, {"run_eagerly": True}):
        inputs = kfunc.Input((3,))
        model = kfunc.Model(inputs, layers.Dense(2)(Shout()(inputs)))
        model.compile(kfunc.optimizers.SGD(0.1), "mse", **compile_args)
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    return models


def test_run_eagerly_runs_the_layers_python_at_every_call():
    jitted, eager = eager_and_jitted_pair()
    Shout.calls = 0
    results = [eager.test_on_batch(X[:8], Y[:8]), eager.test_on_batch(X[8:16], Y[8:16])]
    assert Shout.calls == 2  # a compiled step would have run `call` once, while tracing
    np.testing.assert_allclose(results, [jitted.test_on_batch(X[:8], Y[:8]), jitted.test_on_batch(X[8:16], Y[8:16])],
                               rtol=1e-5)


@pytest.mark.slow  # the first unjitted training step compiles every primitive on its own (seconds)
def test_run_eagerly_trains_with_the_same_numbers():
    models = eager_and_jitted_pair()
    Shout.calls = 0
    eager = models[1].fit(X[:20], Y[:20], batch_size=8, epochs=1, shuffle=False, verbose=0).history
    assert Shout.calls == 3  # 20 samples in batches of 8: 3 steps, each ran `call` in Python
    jitted = models[0].fit(X[:20], Y[:20], batch_size=8, epochs=1, shuffle=False, verbose=0).history
    np.testing.assert_allclose(eager["loss"], jitted["loss"], rtol=1e-5)
    np.testing.assert_allclose(models[1].predict(X), models[0].predict(X), rtol=1e-5)


def test_jit_compile_values():
    model = regressor(kfunc)
    for value, compiled in (("auto", True), (True, True), (False, False)):
        model.compile("sgd", "mse", jit_compile=value)
        assert model._trainer.config.jit is compiled
    with pytest.raises(TrainingConfigError, match=r"jit_compile must be 'auto', True or False and run_eagerly a bool, "
                                                  r"received jit_compile='xla'"):
        model.compile("sgd", "mse", jit_compile="xla")
