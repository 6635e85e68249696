"""Data is checked on the host before anything is compiled: Embedding ids in range, integer ids
that fit the input's dtype, real numbers only, and a batch size capped at the number of samples."""

import numpy as np
import pytest

from kfunc.data.arrays import DataError
from kfunc.layers import Dense, Embedding, Flatten, Input
from kfunc.models import Model, Sequential
from kfunc.testing import count_compilations

IDS = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 1, 2]], np.int32)
TARGETS = np.ones((4, 1), np.float32)


def embedding_model():
    ids = Input(shape=(3,), dtype="int32", name="ids")
    hidden = Flatten()(Embedding(10, 2, name="words")(ids))
    model = Model(ids, Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    return model


def with_id(value, sample=2, position=1):
    ids = IDS.copy()
    ids[sample, position] = value
    return ids


def run(model, call, x):
    if call == "fit":
        return model.fit(x, TARGETS, verbose=0)
    if call == "evaluate":
        return model.evaluate(x, TARGETS, verbose=0)
    return model.predict(x)


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("bad", [10, 999, -1])
def test_out_of_range_embedding_ids_are_refused_before_compiling(call, bad):
    model = embedding_model()
    weights = model.get_weights()
    message = (rf"Input 'ids' of model 'model' feeds Layer 'words' \(Embedding\) with input_dim=10, but sample 2 has "
               rf"id {bad} at position \(1,\); ids must be in \[0, 10\)")
    with count_compilations() as compiles:
        with pytest.raises(DataError, match=message):
            run(model, call, with_id(bad))
    assert compiles.of("run_") == 0 and compiles.of("apply") == 0, compiles.names
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    run(model, call, IDS)  # the largest id in range, input_dim - 1 = 9, is fine


def test_ids_reaching_an_embedding_through_a_sequential_or_a_nested_model_are_checked():
    stack = Sequential([Input((3,), dtype="int32"), Embedding(5, 2, name="inner_words"), Flatten(), Dense(1)])
    stack.compile(optimizer="sgd", loss="mse")
    with pytest.raises(DataError, match=r"feeds Layer 'inner_words' \(Embedding\) with input_dim=5, but sample 1 has id 5"):
        stack.fit(with_id(5, sample=1, position=0) % 6, TARGETS, verbose=0)
    outer_ids = Input(shape=(3,), dtype="int32", name="outer_ids")
    outer = Model(outer_ids, Dense(1, name="top")(stack(outer_ids)))
    outer.compile(optimizer="sgd", loss="mse")
    with pytest.raises(DataError, match=r"Input 'outer_ids' of model 'model' feeds Layer 'inner_words'.*id 7 at position \(2,\)"):
        outer.predict(np.array([[0, 1, 2], [1, 2, 7]], np.int32))


def test_ids_from_an_iterable_are_checked_batch_by_batch():
    model = embedding_model()

    def batches():
        yield IDS, TARGETS
        yield with_id(12, sample=0, position=2), TARGETS

    with pytest.raises(DataError, match=r"sample 0 has id 12 at position \(2,\)"):
        model.fit(batches(), epochs=1, verbose=0)


def test_int64_ids_that_do_not_fit_int32_are_refused():
    model = embedding_model()
    ids = IDS.astype(np.int64)
    ids[3, 0] = 2**31 + 1  # an int32 cast would turn it into a negative id
    with pytest.raises(DataError, match=r"Input 'ids' of model 'model' is declared int32, but received int64 values "
                                        r"from 1 to 2147483649, outside the range of int32"):
        model.fit(ids, TARGETS, verbose=0)
    model.fit(IDS.astype(np.int64), TARGETS, verbose=0)  # int64 ids that fit are fine


@pytest.mark.parametrize("call", ["fit", "predict"])
def test_complex_features_are_refused(call):
    inputs = Input(shape=(2,))
    model = Model(inputs, Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 2), np.complex64) * (1 + 2j)
    with pytest.raises(DataError, match=r"Input 'input_layer' has complex dtype complex64, but kfunc computes on real "
                                        r"numbers.*separate real features"):
        model.fit(x, TARGETS, verbose=0) if call == "fit" else model.predict(x)


def test_complex_labels_are_refused():
    inputs = Input(shape=(2,))
    model = Model(inputs, Dense(1, name="out")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(DataError, match=r"Targets of output 'out' has complex dtype complex64"):
        model.fit(np.ones((4, 2), np.float32), TARGETS * (1 + 1j), verbose=0)


def test_string_labels_and_string_sample_weights_raise_a_data_error():
    inputs = Input(shape=(2,))
    model = Model(inputs, Dense(3, activation="softmax", name="out")(inputs))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.ones((3, 2), np.float32)
    with pytest.raises(DataError, match=r"Targets of output 'out' must hold numbers, but received strings \(dtype <U3\); "
                                        r"encode them as numbers first"):
        model.fit(x, np.array(["cat", "dog", "cat"]), verbose=0)
    with pytest.raises(DataError, match=r"sample_weight of output 'out' must hold numbers, but received strings"):
        model.fit(x, np.array([0, 1, 2]), sample_weight=["1", "2", "3"], verbose=0)


def test_ragged_lists_raise_a_data_error():
    inputs = Input(shape=(2,))
    model = Model(inputs, Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(DataError, match=r"Targets of output 'dense' must be a rectangular array, but received nested "
                                        r"lists of different lengths"):
        model.fit(np.ones((2, 2), np.float32), [[1.0], [2.0, 3.0]], verbose=0)
    with pytest.raises(DataError, match=r"Input 'input_layer' must hold numbers, but received dtype object"):
        model.predict(np.array([[1.0, None], [3.0, 4.0]], dtype=object))


def test_a_huge_batch_size_is_capped_at_the_number_of_samples():
    model = embedding_model()
    ids = np.tile(IDS, (3, 1))[:10]
    targets = np.ones((10, 1), np.float32)
    history = model.fit(ids, targets, batch_size=10**12, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and int(model._trainer.step) == 2
    assert np.isfinite(model.evaluate(ids, targets, batch_size=10**12, verbose=0))
    assert model.predict(ids, batch_size=10**12).shape == (10, 1)
    np.testing.assert_array_equal(model.predict(ids, batch_size=10), model.predict(ids, batch_size=10**12))
