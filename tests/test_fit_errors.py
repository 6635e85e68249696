"""Bad data and bad compile arguments are caught before anything is compiled, with messages that
name what was expected and what was received."""

import numpy as np
import pytest

from kfunc.data.arrays import DataError
from kfunc.layers import Dense, Embedding, Flatten, Input, concatenate
from kfunc.models import Model
from kfunc.testing import count_compilations
from kfunc.train.losses import TrainingConfigError


def two_in_two_out():
    a = Input(shape=(3,), name="a")
    b = Input(shape=(2,), name="b")
    merged = concatenate([a, b])
    model = Model([a, b], [Dense(1, name="first")(merged), Dense(2, name="second")(merged)])
    model.compile(optimizer="sgd", loss="mse")
    return model


X = [np.ones((8, 3), np.float32), np.ones((8, 2), np.float32)]
Y = [np.ones((8, 1), np.float32), np.ones((8, 2), np.float32)]


@pytest.mark.parametrize(
    "x, y, message",
    [
        ([X[0]], Y, r"expects 2 input\(s\) \['a', 'b'\], but received 1"),
        ({"a": X[0]}, Y, r"expects inputs named \['a', 'b'\]; the dict given is missing \['b'\] and has unknown keys \[\]"),
        ({"a": X[0], "b": X[1], "c": X[1]}, Y, r"missing \[\] and has unknown keys \['c'\]"),
        (X, [Y[0]], r"must give 2 arrays, one per output \['first', 'second'\], but received 1"),
        (X, {"first": Y[0], "third": Y[1]}, r"keyed by output names \['first', 'second'\].*missing \['second'\].*unknown keys \['third'\]"),
        ([X[0], X[1][:5]], Y, r"same number of samples, but received \{'a': 8, 'b': 5"),
        ([X[0][:0], X[1][:0]], [Y[0][:0], Y[1][:0]], r"empty \(0 samples\)"),
        ([np.ones((8, 4), np.float32), X[1]], Y, r"Input 'a' of model 'model' must have shape \(None, 3\).*received shape \(8, 4\)"),
        (X, [np.ones((8, 2), np.float32), Y[1]], r"Labels of output 'first' have shape \(None, 2\).*output has shape \(None, 1\).*never broadcast"),
        (X, [Y[0], np.ones((8, 3), np.float32)], r"Labels of output 'second' have shape \(None, 3\)"),
        ([np.ones(3, np.float32), X[1]], Y, r"must have shape \(None, 3\).*received shape \(3,\)\. It looks like a single example"),
    ],
)
def test_bad_data_is_rejected_before_compiling(x, y, message):
    model = two_in_two_out()
    weights = model.get_weights()
    with count_compilations() as compiles:
        with pytest.raises(DataError, match=message):
            model.fit(x, y, verbose=0)
    assert compiles.of("run_train_steps") == 0
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_batch_size_must_be_positive(batch_size):
    with pytest.raises(DataError, match=r"batch_size must be a positive integer"):
        two_in_two_out().fit(X, Y, batch_size=batch_size, verbose=0)


def test_integer_data_too_large_for_float32_input():
    inputs = Input(shape=(2,))
    model = Model(inputs, Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x = np.array([[1, 2], [2**25 + 1, 3]], np.int64)
    with pytest.raises(DataError, match=r"declared float32, but received int64 values up to 33554433.*cannot represent exactly"):
        model.fit(x, np.ones((2, 1)), verbose=0)
    model.fit(np.array([[1, 2], [3, 4]], np.int64), np.ones((2, 1)), verbose=0)  # small ints are exact


def test_fractional_values_into_an_integer_input():
    inputs = Input(shape=(4,), dtype="int32")
    model = Model(inputs, Dense(1)(Flatten()(Embedding(10, 2)(inputs))))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(DataError, match=r"declared int32.*received float64 values that are not whole numbers"):
        model.fit(np.full((3, 4), 1.5), np.ones((3, 1)), verbose=0)


def test_sparse_labels_need_a_sparse_loss():
    inputs = Input(shape=(4,))
    model = Model(inputs, Dense(3, activation="softmax")(inputs))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(DataError, match=r"Labels of output 'dense' have shape \(None,\).*sparse_categorical_crossentropy"):
        model.fit(np.ones((5, 4)), np.array([0, 1, 2, 0, 1]), verbose=0)


def test_sample_weight_shape_checked():
    with pytest.raises(DataError, match=r"sample_weight of output 'first' must have shape \(8,\)"):
        two_in_two_out().fit(X, Y, sample_weight=[np.ones(7), None], verbose=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss": ["mse"]}, r"loss has 1 entries, but the model has 2 outputs \['first', 'second'\]"),
        ({"loss": {"third": "mse"}}, r"loss has keys \['third'\] that are not output names; the outputs are \['first', 'second'\]"),
        ({"loss": "mse", "loss_weights": [1.0]}, r"loss_weights has 1 entries"),
        ({"loss": "mse", "loss_weights": {"frist": 1.0}}, r"loss_weights has keys \['frist'\]"),
        ({"loss": "msee"}, r"Unknown loss 'msee'"),
        ({"loss": "mse", "metrics": ["acuracy"]}, r"Unknown metric 'acuracy'"),
        ({"loss": "mse", "optimizer": "adamm"}, r"Unknown optimizer 'adamm'"),
        ({"loss": "mse", "steps_per_execution": 0}, r"steps_per_execution must be 'auto' or a positive int"),
    ],
)
def test_compile_arguments_are_checked(kwargs, message):
    a = Input(shape=(3,), name="a")
    model = Model(a, [Dense(1, name="first")(a), Dense(2, name="second")(a)])
    kwargs.setdefault("optimizer", "sgd")
    with pytest.raises(TrainingConfigError, match=message):
        model.compile(**kwargs)


def test_fit_before_compile():
    inputs = Input(shape=(3,))
    with pytest.raises(TrainingConfigError, match=r"must be compiled before fit"):
        Model(inputs, Dense(1)(inputs)).fit(np.ones((2, 3)), np.ones((2, 1)))
