"""Where training batches come from: arrays put on the device once, or an iterable of batches.

``ArraySource`` keeps every array on the device for the whole fit; each epoch is a permutation
of row indices (drawn on the host with NumPy, a few kilobytes sent per epoch) padded to whole
batches. With large rows the compiled step gathers its batch's rows itself; with small rows
(where XLA's CPU gather costs more than the step: 40k against 70k steps/s for a 32-feature
model) the host reorders the data for each epoch with NumPy, while the device still trains the
previous epoch, and the step slices contiguous rows (measured: 0.91x of a fused hand-written
loop that never reshuffles, against 0.78x when the device reorders).
``IterableSource`` reads one batch at a time from a generator (or any iterable of
``(x, y)`` / ``(x, y, sample_weight)``), pads it to the batch size and sends it to the device.
Both describe a dispatch the same way (``dispatches``): ``(data, indices, start, stop, count,
batch_size)`` for the compiled loop. ``make_source`` picks the source for what the user passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import numpy as np

from kfunc import seeding
from kfunc.data.arrays import DataError
from kfunc.data.fit_data import ArrayData, fit_arrays


SMALL_ROW_BYTES = 512


def as_tree(data: ArrayData) -> tuple:
    """``(inputs, targets, weights)``: the pytree the compiled steps take."""
    return data.inputs, data.targets, data.weights


def device_data(data: ArrayData):
    """``(inputs, targets, weights)`` on the default device."""
    return jax.device_put(as_tree(data))


class ArraySource:
    """In-memory arrays: ``steps`` batches per epoch, the last padded with repeated rows that
    carry zero weight. ``seed``: a seeding ticket; epoch ``e`` is shuffled by NumPy's generator
    seeded with ``(*seed, e)``, so a run's data order is reproducible and resumable."""

    def __init__(self, data: ArrayData, batch_size: int, *, shuffle: bool, seed: tuple[int, int], max_steps: int | None = None,
                 placement=None):
        self.data = data
        self.count = data.count
        self.batch_size = batch_size
        self.steps = math.ceil(self.count / batch_size)
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
        """``(data, indices)`` for ``epoch``: the device data and its row order (``(steps *
        batch_size,)`` int32, the padding of the last batch repeating the first rows), or the data
        already in that order and ``None``."""
        if not self.shuffle and self._unshuffled is not None:
            return self._unshuffled
        total = self.steps * self.batch_size
        if self.shuffle:
            order = np.random.default_rng([*self.seed, epoch]).permutation(self.count)
        else:
            order = np.arange(self.count)
        order = np.resize(order, total).astype(np.int32)
        if not self.reorder_per_epoch:
            result = (self.on_device, jax.device_put(order))
        elif self.placement is not None:
            result = (self.placement.put(as_tree(self.data.take(order)), self.steps), None)
        elif not self.shuffle and total == self.count:
            result = (self.on_device, None)
        else:
            result = (device_data(self.data.take(order)), None)
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
        self.batch_size: int | None = None
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
        """Yields ``(data, count)`` for one step at a time: one batch on the device, padded to the
        batch size, of which the first ``count`` rows are real."""
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
            yield self._to_device(batch)
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

    def _to_device(self, batch: ArrayData):
        if self.batch_size is None or batch.count > self.batch_size:
            self.batch_size = batch.count
        count = batch.count
        if count < self.batch_size:
            pad = np.concatenate([np.arange(count), np.zeros(self.batch_size - count, np.int64)])
            batch = batch.take(pad)
        if self.placement is not None:
            return self.placement.put(as_tree(batch), 1), count
        return device_data(batch), count


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


def dispatches(source, epoch: int, first: int = 0):
    """``(data, indices, start, stop, count, batch_size)`` for each block of steps of one epoch
    from batch ``first`` on: the rest of the epoch for arrays, one batch at a time for an
    iterable (whose first ``first`` batches are read and skipped)."""
    if isinstance(source, ArraySource):
        data, indices = source.epoch(epoch)
        count = None if source.count % source.batch_size == 0 else source.count  # None: no padding
        yield data, indices, first, source.steps_per_epoch, count, source.batch_size
    else:
        for position, (data, count) in enumerate(source.epoch_batches()):
            if position >= first:
                yield data, None, 0, 1, count, source.batch_size


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
