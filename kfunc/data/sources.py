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
``IterableSource`` reads one batch at a time from a generator (or any iterable of
``(x, y)`` / ``(x, y, sample_weight)``) and sends it to the device as it is.
``dispatches`` describes an epoch as ``WholeBatches`` blocks (for the compiled loop) and
``OneBatch`` steps. ``make_source`` picks the source for what the user passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from kfunc import seeding
from kfunc.data.arrays import DataError
from kfunc.data.fit_data import ArrayData, fit_arrays


SMALL_ROW_BYTES = 512


class WholeBatches(NamedTuple):
    """Steps ``start`` to ``stop`` of an epoch, each a whole batch of ``batch_size`` rows taken
    from ``data`` on the device: contiguous rows when ``indices`` is None (the data is in epoch
    order), else the rows ``indices[step * batch_size:][:batch_size]``."""

    data: Any
    indices: Any
    start: int
    stop: int
    batch_size: int


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
        self.data = data
        self.count = data.count
        self.batch_size = whole_batch_size(batch_size, self.count, placement)
        self.whole_steps = self.count // self.batch_size
        self.rest = self.count - self.whole_steps * self.batch_size
        self.steps = self.whole_steps + (1 if self.rest else 0)
        self.steps_per_epoch = self.steps if max_steps is None else min(int(max_steps), self.steps)
        self.shuffle = shuffle
        self.seed = seed
        leaves = jax.tree_util.tree_leaves((data.inputs, data.targets, data.weights))
        self.placement = placement  # a distribution's DataPlacement: the host arranges every epoch
        row_bytes = sum(a.dtype.itemsize * int(np.prod(a.shape[1:])) for a in leaves)
        self.reorder_per_epoch = placement is not None or row_bytes <= SMALL_ROW_BYTES
        self._on_device = None
        self._unshuffled = None

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
        if self.shuffle:
            order = np.random.default_rng([*self.seed, epoch]).permutation(self.count)
        else:
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
        """Yields one batch at a time, on the device at its own size (``(inputs, targets, weights)``)."""
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


def make_source(model, config, x, y, sample_weight, class_weight, batch_size, steps, *, shuffle, role, placement=None):
    """Arrays (one, a list or a dict of them) or an iterable of ``(x, y[, sample_weight])`` batches."""
    if is_array_like(x) or x is None:
        data = fit_arrays(model, config, x, y, sample_weight, class_weight, role=role)
        if placement is not None:
            placement.distribution.check_batch_size(batch_size, role)
        return ArraySource(data, batch_size, shuffle=shuffle, seed=seeding.next_ticket(), max_steps=steps,
                           placement=placement)
    if y is not None or sample_weight is not None or class_weight is not None:
        raise DataError(f"{role}: when x is an iterable of batches, pass y and weights inside it, not as arguments.")
    if not hasattr(x, "__iter__"):
        raise DataError(
            f"{role}: x must be arrays (one, a list or a dict of them) or an iterable of (x, y) batches, "
            f"received {type(x).__name__}."
        )
    return IterableSource(model, config, x, steps, role=role, placement=placement)


def label_shapes(source) -> list:
    """Per output, the shape of one label (None for an output trained without labels)."""
    data = source.data if isinstance(source, ArraySource) else source.peek()
    return [None if t is None else tuple(t.shape[1:]) for t in data.targets]


def dispatches(source, epoch: int, first: int = 0) -> Iterator[WholeBatches | OneBatch]:
    """The steps of one epoch from batch ``first`` on: for arrays, the whole batches as one
    ``WholeBatches`` block, then the short last batch as a ``OneBatch``; for an iterable, one
    ``OneBatch`` per batch read (its first ``first`` batches are read and skipped)."""
    if isinstance(source, ArraySource):
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


def validation_source(model, config, validation_data, batch_size, steps, placement):
    """``(x, y)`` or ``(x, y, sample_weight)`` arrays, or an iterable of batches."""
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and is_array_like(validation_data[0]):
        x, y, *weights = validation_data
        data = fit_arrays(model, config, x, y, weights[0] if weights else None, role="validation_data")
        if placement is not None:
            placement.distribution.check_batch_size(batch_size, "validation_data")
        return ArraySource(data, batch_size, shuffle=False, seed=(0, 0), max_steps=steps, placement=placement)
    return make_source(model, config, validation_data, None, None, None, batch_size, steps, shuffle=False,
                       role="validation_data", placement=placement)
