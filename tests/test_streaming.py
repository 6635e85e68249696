"""Streaming: arrays over the device-memory budget train in chunks with the results of in-memory
training; memory maps are read chunk by chunk; iterables are read ahead on a thread."""

import math
import threading

import numpy as np
import pytest

import kfunc
from kfunc.callbacks import BackupAndRestore
from kfunc.data import sources, streaming
from kfunc.data.prefetch import prefetched
from kfunc.errors import DataError
from kfunc.layers import Dense, Dropout, Embedding, Flatten, Input
from kfunc.models import Model

COUNT, FEATURES, BATCH = 203, 6, 8  # 25 whole batches and a last one of 3
ROW_BYTES = (FEATURES + 1) * 4
# A quarter of the budget holds 3 batches: 4 chunks of whole batches per epoch.
BUDGET = 3 * BATCH * ROW_BYTES * 4


def _model(seed=5):
    kfunc.utils.set_random_seed(seed)
    inputs = Input((FEATURES,))
    hidden = Dropout(0.2)(Dense(8, activation="relu")(inputs))
    model = Model(inputs, Dense(1)(hidden))
    model.compile("rmsprop", "mse", metrics=["mae"])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(COUNT, FEATURES)).astype("float32"), rng.normal(size=(COUNT, 1)).astype("float32")


def _same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)


class ChunkSpy:
    """Records the rows each streamed read takes (``StreamedArrays.take``)."""

    def __init__(self, monkeypatch):
        self.reads = []
        self.threads = []
        original = streaming.StreamedArrays.take

        def take(data, rows):
            self.reads.append(len(range(*rows.indices(data.count))) if isinstance(rows, slice) else len(rows))
            self.threads.append(threading.current_thread().name)
            return original(data, rows)

        monkeypatch.setattr(streaming.StreamedArrays, "take", take)


@pytest.fixture(scope="module")
def in_memory(data):
    """Reference runs in memory: ``{shuffle: (history, model)}``."""
    runs = {}
    for shuffle in (False, True):
        model = _model()
        runs[shuffle] = model.fit(*data, batch_size=BATCH, epochs=2, shuffle=shuffle, verbose=0), model
    return runs


def test_streamed_fit_equals_in_memory_fit(data, in_memory, monkeypatch):
    spy = ChunkSpy(monkeypatch)
    model = _model()
    history = model.fit(*data, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, device_data_budget=BUDGET)
    # Per epoch: 8 chunks of 3 whole batches, one of 1, then the last 3 samples; the second epoch's
    # first chunk is read (once) while the first epoch trains, so the order of reads may vary.
    assert sorted(spy.reads) == sorted(([24] * 8 + [8, 3]) * 2)
    assert spy.threads.count("kfunc-read-ahead") == 1
    reference_history, reference = in_memory[False]
    assert history.history == reference_history.history
    _same_weights(model, reference)


def test_a_shuffled_memory_mapped_file_is_read_chunk_by_chunk(tmp_path, data, in_memory, monkeypatch):
    x, y = data
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    x_map, y_map = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")
    file_reads, read_rows = [], []
    original_read, original_take = streaming._read_rows_from_file, streaming.take_rows

    def read_from_file(place, rows, out):
        file_reads.append((str(place.filename), len(out)))
        return original_read(place, rows, out)

    monkeypatch.setattr(streaming, "_read_rows_from_file", read_from_file)

    def take_rows(structure, rows):
        if structure is not None:
            read_rows.append(len(range(*rows.indices(COUNT))) if isinstance(rows, slice) else len(rows))
        return original_take(structure, rows)

    monkeypatch.setattr(streaming, "take_rows", take_rows)
    model = _model()
    history = model.fit(x_map, y_map, batch_size=BATCH, epochs=2, shuffle=True, verbose=0, device_data_budget=BUDGET)
    assert max(read_rows) <= 3 * BATCH  # no read of more than a chunk, not even by a check
    # Rows are read from the files, not through the maps (which would keep the pages in memory).
    assert {name for name, _ in file_reads} == {str(tmp_path / "x.npy"), str(tmp_path / "y.npy")}
    assert max(rows for _, rows in file_reads) <= 3 * BATCH
    reference_history, reference = in_memory[True]
    assert history.history == reference_history.history
    _same_weights(model, reference)


def test_rows_are_read_from_the_file_or_through_the_map_alike(tmp_path):
    array = np.arange(7 * 5 * 3, dtype=np.float32).reshape(7, 5, 3)
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    rows = np.array([6, 0, 3, 3])
    views = ((mapped, array), (mapped[2:], array[2:]), (mapped[::2], array[::2]), (mapped[:, 1:], array[:, 1:]),
             (mapped[:, :, 1:], array[:, :, 1:]))
    for view, expected in views:
        picked = rows[rows < len(expected)]
        np.testing.assert_array_equal(streaming.take_rows(view, picked), expected[picked])
        np.testing.assert_array_equal(streaming.take_rows(view, slice(1, 3)), expected[1:3])
    assert streaming._file_place(mapped[:, 1:]) is not None  # each row contiguous: read row by row
    assert streaming._file_place(mapped[:, :, 1:]) is None  # rows not contiguous: read through the map


def test_the_budget_decides_what_is_streamed(data):
    model = _model()
    config = model._trainer.config
    small = sources.array_data(model, config, *data, None, None, role="fit", budget=BUDGET)
    large = sources.array_data(model, config, *data, None, None, role="fit", budget=10 * COUNT * ROW_BYTES)
    assert isinstance(small, streaming.StreamedArrays) and small.count == COUNT
    assert not isinstance(large, streaming.StreamedArrays) and large.count == COUNT
    source = sources.array_source(small, BATCH, shuffle=False, seed=(0, 0), budget=BUDGET)
    assert isinstance(source, sources.StreamingSource) and source.chunk_steps == 3


@pytest.mark.slow
def test_streamed_validation_split_equals_in_memory(data):
    expected = _model().fit(*data, batch_size=BATCH, epochs=1, validation_split=0.25, verbose=0).history
    history = _model().fit(*data, batch_size=BATCH, epochs=1, validation_split=0.25, verbose=0,
                           device_data_budget=BUDGET).history
    assert history == expected


def test_values_are_checked_in_each_chunk():
    kfunc.utils.set_random_seed(0)
    inputs = Input((3,), dtype="int32")
    model = Model(inputs, Dense(1)(Flatten()(Embedding(10, 2)(inputs))))
    model.compile("sgd", "mse")
    ids = np.ones((40, 3), np.int64)
    ids[37, 1] = 12  # in the last chunk only
    with pytest.raises(DataError, match=r"Embedding.*input_dim=10.*id 12"):
        model.fit(ids, np.zeros((40, 1), np.float32), batch_size=4, shuffle=False, verbose=0, device_data_budget=200)


@pytest.mark.parametrize("budget", [0, -5, 1.5, True])
def test_a_bad_budget_is_refused(data, budget):
    with pytest.raises(DataError, match=r"fit: device_data_budget must be a positive number of bytes"):
        _model().fit(*data, epochs=1, verbose=0, device_data_budget=budget)


def test_default_budget_is_positive():
    assert streaming.default_budget() > 0


class StopAfterSave(BackupAndRestore):
    """A preempted run: stops right after the backup at step ``stop_at`` (mid-epoch, mid-chunk)."""

    def __init__(self, *args, stop_at, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_at = stop_at

    def save(self, point):
        super().save(point)
        if int(point.train.step) >= self.stop_at:
            raise KeyboardInterrupt


def test_streamed_training_resumes_exactly(tmp_path, data, in_memory):
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(*data, batch_size=BATCH, epochs=2, verbose=0, device_data_budget=BUDGET,
                  callbacks=[StopAfterSave(tmp_path, save_freq=12, stop_at=36)])  # epoch 1, batch 10
    history = model.fit(*data, batch_size=BATCH, epochs=2, verbose=0, device_data_budget=BUDGET,
                        callbacks=[BackupAndRestore(tmp_path, save_freq=12)])
    reference_history, reference = in_memory[True]
    assert history.epoch == [1]
    assert history.history["loss"] == reference_history.history["loss"][1:]
    _same_weights(model, reference)


class Batches(kfunc.utils.PyDataset):
    def __init__(self, x, y=None, size=BATCH):
        super().__init__()
        self.x, self.y, self.size = x, y, size

    def __len__(self):
        return math.ceil(len(self.x) / self.size)

    def __getitem__(self, index):
        rows = slice(index * self.size, (index + 1) * self.size)
        return (self.x[rows],) if self.y is None else (self.x[rows], self.y[rows])


def test_prefetched_batches_train_as_in_memory_arrays(data, in_memory):
    model = _model()
    history = model.fit(Batches(*data), epochs=2, verbose=0)
    reference_history, reference = in_memory[False]
    np.testing.assert_allclose(history.history["loss"], reference_history.history["loss"], rtol=1e-6)
    for u, v in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_an_error_in_a_generator_reaches_fit(data):
    def batches():
        yield data[0][:8], data[1][:8]
        yield data[0][:8], np.zeros((8, 5), np.float32)

    with pytest.raises(DataError, match=r"Labels of output .* have shape \(None, 5\)"):
        _model().fit(batches(), epochs=1, verbose=0)


def test_predict_takes_a_py_dataset(data, in_memory):
    model = in_memory[False][1]
    np.testing.assert_allclose(model.predict(Batches(data[0])), model.predict(data[0]), rtol=1e-6)
    np.testing.assert_allclose(model.predict(Batches(*data)), model.predict(data[0]), rtol=1e-6)


def test_predict_reads_a_memory_map_batch_by_batch_from_its_file(tmp_path, data, in_memory, monkeypatch):
    model = in_memory[False][1]
    np.save(tmp_path / "x.npy", data[0])
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    reads = []
    original = streaming.take_rows
    monkeypatch.setattr(streaming, "take_rows", lambda a, rows: reads.append(rows) or original(a, rows))
    np.testing.assert_array_equal(model.predict(mapped, batch_size=32, verbose=0), model.predict(data[0], verbose=0))
    assert reads == [slice(s, s + 32) for s in range(0, len(mapped), 32)]  # never the whole file at once


def test_predict_refuses_what_is_not_data(in_memory):
    with pytest.raises(DataError, match=r"predict: x must be arrays .* or an iterable of batches, received int"):
        in_memory[False][1].predict(3)


def test_prefetch_keeps_order_raises_in_order_and_stops_with_its_consumer():
    def numbers():
        yield from range(5)
        raise ValueError("broken source")

    seen = []
    with pytest.raises(ValueError, match="broken source"):
        for value in prefetched(numbers(), depth=2):
            seen.append(value)  # noqa: PERF402 (the values before the error)
    assert seen == [0, 1, 2, 3, 4]

    before = threading.active_count()
    endless = prefetched(iter(range(10**9)), depth=2)
    assert [next(endless) for _ in range(3)] == [0, 1, 2]
    endless.close()
    for thread in threading.enumerate():
        if thread.name == "kfunc-prefetch":
            thread.join(timeout=2)
    assert threading.active_count() <= before
