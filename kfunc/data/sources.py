"""Where training batches come from: arrays put on the device once, or an iterable of batches.

``ArraySource`` keeps every array on the device for the whole fit; each epoch is a device-side
permutation of row indices padded to whole batches, and the step gathers its rows itself.
``IterableSource`` reads one batch at a time from a generator (or any iterable of
``(x, y)`` / ``(x, y, sample_weight)``), pads it to the batch size and sends it to the device.
Both describe a dispatch the same way: ``(data, indices, count)`` for the compiled loop.
"""

from __future__ import annotations

import functools
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


@functools.partial(jax.jit, static_argnames=("count", "total", "shuffle"))
def _epoch_order(key, *, count: int, total: int, shuffle: bool):
    order = jax.random.permutation(key, count) if shuffle else jnp.arange(count)
    repeats = -(-total // count)
    return jnp.tile(order, repeats)[:total].astype(jnp.int32)


class ArraySource:
    """In-memory arrays: ``steps`` batches per epoch, the last padded with repeated rows that
    carry zero weight."""

    def __init__(self, data: ArrayData, batch_size: int, *, shuffle: bool, key, max_steps: int | None = None):
        self.data = data
        self.count = data.count
        self.batch_size = batch_size
        self.steps = math.ceil(self.count / batch_size)
        self.steps_per_epoch = self.steps if max_steps is None else min(int(max_steps), self.steps)
        self.shuffle = shuffle
        self.key = key
        self.on_device = device_data(data)

    def epoch_indices(self, epoch: int) -> jax.Array:
        """Row order of ``epoch``: ``(steps * batch_size,)`` int32, on the device."""
        return _epoch_order(
            jax.random.fold_in(self.key, epoch), count=self.count, total=self.steps * self.batch_size, shuffle=self.shuffle
        )


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
