"""Helpers for tests: count XLA compilations while a block runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCount:
    """``count``: XLA backend compilations seen inside the ``count_compilations`` block;
    ``names``: the compiled functions' names, in order."""

    def __init__(self):
        self.names: list[str] = []

    @property
    def count(self) -> int:
        return len(self.names)

    def of(self, name: str) -> int:
        """How many compilations were of functions whose name contains ``name``."""
        return sum(name in n for n in self.names)


@contextlib.contextmanager
def count_compilations() -> Iterator[CompileCount]:
    """``with count_compilations() as c: ...`` then ``c.count`` is the number of compilations."""
    counter = CompileCount()

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == _COMPILE_EVENT:
            counter.names.append(str(kwargs.get("fun_name", "")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
