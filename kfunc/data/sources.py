"""Where training batches come from: arrays put on the device once, or an iterable of batches.

``ArraySource`` keeps every array on the device for the whole fit; each epoch is a permutation
of row indices (drawn on the host with NumPy, a few kilobytes sent per epoch) padded to whole
batches, and the compiled step gathers its rows itself.
``IterableSource`` reads one batch at a time from a generator (or any iterable of
``(x, y)`` / ``(x, y, sample_weight)``), pads it to the batch size and sends it to the device.
Both describe a dispatch the same way: ``(data, indices, count)`` for the compiled loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.data.arrays import DataError
from kfunc.data.fit_data import ArrayData, fit_arrays


def device_data(data: ArrayData):
    """``(inputs, targets, weights)`` on the default device."""
    return jax.device_put((data.inputs, data.targets, data.weights))


class ArraySource:
    """In-memory arrays: ``steps`` batches per epoch, the last padded with repeated rows that
    carry zero weight. ``seed``: a seeding ticket; epoch ``e`` is shuffled by NumPy's generator
    seeded with ``(*seed, e)``, so a run's data order is reproducible and resumable."""

    def __init__(self, data: ArrayData, batch_size: int, *, shuffle: bool, seed: tuple[int, int], max_steps: int | None = None):
        self.data = data
        self.count = data.count
        self.batch_size = batch_size
        self.steps = math.ceil(self.count / batch_size)
        self.steps_per_epoch = self.steps if max_steps is None else min(int(max_steps), self.steps)
        self.shuffle = shuffle
        self.seed = seed
        self.on_device = device_data(data)
        self._in_order = None

    def epoch_indices(self, epoch: int) -> jax.Array:
        """Row order of ``epoch``: ``(steps * batch_size,)`` int32 on the device, the tail
        (padding of the last batch) repeating the first rows."""
        if not self.shuffle and self._in_order is not None:
            return self._in_order
        order = (
            np.random.default_rng([*self.seed, epoch]).permutation(self.count)
            if self.shuffle
            else np.arange(self.count)
        )
        total = self.steps * self.batch_size
        order = np.resize(order, total).astype(np.int32)
        indices = jax.device_put(order)
        if not self.shuffle:
            self._in_order = indices
        return indices


class IterableSource:
    """Batches from an iterable; ``steps_per_epoch`` bounds an epoch (required for endless ones)."""

    def __init__(self, model, config, iterable, steps_per_epoch: int | None, *, role: str):
        self.model, self.config, self.role = model, config, role
        self.iterable = iterable
        self.steps = steps_per_epoch
        self._iterator: Iterator | None = None
        self.batch_size: int | None = None
        self._positions = None
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
        """Yields ``(data, indices, count)`` for one step at a time."""
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
            self._positions = jnp.arange(self.batch_size, dtype=jnp.int32)
        count = batch.count
        if count < self.batch_size:
            pad = np.concatenate([np.arange(count), np.zeros(self.batch_size - count, np.int64)])
            batch = batch.take(pad)
        return device_data(batch), self._positions, count
