"""Grain data loaders (``grain.MapDataset``, ``grain.IterDataset``, ``grain.DataLoader``) feed
``fit`` / ``evaluate`` / ``predict`` as iterables of batches, read ahead on a thread, with the
numbers of the same batches given as arrays."""

import grain
import numpy as np
import pytest

import kfunc

rng = np.random.default_rng(0)
X = rng.random((64, 4), dtype=np.float32)
Y = X @ rng.random((4, 1), dtype=np.float32)


def _model():
    kfunc.utils.set_random_seed(3)
    inputs = kfunc.Input((4,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(1)(inputs))
    model.compile("sgd", "mse", metrics=["mae"])
    return model


def _batches():
    """The rows in order, in batches of 16: ``((16, 4), (16, 1))`` tuples."""
    return grain.MapDataset.source(list(zip(X, Y, strict=True))).batch(16)


@pytest.fixture(scope="module")
def reference():
    model = _model()
    history = model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model, history.history


@pytest.mark.parametrize("make", [_batches, lambda: _batches().to_iter_dataset(),
                                  lambda: grain.DataLoader(data_source=_batches(), sampler=grain.samplers.SequentialSampler(4))],
                         ids=["MapDataset", "IterDataset", "DataLoader"])
def test_grain_datasets_train_as_the_same_arrays(make, reference):
    expected_model, expected = reference
    model = _model()
    history = model.fit(make(), epochs=2, verbose=0)
    for key in expected:
        np.testing.assert_allclose(history.history[key], expected[key], rtol=1e-6)
    for ours, theirs in zip(model.get_weights(), expected_model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(make(), verbose=0), expected_model.evaluate(X, Y, batch_size=16, verbose=0),
                               rtol=1e-6)
    np.testing.assert_allclose(model.predict(make(), verbose=0), expected_model.predict(X, verbose=0), rtol=1e-6)
