"""Every optimizer with an optax-style direction trains a small model to Keras 3's weights:
same starting weights, same batches, a few epochs (float32, 1e-5 of the largest weight)."""

import numpy as np
import pytest

import kfunc

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = RNG.normal(size=(64, 1)).astype("float32")
OPTIMIZERS = {
    "adam": lambda k: k.optimizers.Adam(0.01),
    "adam_amsgrad": lambda k: k.optimizers.Adam(0.01, amsgrad=True),
    "adamw": lambda k: k.optimizers.AdamW(0.01),
    "nadam": lambda k: k.optimizers.Nadam(0.01),
    "adamax": lambda k: k.optimizers.Adamax(0.01),
    "adagrad": lambda k: k.optimizers.Adagrad(0.05),
    "adadelta": lambda k: k.optimizers.Adadelta(1.0),
    "rmsprop_centered_momentum": lambda k: k.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "sgd_nesterov": lambda k: k.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
    "lion": lambda k: k.optimizers.Lion(0.001),
}


def _model(k, optimizer):
    inputs = k.Input((8,))
    model = k.Model(inputs, k.layers.Dense(1)(k.layers.Dense(4, activation="tanh")(inputs)))
    model.compile(optimizer, "mse")
    return model


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_trains_to_keras_weights(name):
    ours, theirs = _model(kfunc, OPTIMIZERS[name](kfunc)), _model(keras, OPTIMIZERS[name](keras))
    theirs.set_weights(ours.get_weights())
    for model in (ours, theirs):
        model.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
