"""Helpers for tests: count XLA compilations while a block runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCount:
    """``count``: XLA backend compilations seen so far inside the ``count_compilations`` block."""

    def __init__(self):
        self.count = 0


@contextlib.contextmanager
def count_compilations() -> Iterator[CompileCount]:
    """``with count_compilations() as c: ...`` then ``c.count`` is the number of compilations."""
    counter = CompileCount()

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == _COMPILE_EVENT:
            counter.count += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
