"""The values a trace lends to variables: one ``contextvars`` context per pure call.

``bind(variables, values)`` opens a ``Binding`` for the block: while it is open, in this thread
(and this asyncio task) only, ``variable.value`` reads the lent value and ``variable.assign``
records an update in the binding instead of writing the variable. Nothing is stored on the
``Variable`` objects, which are shared by every caller: two threads applying different parameters
to one model at the same time each see their own values (Keras 3 keeps its stateless scope per
thread the same way). Bindings nest: an inner ``bind`` shadows the outer one for the variables it
names and falls through to the outer one for the others.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

_CURRENT: contextvars.ContextVar[Binding | None] = contextvars.ContextVar("kfunc_binding", default=None)


class Binding:
    """Values lent to variables during one pure call (``values``: ``id(variable) -> array``), the
    updates the call made (``updates``: ``variable -> array``), and the enclosing binding."""

    __slots__ = ("values", "updates", "parent")

    def __init__(self, values: dict, parent: Binding | None):
        self.values = values
        self.updates: dict = {}
        self.parent = parent

    def owner_of(self, variable) -> Binding | None:
        """The innermost binding (this one or an enclosing one) that lends ``variable`` a value."""
        binding = self
        key = id(variable)
        while binding is not None:
            if key in binding.values:
                return binding
            binding = binding.parent
        return None


def bound_value(variable) -> tuple[bool, object]:
    """``(True, value)`` when a binding of the current context lends ``variable`` a value, else
    ``(False, None)``."""
    current = _CURRENT.get()
    owner = None if current is None else current.owner_of(variable)
    return (True, owner.values[id(variable)]) if owner is not None else (False, None)


def record_update(variable, value) -> bool:
    """Inside a binding that lends ``variable`` a value: record ``value`` as its update (later
    reads in the same call see it) and return True; otherwise return False."""
    current = _CURRENT.get()
    owner = None if current is None else current.owner_of(variable)
    if owner is None:
        return False
    owner.values[id(variable)] = value
    owner.updates[variable] = value
    return True


def in_pure_call() -> bool:
    """Whether a binding is open in the current context."""
    return _CURRENT.get() is not None


@contextlib.contextmanager
def bind(variables: Sequence, values: Sequence) -> Iterator[Binding]:
    """Lend ``values[i]`` to ``variables[i]`` in this context while the block runs."""
    lent = {id(variable): value for variable, value in zip(variables, values, strict=True)}
    binding = Binding(lent, _CURRENT.get())
    token = _CURRENT.set(binding)
    try:
        yield binding
    finally:
        _CURRENT.reset(token)
