"""The autocast scope: while a mixed-precision layer computes, its floating weights read as the
compute dtype.

``Layer._call_arrays`` opens ``autocast(layer.compute_dtype)`` around ``call`` when the layer's
policy is mixed (``None`` otherwise, so a float32 layer nested in a mixed one reads its weights
as they are), and ``Variable.value`` casts inside it. The cast is part of the traced function, so
gradients flow back to the stored float32 weights. Weights declared with ``autocast=False``
(normalization parameters and statistics) always read in their own dtype.

The scope is a ``contextvars`` context (per thread and per asyncio task) and only consulted while
a layer's ``call`` runs (at trace time under ``jax.jit``); it never changes a stored value.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_DTYPE: contextvars.ContextVar = contextvars.ContextVar("kfunc_autocast", default=None)


def current_dtype():
    """The dtype floating weights are read in right now, or ``None`` (as stored)."""
    return _DTYPE.get()


@contextlib.contextmanager
def autocast(dtype) -> Iterator[None]:
    """Read floating weights as ``dtype`` (a ``jnp.dtype``, or ``None`` for no casting) in the block."""
    token = _DTYPE.set(dtype)
    try:
        yield
    finally:
        _DTYPE.reset(token)
