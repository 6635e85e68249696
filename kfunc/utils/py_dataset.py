"""``PyDataset``: Keras 3's base class for data made batch by batch in Python.

Subclasses define ``__len__`` (batches per epoch) and ``__getitem__(index)`` (one batch:
``(x, y)`` or ``(x, y, sample_weight)``); ``on_epoch_begin`` / ``on_epoch_end`` run around each
pass. ``fit``, ``evaluate`` and ``predict`` take one as ``x`` (and ``fit`` as ``validation_data``)
through their iterable path: iterating a ``PyDataset`` yields its batches in order and then calls
``on_epoch_end``, so each epoch is one pass.
"""

from __future__ import annotations

from collections.abc import Iterator

from kfunc.errors import ArgumentError


class PyDataset:
    """``workers``, ``use_multiprocessing``, ``max_queue_size``: Keras's arguments, kept for
    compatibility; kfunc reads the batches in order on one background thread, two ahead of the
    step, and puts each on the device before the step that needs it."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        for argument, value in (("workers", workers), ("max_queue_size", max_queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"PyDataset: {argument} must be a positive int, received {value!r}.")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    @property
    def workers(self) -> int:
        return self.__dict__.get("_workers", 1)

    @property
    def use_multiprocessing(self) -> bool:
        return self.__dict__.get("_use_multiprocessing", False)

    @property
    def max_queue_size(self) -> int:
        return self.__dict__.get("_max_queue_size", 10)

    def __getitem__(self, index):
        """Batch ``index`` (``0 <= index < len(self)``)."""
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(self, index) returning one batch.")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__(self): the number of batches.")

    @property
    def num_batches(self) -> int:
        """The number of batches of one epoch (``len(self)``)."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before the first batch of each pass."""

    def on_epoch_end(self) -> None:
        """Called after the last batch of each pass (e.g. to reshuffle)."""

    def __iter__(self) -> Iterator:
        self.on_epoch_begin()
        for index in range(len(self)):
            yield self[index]
        self.on_epoch_end()


# Keras 2's name, still exported by Keras 3.
Sequence = PyDataset
