"""Whole guide models against Keras 3: same architecture, weights copied with set_weights,
same outputs. Checks layer order, weight order and shapes, and the numerics of each layer."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc import layers as kl  # noqa: E402

rng = np.random.default_rng(3)


def build_headline(lib, layers):
    main_input = layers.Input(shape=(12,), dtype="int32", name="main_input")
    x = layers.Embedding(output_dim=16, input_dim=50)(main_input)
    lstm_out = layers.LSTM(8)(x)
    auxiliary_output = layers.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    auxiliary_input = layers.Input(shape=(5,), name="aux_input")
    x = layers.concatenate([lstm_out, auxiliary_input])
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dense(16, activation="relu")(x)
    main_output = layers.Dense(1, activation="sigmoid", name="main_output")(x)
    return lib.Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])


def build_shared_vision(lib, layers):
    digit_input = layers.Input(shape=(9, 9, 1))
    x = layers.Conv2D(4, (3, 3))(digit_input)
    x = layers.Conv2D(4, (3, 3))(x)
    x = layers.MaxPooling2D((2, 2))(x)
    vision_model = lib.Model(digit_input, layers.Flatten()(x))
    digit_a = layers.Input(shape=(9, 9, 1))
    digit_b = layers.Input(shape=(9, 9, 1))
    concatenated = layers.concatenate([vision_model(digit_a), vision_model(digit_b)])
    out = layers.Dense(1, activation="sigmoid")(concatenated)
    return lib.Model([digit_a, digit_b], out)


def build_sequential_cnn(lib, layers):
    model = lib.Sequential()
    model.add(layers.Input(shape=(10, 10, 3)))
    model.add(layers.Conv2D(6, (3, 3), activation="relu", padding="same"))
    model.add(layers.BatchNormalization())
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(5, (3, 3), activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(7, activation="softmax"))
    return model


def build_recurrent_stack(lib, layers):
    inputs = layers.Input(shape=(6, 4))
    x = layers.Bidirectional(layers.GRU(5, return_sequences=True))(inputs)
    x = layers.TimeDistributed(layers.Dense(3))(x)
    x = layers.SimpleRNN(4, return_sequences=True, go_backwards=True)(x)
    x = layers.LayerNormalization()(x)
    return lib.Model(inputs, layers.LSTM(3)(x))


CASES = {
    "headline": (build_headline, lambda n: [rng.integers(0, 50, (n, 12)).astype("int32"), rng.random((n, 5), dtype=np.float32)]),
    "shared_vision": (build_shared_vision, lambda n: [rng.random((n, 9, 9, 1), dtype=np.float32) for _ in range(2)]),
    "sequential_cnn": (build_sequential_cnn, lambda n: rng.random((n, 10, 10, 3), dtype=np.float32)),
    "recurrent_stack": (build_recurrent_stack, lambda n: rng.random((n, 6, 4), dtype=np.float32)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_weights_same_outputs_as_keras(case):
    build, data = CASES[case]
    ours = build(kfunc, kl)
    theirs = build(keras, keras.layers)
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert ours.count_params() == theirs.count_params()
    weights = ours.get_weights()
    weights = [w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in weights]  # not just initial values
    weights = [np.abs(w) + 0.5 if w.ndim == 1 and "variance" in v.path else w for w, v in zip(weights, ours.weights)]
    ours.set_weights(weights)
    theirs.set_weights(ours.get_weights())
    x = data(5)
    expected = theirs.predict(x, verbose=0)
    actual = ours.predict(x)
    for a, e in zip(actual if isinstance(actual, list) else [actual], expected if isinstance(expected, list) else [expected]):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
