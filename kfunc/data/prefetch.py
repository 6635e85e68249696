"""Reading ahead on a background thread: the host prepares the next items while the device works.

``prefetched(items, depth)`` runs the iterator ``items`` on a daemon thread and hands its items
over in order through a queue of ``depth`` places, so at most ``depth`` finished items (plus the
one being made) wait at any time: memory stays bounded. An exception raised by ``items`` is
raised again, in order, by the consumer; a consumer that stops early (a ``break``, an error, a
``KeyboardInterrupt``) stops the thread at its next hand-over. The thread runs in a copy of the
caller's ``contextvars`` context. ``ReadAhead`` makes one item ahead for a later call that asks
for it by key (a streamed epoch's first chunk, read while the epoch before trains).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator

_POLL_SECONDS = 0.1  # how often a producer waiting on a full queue checks whether it should stop
_END = object()


class _Raised:
    """An exception of the producer, carried to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """Yields the items of ``items`` in order, made up to ``depth`` items ahead on a thread."""
    handover: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def offer(value) -> bool:
        while not stop.is_set():
            try:
                handover.put(value, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as error:  # noqa: BLE001 (every error goes to the consumer)
            offer(_Raised(error))
            return
        offer(_END)

    # The thread sees the caller's context (settings kept in context variables).
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), name="kfunc-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            value = handover.get()
            if value is _END:
                return
            if isinstance(value, _Raised):
                raise value.error
            yield value
    finally:
        stop.set()
        close = getattr(items, "close", None)
        if close is not None and not worker.is_alive():
            close()


class ReadAhead:
    """At most one item made ahead on a background thread, handed to the call that asks for its
    key; starting another forgets the one before (its thread ends on its own, its item unused)."""

    def __init__(self):
        self._pending = None  # (key, thread, box): box gets "value" or "error"

    def start(self, key, make) -> None:
        """Begin ``make()`` on a thread (in a copy of the caller's context) for ``key``."""
        box: dict = {}

        def run() -> None:
            try:
                box["value"] = make()
            except BaseException as error:  # noqa: BLE001 (raised again by the call that takes it)
                box["error"] = error

        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(run,), name="kfunc-read-ahead", daemon=True)
        worker.start()
        self._pending = (key, worker, box)

    def take(self, key, make):
        """The item made ahead for ``key`` (waiting for it; its error raised here), else ``make()``."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != key:
            return make()
        _, worker, box = pending
        worker.join()
        if "error" in box:
            raise box["error"]
        return box["value"]
