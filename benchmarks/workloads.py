"""The benchmark workloads: the same model for kfunc, Keras 3 and hand-written JAX, and its data.

W0  tiny, dispatch-bound: Input(32) -> Dense(64, relu) -> Dense(1), mse, adam, 16,384 samples.
W1  the guide's MLP 784-64-64-10, categorical cross-entropy, rmsprop, 60,000 random samples.
W2  the guide's headline model (Embedding 10000x512, LSTM(32), aux input 5, losses 1.0/0.2).
W3  a small CNN: Conv2D 32, Conv2D 64, MaxPool 2, Flatten, Dense 10 on 28x28x1, adam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import optax

import handwritten as hw


@dataclass
class Workload:
    name: str
    title: str
    samples: int
    quick_samples: int
    batch_size: int
    build: Callable  # (lib, layers) -> model, for kfunc and keras alike
    data: Callable  # (rng, n) -> (x, y) as the model's fit takes them
    optimizer: str
    loss: object
    loss_weights: object
    hand_init: Callable  # key -> params
    hand_loss: Callable  # (params, batch) -> scalar; batch = flat tuple of arrays
    hand_batch: Callable  # (x, y) -> flat tuple of arrays
    epochs_per_run: tuple = (3, 3)  # (quick, full): enough work per timed run to rise above noise


def transformation(name: str) -> optax.GradientTransformation:
    """The optax equivalent of a Keras optimizer string with Keras's defaults."""
    if name == "adam":
        return optax.adam(1e-3, eps=1e-7)
    return optax.rmsprop(1e-3, decay=0.9, eps=1e-7, eps_in_sqrt=True)


def _tiny(lib, layers):
    inputs = layers.Input(shape=(32,))
    return lib.Model(inputs, layers.Dense(1)(layers.Dense(64, activation="relu")(inputs)))


def _mlp(lib, layers):
    inputs = layers.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    return lib.Model(inputs, layers.Dense(10, activation="softmax")(x))


def _headline(lib, layers):
    main_input = layers.Input(shape=(100,), dtype="int32", name="main_input")
    x = layers.Embedding(output_dim=512, input_dim=10000)(main_input)
    lstm_out = layers.LSTM(32)(x)
    aux_output = layers.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    aux_input = layers.Input(shape=(5,), name="aux_input")
    x = layers.concatenate([lstm_out, aux_input])
    for _ in range(3):
        x = layers.Dense(64, activation="relu")(x)
    main_output = layers.Dense(1, activation="sigmoid", name="main_output")(x)
    return lib.Model(inputs=[main_input, aux_input], outputs=[main_output, aux_output])


def _cnn(lib, layers):
    inputs = layers.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, (3, 3), activation="relu")(inputs)
    x = layers.Conv2D(64, (3, 3), activation="relu")(x)
    x = layers.MaxPooling2D((2, 2))(x)
    return lib.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(x)))


def _onehot(rng, n, classes=10):
    return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]


WORKLOADS = {
    "W0": Workload(
        "W0", "tiny Dense(64)-Dense(1), batch 32", 16384, 16384, 32, _tiny,
        lambda rng, n: (rng.random((n, 32), dtype=np.float32), rng.random((n, 1), dtype=np.float32)),
        "adam", "mse", None,
        lambda key: hw.mlp_init(key, [32, 64, 1]),
        lambda p, b: hw.mse(hw.mlp_apply(p, b[0]), b[1]),
        lambda x, y: (x, y),
        (20, 40),
    ),
    "W1": Workload(
        "W1", "guide MLP 784-64-64-10, batch 32", 60000, 15360, 32, _mlp,
        lambda rng, n: (rng.random((n, 784), dtype=np.float32), _onehot(rng, n)),
        "rmsprop", "categorical_crossentropy", None,
        lambda key: hw.mlp_init(key, [784, 64, 64, 10]),
        lambda p, b: hw.categorical_crossentropy(hw.mlp_apply(p, b[0], hw.jax.nn.softmax), b[1]),
        lambda x, y: (x, y),
        (4, 2),
    ),
    "W2": Workload(
        "W2", "guide headline LSTM model, batch 32", 4096, 1024, 32, _headline,
        lambda rng, n: (
            [rng.integers(1, 10000, (n, 100)).astype(np.int32), rng.random((n, 5), dtype=np.float32)],
            [y := rng.integers(0, 2, (n, 1)).astype(np.float32), y],
        ),
        "rmsprop", "binary_crossentropy", [1.0, 0.2],
        lambda key: hw.lstm_model_init(key, 10000, 512, 32, 5),
        lambda p, b: (lambda out: hw.binary_crossentropy(out[0], b[2]) + 0.2 * hw.binary_crossentropy(out[1], b[3]))(
            hw.lstm_model_apply(p, b[0], b[1])
        ),
        lambda x, y: (x[0], x[1], y[0], y[1]),
        (2, 1),
    ),
    "W3": Workload(
        "W3", "small CNN on 28x28x1, batch 128", 2048, 512, 128, _cnn,
        lambda rng, n: (rng.random((n, 28, 28, 1), dtype=np.float32), _onehot(rng, n)),
        "adam", "categorical_crossentropy", None,
        hw.cnn_init,
        lambda p, b: hw.categorical_crossentropy(hw.cnn_apply(p, b[0]), b[1]),
        lambda x, y: (x, y),
        (2, 1),
    ),
}

# W1 is also measured at batch 128.
WORKLOADS["W1b128"] = Workload(**{**WORKLOADS["W1"].__dict__, "name": "W1b128", "title": "guide MLP, batch 128", "batch_size": 128})
