"""The last, shorter batch runs at its own size: no layer (built-in or custom) ever sees padding
rows, in fit, evaluate and predict, from arrays or from an iterable; it costs one more compile,
once."""

import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import distribution as dist
from kfunc.layers import Dense, Input, Layer
from kfunc.models import Model
from kfunc.testing import count_compilations

rng = np.random.default_rng(21)
X = rng.standard_normal((6, 3)).astype(np.float32)
Y = rng.standard_normal((6, 2)).astype(np.float32)
KERNEL = rng.standard_normal((3, 2)).astype(np.float32)
BIAS = np.array([0.5, -0.25], np.float32)


class BatchCentering(Layer):
    """In training: ``inputs - batch mean`` and ``add_loss(sum(batch mean ** 2))``; the identity
    otherwise. Every number depends on which rows are in the batch."""

    def call(self, inputs, training=False):
        if not training:
            return inputs
        mean = jnp.mean(inputs, axis=0)
        self.add_loss(jnp.sum(mean**2))
        return inputs - mean


class AlwaysCentering(Layer):
    """``inputs - batch mean`` in inference too (a layer that uses its batch at predict time)."""

    def call(self, inputs):
        return inputs - jnp.mean(inputs, axis=0)


def centered_model(layer):
    inputs = Input(shape=(3,))
    dense = Dense(2, name="dense")
    model = Model(inputs, layer(dense(inputs)))
    dense.set_weights([KERNEL, BIAS])
    return model


def numpy_training_loss(rows: slice) -> float:
    """mse of the centered batch plus the added penalty, computed on exactly ``rows``."""
    hidden = X[rows] @ KERNEL + BIAS
    mean = hidden.mean(axis=0)
    return float(np.mean((hidden - mean - Y[rows]) ** 2) + np.sum(mean**2))


def test_a_custom_layer_sees_only_the_real_rows_of_the_last_batch():
    model = centered_model(BatchCentering())
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.0), loss="mse")
    history = model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    # The epoch's loss averages the batches by their number of samples (Keras's loss tracker).
    expected = (4 * numpy_training_loss(slice(0, 4)) + 2 * numpy_training_loss(slice(4, 6))) / 6
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_batches_from_an_iterable_run_at_their_own_size():
    model = centered_model(BatchCentering())
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.0), loss="mse")

    def batches():
        yield X[:4], Y[:4]
        yield X[4:], Y[4:]

    history = model.fit(batches(), epochs=1, verbose=0)
    expected = (4 * numpy_training_loss(slice(0, 4)) + 2 * numpy_training_loss(slice(4, 6))) / 6
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_predict_runs_the_last_batch_at_its_own_size():
    model = centered_model(AlwaysCentering())
    hidden = X @ KERNEL + BIAS
    expected = np.concatenate([hidden[:4] - hidden[:4].mean(0), hidden[4:] - hidden[4:].mean(0)])
    np.testing.assert_allclose(model.predict(X, batch_size=4), expected, rtol=1e-5, atol=1e-6)


def test_evaluate_runs_the_last_batch_at_its_own_size():
    model = centered_model(AlwaysCentering())
    model.compile(optimizer="sgd", loss="mse")
    hidden = X @ KERNEL + BIAS
    centered = np.concatenate([hidden[:4] - hidden[:4].mean(0), hidden[4:] - hidden[4:].mean(0)])
    assert model.evaluate(X, Y, batch_size=4, verbose=0) == pytest.approx(float(np.mean((centered - Y) ** 2)), rel=1e-5)


def test_the_last_batch_compiles_once_for_every_epoch_and_fit():
    model = centered_model(BatchCentering())
    model.compile(optimizer="sgd", loss="mse")
    with count_compilations() as first:
        model.fit(X, Y, batch_size=4, epochs=3, verbose=0)
    assert first.of("run_train_steps") == 1 and first.of("run_train_batch") == 1, first.names
    with count_compilations() as second:
        model.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    assert second.count == 0, second.names


def test_a_batch_larger_than_the_data_is_capped_at_the_number_of_samples():
    model = centered_model(BatchCentering())
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.0), loss="mse")
    history = model.fit(X, Y, batch_size=10**12, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(numpy_training_loss(slice(0, 6)), rel=1e-5)
    model.evaluate(X, Y, batch_size=10**12, verbose=0)
    assert model.predict(X, batch_size=10**12).shape == (6, 2)


def test_a_short_last_batch_that_cannot_split_over_the_devices_runs_replicated():
    x = rng.standard_normal((22, 3)).astype(np.float32)  # batches of 8, 8 and 6 over 4 devices
    y = rng.standard_normal((22, 2)).astype(np.float32)
    reference = centered_model(Dense(2, name="head"))
    reference.compile(optimizer="sgd", loss="mse")
    weights = reference.get_weights()
    reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    model = centered_model(Dense(2, name="head"))
    model.set_weights(weights)
    model.compile(optimizer="sgd", loss="mse")
    with dist.DataParallel().scope():
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        predicted = model.predict(x, batch_size=8)
    for a, b in zip(reference.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predicted, reference.predict(x, batch_size=8), rtol=1e-5, atol=1e-6)
