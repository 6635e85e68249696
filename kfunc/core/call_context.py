"""The training flag of the layer call in progress, for the layers called inside it.

A layer whose ``call`` calls other layers (a subclassed model, a custom block) often does not
pass ``training`` on: ``self.dropout(x)``. Keras 3 hands such inner calls the flag of the
enclosing call; ``Layer`` does the same through this scope, opened around each ``call`` with
the flag it received. A ``contextvars`` context of the call (per thread and asyncio task), only
read while a layer's ``call`` runs, never stored on a layer.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_TRAINING: contextvars.ContextVar = contextvars.ContextVar("kfunc_training", default=None)


def enclosing_training():
    """The ``training`` flag of the enclosing layer call, or ``None`` outside any call that set one."""
    return _TRAINING.get()


@contextlib.contextmanager
def training_scope(training) -> Iterator[None]:
    """Make ``training`` (a bool, or ``None`` to keep the enclosing flag) the flag of the block."""
    if training is None:
        yield
        return
    token = _TRAINING.set(training)
    try:
        yield
    finally:
        _TRAINING.reset(token)
