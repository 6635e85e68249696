"""kfunc.utils against Keras 3: to_categorical, normalize, pad_sequences, split_dataset, PyDataset
in fit / evaluate, set_random_seed."""

import random

import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import utils

keras = pytest.importorskip("keras")


def test_keras_utility_names_are_there():
    for name in ("to_categorical", "normalize", "pad_sequences", "split_dataset", "PyDataset", "Sequence",
                 "set_random_seed", "plot_model", "model_to_dot", "clear_session", "is_keras_tensor",
                 "standardize_dtype"):
        assert hasattr(utils, name), name
    assert not hasattr(utils, "get_file")  # kfunc never downloads


@pytest.mark.parametrize("ids,num_classes", [([0, 2, 1], None), ([[1], [3]], None), ([[0, 1], [2, 2]], 4),
                                             (np.array([3, 0]), 5)])
def test_to_categorical_matches_keras(ids, num_classes):
    ours = utils.to_categorical(ids, num_classes)
    theirs = keras.utils.to_categorical(ids, num_classes)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_of_a_jax_array():
    ours = utils.to_categorical(jnp.array([[1], [0]]), 3)
    np.testing.assert_array_equal(ours, keras.utils.to_categorical(jnp.array([[1], [0]]), 3))


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 2\) for num_classes=2"):
        utils.to_categorical([0, 2], 2)
    with pytest.raises(ValueError, match="expects integer class ids"):
        utils.to_categorical([0.5, 1.0])
    with pytest.raises(ValueError, match="pass num_classes= for a JAX array"):
        utils.to_categorical(jnp.array([1, 0]))


NORMALIZED = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]], "float32")


@pytest.mark.parametrize("axis,order", [(-1, 2), (1, 2), (-1, 1)])
def test_normalize_matches_keras(axis, order):
    x = NORMALIZED
    np.testing.assert_allclose(utils.normalize(x, axis, order), keras.utils.normalize(x, axis, order), rtol=1e-6)
    np.testing.assert_allclose(utils.normalize(jnp.asarray(x), axis, order),
                               keras.utils.normalize(jnp.asarray(x), axis, order), rtol=1e-6)


def test_normalize_over_axis_0():
    # Keras 3.15 turns axis=0 into -1 for NumPy input (`axis or -1`) and then fails to broadcast;
    # kfunc normalizes the columns, as it does for JAX input (where Keras agrees).
    expected = NORMALIZED / np.linalg.norm(NORMALIZED, axis=0, keepdims=True)
    np.testing.assert_allclose(utils.normalize(NORMALIZED, axis=0), expected, rtol=1e-6)
    np.testing.assert_allclose(keras.utils.normalize(jnp.asarray(NORMALIZED), axis=0), expected, rtol=1e-6)


SEQUENCES = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10]]


@pytest.mark.parametrize("kwargs", [{}, {"maxlen": 3}, {"padding": "post"}, {"truncating": "post", "maxlen": 2},
                                    {"value": -1, "padding": "post", "truncating": "post", "maxlen": 4},
                                    {"dtype": "float32", "value": 0.5}])
def test_pad_sequences_matches_keras(kwargs):
    ours = utils.pad_sequences(SEQUENCES, **kwargs)
    theirs = keras.utils.pad_sequences(SEQUENCES, **kwargs)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_pad_sequences_of_vectors_and_strings():
    steps = [np.ones((2, 3)), np.zeros((1, 3))]
    np.testing.assert_array_equal(utils.pad_sequences(steps, dtype="float32"),
                                  keras.utils.pad_sequences(steps, dtype="float32"))
    words = [["a", "b"], ["c"]]
    np.testing.assert_array_equal(utils.pad_sequences(words, dtype=object, value="<pad>"),
                                  keras.utils.pad_sequences(words, dtype=object, value="<pad>"))


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match="padding and truncating must be 'pre' or 'post'"):
        utils.pad_sequences(SEQUENCES, padding="middle")
    with pytest.raises(ValueError, match="but item 1 is int"):
        utils.pad_sequences([[1], 2])
    with pytest.raises(ValueError, match="is a string but dtype is int32; pass dtype=object"):
        utils.pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match=r"the steps of sequence 1 have shape \(2,\)"):
        utils.pad_sequences([np.ones((2, 3)), np.ones((2, 2))], dtype="float32")


def test_split_dataset_sizes_and_structure():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    left, right = utils.split_dataset((x, y), left_size=0.8)
    assert isinstance(left, tuple) and left[0].shape == (8, 2) and right[1].tolist() == [8, 9]
    left, right = utils.split_dataset(x, right_size=3)
    np.testing.assert_array_equal(left, x[:7])
    np.testing.assert_array_equal(right, x[7:])
    left, right = utils.split_dataset({"a": x, "b": y}, left_size=2, right_size=3)
    assert left["b"].tolist() == [0, 1] and right["b"].tolist() == [7, 8, 9]
    # shuffle keeps the rows of the arrays together and is repeatable with a seed
    a, b = utils.split_dataset((x, y), left_size=5, shuffle=True, seed=3)
    again, _ = utils.split_dataset((x, y), left_size=5, shuffle=True, seed=3)
    np.testing.assert_array_equal(a[0][:, 0] // 2, a[1])
    np.testing.assert_array_equal(a[1], again[1])
    assert sorted(np.concatenate([a[1], b[1]]).tolist()) == list(range(10))


def test_split_dataset_errors():
    x = np.arange(10)
    with pytest.raises(ValueError, match="give left_size, right_size or both"):
        utils.split_dataset(x)
    with pytest.raises(ValueError, match=r"left_size must be a positive int smaller than 10 .* received 10"):
        utils.split_dataset(x, left_size=10)
    with pytest.raises(ValueError, match="give 6 and 6 rows of 10"):
        utils.split_dataset(x, left_size=6, right_size=6)
    with pytest.raises(ValueError, match=r"same number of rows, received tuple with row counts \[10, 3\]"):
        utils.split_dataset((x, np.arange(3)), left_size=0.5)


class Batches(utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _model():
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(1, kernel_initializer="ones")(inputs))
    model.compile("sgd", "mse")
    return model


def test_py_dataset_trains_like_the_same_batches_as_arrays():
    x = np.linspace(-1, 1, 60, dtype="float32").reshape(20, 3)
    y = np.sum(x, axis=1, keepdims=True) * 0.5
    dataset = Batches(x, y, 8)
    assert dataset.num_batches == 3 and dataset.workers == 1
    from_dataset = _model()
    history = from_dataset.fit(dataset, epochs=3, verbose=0)
    from_arrays = _model()
    expected = from_arrays.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], expected.history["loss"], rtol=1e-5)
    assert dataset.epochs_ended == 3
    assert from_dataset.evaluate(dataset, verbose=0) == pytest.approx(from_arrays.evaluate(x, y, verbose=0), rel=1e-5)
    logs = from_dataset.fit(x, y, validation_data=Batches(x, y, 8), epochs=1, verbose=0).history
    assert "val_loss" in logs


def test_py_dataset_arguments_are_checked():
    with pytest.raises(ValueError, match="PyDataset: workers must be a positive int, received 0"):
        Batches(np.zeros((2, 3)), np.zeros((2, 1)), 1, workers=0)
    with pytest.raises(NotImplementedError, match="must define __len__"):
        len(utils.PyDataset())


def test_set_random_seed_repeats_every_stream():
    utils.set_random_seed(7)
    first = (random.random(), np.random.rand(), np.asarray(kfunc.random.normal((2,))),
             kfunc.random.SeedGenerator().seed)
    utils.set_random_seed(7)
    second = (random.random(), np.random.rand(), np.asarray(kfunc.random.normal((2,))),
              kfunc.random.SeedGenerator().seed)
    assert first[:2] == second[:2] and first[3] == second[3]
    np.testing.assert_array_equal(first[2], second[2])
