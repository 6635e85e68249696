"""Reading ahead on a background thread: the host prepares the next items while the device works.

``prefetched(items, depth)`` runs the iterator ``items`` on a daemon thread and hands its items
over in order through a queue of ``depth`` places, so at most ``depth`` finished items (plus the
one being made) wait at any time: memory stays bounded. An exception raised by ``items`` is
raised again, in order, by the consumer; a consumer that stops early (a ``break``, an error, a
``KeyboardInterrupt``) stops the thread at its next hand-over. The thread runs in a copy of the
caller's ``contextvars`` context.
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
