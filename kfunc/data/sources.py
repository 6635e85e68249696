"""Where training batches come from: arrays put on the device once, or an iterable of batches.

No batch is ever padded: every step sees real samples only, so batch statistics, activity
penalties and ``add_loss`` of any layer are computed on the samples themselves, as in Keras.
``ArraySource`` keeps every array on the device for the whole fit; each epoch is a permutation
of row indices (drawn on the host with NumPy, a few kilobytes sent per epoch). Its whole
batches run in one compiled loop; the rest (``count % batch_size`` samples) runs as one more
step at its own size. With large rows the compiled step gathers its batch's rows itself; with
small rows (where XLA's CPU gather costs more than the step: 40k against 70k steps/s for a
32-feature model) the host reorders the data for each epoch with NumPy, while the device still
trains the previous epoch, and the step slices contiguous rows (measured: 0.91x of a fused
hand-written loop that never reshuffles, against 0.78x when the device reorders).
``StreamingSource`` serves arrays larger than the device-memory budget (``kfunc/data/streaming.py``)
in chunks of whole batches: a background thread gathers and checks the next chunk on the host
while the device trains on the current one, and the chunk goes to the device before the host
waits for anything. ``IterableSource`` reads batches from a generator (or any iterable of
``(x, y)`` / ``(x, y, sample_weight)``) on a background thread, a few ahead of the step, and
puts each on the device as it is.
``dispatches`` describes an epoch as ``WholeBatches`` blocks (for the compiled loop) and
``OneBatch`` steps. ``make_source`` picks the source for what the user passed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import seeding
from kfunc.data import fit_data, streaming
from kfunc.data.arrays import DataError, model_input_arrays
from kfunc.data.fit_data import ArrayData, fit_arrays
from kfunc.data.id_checks import check_embedding_ids
from kfunc.data.prefetch import ReadAhead, prefetched

SMALL_ROW_BYTES = 512
PREFETCH_BATCHES = 2  # batches of an iterable read ahead of the step


class WholeBatches(NamedTuple):
    """Steps ``start`` to ``stop`` of an epoch, each a whole batch of ``batch_size`` rows taken
    from ``data`` on the device: contiguous rows when ``indices`` is None (the data is in epoch
    order), else the rows ``indices[step * batch_size:][:batch_size]``."""

    data: Any
    indices: Any
    start: int
    stop: int
    batch_size: int
    fence: Any = None  # streamed chunks: called with the result of the block's last dispatch


def dispatched(block, result) -> None:
    """Tell a streamed block that its steps are dispatched; ``result``: what they return (the
    carry, or metric states), which the stream waits on before putting more data on the device."""
    if isinstance(block, WholeBatches) and block.fence is not None:
        block.fence(result)


class OneBatch(NamedTuple):
    """One step on ``data`` = ``(inputs, targets, weights)`` on the device, at its own size."""

    data: Any


def as_tree(data: ArrayData) -> tuple:
    """``(inputs, targets, weights)``: the pytree the compiled steps take."""
    return data.inputs, data.targets, data.weights


def device_data(data: ArrayData):
    """``(inputs, targets, weights)`` on the default device."""
    return jax.device_put(as_tree(data))


def put_batch(tree, placement):
    """One batch (a pytree of ``(B, ...)`` arrays) on the device, or on a distribution's mesh:
    split over the batch devices when ``B`` divides evenly, else (a short last batch) replicated."""
    if placement is None:
        return jax.device_put(tree)
    rows = len(jax.tree_util.tree_leaves(tree)[0])
    if rows % placement.shards == 0:
        return placement.put(tree, 1)
    return jax.device_put(tree, placement.distribution.device_mesh.sharding())


def whole_batch_size(batch_size: int, count: int, placement) -> int:
    """The size of an epoch's whole batches: ``batch_size``, capped at the number of samples as
    Keras does; under a distribution, a capped size is rounded down to split evenly over the
    batch devices (the rest runs as the short last batch)."""
    size = min(batch_size, count)
    if placement is not None and size % placement.shards:
        size = max(size - size % placement.shards, placement.shards)
    return size


class ArraySource:
    """In-memory arrays: ``count // batch_size`` whole batches per epoch, then the remaining
    samples as one shorter batch. ``seed``: a seeding ticket; epoch ``e`` is shuffled by NumPy's
    generator seeded with ``(*seed, e)``, so a run's data order is reproducible and resumable."""

    def __init__(self, data: ArrayData, batch_size: int, *, shuffle: bool, seed: tuple[int, int], max_steps: int | None = None,
                 placement=None):
        self._plan(data, batch_size, shuffle, seed, max_steps, placement)
        leaves = jax.tree_util.tree_leaves((data.inputs, data.targets, data.weights))
        self.placement = placement  # a distribution's DataPlacement: the host arranges every epoch
        row_bytes = sum(a.dtype.itemsize * int(np.prod(a.shape[1:])) for a in leaves)
        self.reorder_per_epoch = placement is not None or row_bytes <= SMALL_ROW_BYTES
        self._on_device = None
        self._unshuffled = None

    def _plan(self, data, batch_size: int, shuffle: bool, seed, max_steps, placement) -> None:
        """The epoch's layout: ``whole_steps`` batches of ``batch_size``, then ``rest`` samples."""
        self.data = data
        self.count = data.count
        self.batch_size = whole_batch_size(batch_size, self.count, placement)
        self.whole_steps = self.count // self.batch_size
        self.rest = self.count - self.whole_steps * self.batch_size
        self.steps = self.whole_steps + (1 if self.rest else 0)
        self.steps_per_epoch = self.steps if max_steps is None else min(int(max_steps), self.steps)
        self.shuffle = shuffle
        self.seed = seed

    def order(self, epoch: int):
        """The epoch's row order: a permutation ``(count,)``, or None for the stored order."""
        return np.random.default_rng([*self.seed, epoch]).permutation(self.count) if self.shuffle else None

    @property
    def on_device(self):
        """All the data on the device, put there on first use (once per fit)."""
        if self._on_device is None:
            self._on_device = device_data(self.data)
        return self._on_device

    def epoch(self, epoch: int) -> tuple:
        """``(data, indices, last)`` for ``epoch``: the data of the whole batches and their row
        order (``(whole_steps * batch_size,)`` int32), or the data already in that order and
        ``None``; ``last``: the short last batch on the device, or None when there is none (or
        ``steps_per_epoch`` stops before it)."""
        if not self.shuffle and self._unshuffled is not None:
            return self._unshuffled
        order = self.order(epoch)
        if order is None:
            order = np.arange(self.count)
        whole_rows = self.whole_steps * self.batch_size
        head, tail = order[:whole_rows], order[whole_rows:]
        last = None
        if len(tail) and self.steps_per_epoch > self.whole_steps:
            last = put_batch(as_tree(self.data.take(tail)), self.placement)
        if not whole_rows:
            data, indices = None, None
        elif self.placement is not None:
            data, indices = self.placement.put(as_tree(self.data.take(head)), self.whole_steps), None
        elif not self.shuffle:
            data, indices = self.on_device, None  # its first rows are the whole batches, in order
        elif not self.reorder_per_epoch:
            data, indices = self.on_device, jax.device_put(head.astype(np.int32))
        else:
            data, indices = device_data(self.data.take(head)), None
        result = (data, indices, last)
        if not self.shuffle:
            self._unshuffled = result
        return result


class StreamingSource(ArraySource):
    """Arrays over the device-memory budget: each epoch, chunks of ``chunk_steps`` whole batches
    in the epoch's row order (so the batches, and the results, are those of ``ArraySource``),
    then the short last batch. At most two chunks are on the device at once."""

    def __init__(self, data: streaming.StreamedArrays, batch_size: int, *, shuffle: bool, seed: tuple[int, int],
                 max_steps: int | None = None, placement=None, budget: int):
        self._plan(data, batch_size, shuffle, seed, max_steps, placement)
        self.placement = placement
        self.budget = budget
        self.chunk_steps = streaming.chunk_steps(data, self.batch_size, budget)
        # With ``epochs`` set (fit), the next epoch's first chunk is read while this epoch's last
        # chunks train; without (evaluate, validation), nothing is read ahead.
        self.epochs: int | None = None
        self._ahead = ReadAhead()
        self._drawn = None  # (epoch, row order) last drawn: the read-ahead draws the next epoch's

    def _epoch_order(self, epoch: int):
        """``order(epoch)``, drawn once per epoch (a permutation of a large file takes tens of ms)."""
        if self._drawn is None or self._drawn[0] != epoch:
            self._drawn = (epoch, self.order(epoch))
        return self._drawn[1]

    @staticmethod
    def _rows(order, begin: int, end: int):
        """Rows ``begin`` to ``end`` of an epoch whose row order is ``order`` (None: stored order)."""
        return slice(begin, end) if order is None else order[begin:end]

    def _chunk(self, order, begin: int, end: int):
        """Whole batches ``begin`` to ``end`` of the epoch whose row order is ``order``, read and
        checked on the host, as a tree of arrays."""
        size = self.batch_size
        return as_tree(self.data.take(self._rows(order, begin * size, end * size)))

    def _key(self, epoch: int, begin: int, end: int) -> tuple:
        return (epoch if self.shuffle else None, begin, end)

    def blocks(self, epoch: int, first: int = 0):
        """The epoch's blocks from batch ``first`` on: ``WholeBatches`` per chunk, then ``OneBatch``."""
        order = self._epoch_order(epoch)
        size = self.batch_size
        stop = min(self.steps_per_epoch, self.whole_steps)

        def host_chunks():
            for begin in range(first, stop, self.chunk_steps):
                end = min(begin + self.chunk_steps, stop)
                tree = self._ahead.take(self._key(epoch, begin, end), functools.partial(self._chunk, order, begin, end))
                if end == stop and self.epochs is not None and epoch + 1 < self.epochs:
                    after = min(self.chunk_steps, stop)
                    self._ahead.start(self._key(epoch + 1, 0, after),
                                      functools.partial(self._chunk, self._epoch_order(epoch + 1), 0, after))
                yield tree, end - begin

        # Before a chunk goes to the device, the one before the current chunk must be done.
        fences: list = []

        def fence(result):
            fences.append(jnp.copy(jax.tree_util.tree_leaves(result)[0]))

        for tree, steps in prefetched(host_chunks(), depth=1):
            if len(fences) >= 2:
                jax.block_until_ready(fences.pop(0))
            data = self.placement.put(tree, steps) if self.placement is not None else jax.device_put(tree)
            del tree
            yield WholeBatches(data, None, 0, steps, size, fence)
        if self.rest and self.steps_per_epoch > self.whole_steps and first <= self.whole_steps:
            tail = self._rows(order, self.whole_steps * size, self.count)
            yield OneBatch(put_batch(as_tree(self.data.take(tail)), self.placement))


def array_source(data, batch_size: int, *, shuffle: bool, seed: tuple[int, int], max_steps: int | None = None,
                 placement=None, budget: int | None = None) -> ArraySource:
    """``StreamingSource`` for streamed arrays, else ``ArraySource``."""
    if isinstance(data, streaming.StreamedArrays):
        budget = streaming.default_budget() if budget is None else budget
        return StreamingSource(data, batch_size, shuffle=shuffle, seed=seed, max_steps=max_steps,
                               placement=placement, budget=budget)
    return ArraySource(data, batch_size, shuffle=shuffle, seed=seed, max_steps=max_steps, placement=placement)


def split_for_validation(data, fraction: float):
    """The last ``fraction`` of the samples for validation (streamed arrays: views, nothing read)."""
    if not isinstance(data, streaming.StreamedArrays):
        return fit_data.split_for_validation(data, fraction)
    cut = fit_data.validation_cut(data.count, fraction)
    return data.rows(slice(0, cut)), data.rows(slice(cut, None))


class IterableSource:
    """Batches from an iterable; ``steps_per_epoch`` bounds an epoch (required for endless ones)."""

    seed = (0, 0)  # an iterable keeps its own order: no shuffle seed

    def __init__(self, model, config, iterable, steps_per_epoch: int | None, *, role: str, placement=None):
        self.model, self.config, self.role = model, config, role
        self.placement = placement
        self.iterable = iterable
        self.steps = steps_per_epoch
        self._iterator: Iterator | None = None
        self._peeked = None

    def _next_raw(self):
        if self._iterator is None:
            self._iterator = iter(self.iterable)
        return next(self._iterator)

    def peek(self) -> ArrayData:
        """The first batch, checked (kept for the first epoch): tells the labels' shapes."""
        if self._peeked is None:
            try:
                raw = self._next_raw()
            except StopIteration:
                raise DataError(f"{self.role}: the data iterable produced no batches.") from None
            self._peeked = self._check(raw)
        return self._peeked

    def epoch_batches(self) -> Iterator[tuple]:
        """Yields one batch at a time, on the device at its own size (``(inputs, targets, weights)``),
        read, checked and placed up to ``PREFETCH_BATCHES`` batches ahead on a background thread."""
        return prefetched(self._read_epoch(), depth=PREFETCH_BATCHES)

    def _read_epoch(self) -> Iterator[tuple]:
        produced = 0
        while self.steps is None or produced < self.steps:
            try:
                if self._peeked is not None:
                    batch, self._peeked = self._peeked, None
                else:
                    batch = self._check(self._next_raw())
            except StopIteration:
                self._iterator = None
                if self.steps is not None and produced < self.steps:
                    raise DataError(
                        f"{self.role}: the data ran out after {produced} of steps_per_epoch={self.steps} batches; "
                        "give a repeating generator or a smaller steps_per_epoch."
                    ) from None
                break
            yield put_batch(as_tree(batch), self.placement)
            produced += 1
        if produced == 0:
            raise DataError(f"{self.role}: the data iterable produced no batches.")

    def _check(self, raw) -> ArrayData:
        if not isinstance(raw, (tuple, list)) or len(raw) not in (2, 3):
            raise DataError(
                f"{self.role}: each batch from the iterable must be (x, y) or (x, y, sample_weight), received "
                f"{type(raw).__name__}{'' if not isinstance(raw, (tuple, list)) else ' of length ' + str(len(raw))}."
            )
        x, y, weights = (*raw, None) if len(raw) == 2 else raw
        return fit_arrays(self.model, self.config, x, y, weights, role=self.role)

def is_array_like(value) -> bool:
    return hasattr(value, "shape") or isinstance(value, (list, tuple, dict))


def array_data(model, config, x, y, sample_weight, class_weight, *, role: str, budget: int | None):
    """``ArrayData`` (checked and converted, in memory), or ``StreamedArrays`` when the arrays
    take more than ``budget`` bytes (None: ``streaming.default_budget()``)."""
    size = streaming.data_bytes(x, y, sample_weight) if x is not None and y is not None else None
    if size is not None and size > (streaming.default_budget() if budget is None else budget):
        return streaming.StreamedArrays.of(model, config, x, y, sample_weight, class_weight, role=role)
    return fit_arrays(model, config, x, y, sample_weight, class_weight, role=role)


def make_source(model, config, x, y, sample_weight, class_weight, batch_size, steps, *, shuffle, role, placement=None,
                budget: int | None = None):
    """Arrays (one, a list or a dict of them; streamed past ``budget`` bytes) or an iterable of
    ``(x, y[, sample_weight])`` batches."""
    if is_array_like(x) or x is None:
        data = array_data(model, config, x, y, sample_weight, class_weight, role=role, budget=budget)
        if placement is not None:
            placement.distribution.check_batch_size(batch_size, role)
        return array_source(data, batch_size, shuffle=shuffle, seed=seeding.next_ticket(), max_steps=steps,
                            placement=placement, budget=budget)
    if y is not None or sample_weight is not None or class_weight is not None:
        raise DataError(f"{role}: when x is an iterable of batches, pass y and weights inside it, not as arguments.")
    if not hasattr(x, "__iter__"):
        raise DataError(
            f"{role}: x must be arrays (one, a list or a dict of them) or an iterable of (x, y) batches, "
            f"received {type(x).__name__}."
        )
    return IterableSource(model, config, x, steps, role=role, placement=placement)


def prediction_inputs(model, iterable) -> Iterator[list]:
    """Per batch of ``iterable`` (``x``, or a tuple/list ``(x,)``, ``(x, y)``, ``(x, y, weights)``
    as Keras unpacks it), the checked input arrays in ``model.input_names`` order, read ahead on
    a background thread."""
    if not hasattr(iterable, "__iter__"):
        raise DataError(
            f"predict: x must be arrays (one, a list or a dict of them) or an iterable of batches, received "
            f"{type(iterable).__name__}."
        )

    def read():
        for raw in iterable:
            if isinstance(raw, (tuple, list)) and len(raw) in (1, 2, 3) and not _is_input_list(model, raw):
                raw = raw[0]
            arrays = model_input_arrays(model, raw)
            check_embedding_ids(model, arrays)
            yield arrays

    return prefetched(read(), depth=PREFETCH_BATCHES)


def _is_input_list(model, raw) -> bool:
    """Whether ``raw`` is the list of a multi-input model's inputs rather than ``(x, y, ...)``."""
    return isinstance(raw, list) and len(model.inputs) == len(raw) > 1 and all(hasattr(a, "shape") for a in raw)


def label_shapes(source) -> list:
    """Per output, the shape of one label (None for an output trained without labels)."""
    data = source.data if isinstance(source, ArraySource) else source.peek()
    return [None if t is None else tuple(t.shape[1:]) for t in data.targets]


def dispatches(source, epoch: int, first: int = 0) -> Iterator[WholeBatches | OneBatch]:
    """The steps of one epoch from batch ``first`` on: for arrays, the whole batches as one
    ``WholeBatches`` block, then the short last batch as a ``OneBatch``; for an iterable, one
    ``OneBatch`` per batch read (its first ``first`` batches are read and skipped)."""
    if isinstance(source, StreamingSource):
        yield from source.blocks(epoch, first)
    elif isinstance(source, ArraySource):
        data, indices, last = source.epoch(epoch)
        stop = min(source.steps_per_epoch, source.whole_steps)
        if first < stop:
            yield WholeBatches(data, indices, first, stop, source.batch_size)
        if last is not None and first <= source.whole_steps:
            yield OneBatch(last)
    else:
        for position, data in enumerate(source.epoch_batches()):
            if position >= first:
                yield OneBatch(data)


def validation_source(model, config, validation_data, batch_size, steps, placement, budget: int | None = None):
    """``(x, y)`` or ``(x, y, sample_weight)`` arrays (streamed past ``budget`` bytes), or an
    iterable of batches."""
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and is_array_like(validation_data[0]):
        x, y, *weights = validation_data
        data = array_data(model, config, x, y, weights[0] if weights else None, None, role="validation_data",
                          budget=budget)
        if placement is not None:
            placement.distribution.check_batch_size(batch_size, "validation_data")
        return array_source(data, batch_size, shuffle=False, seed=(0, 0), max_steps=steps, placement=placement,
                            budget=budget)
    return make_source(model, config, validation_data, None, None, None, batch_size, steps, shuffle=False,
                       role="validation_data", placement=placement, budget=budget)
