"""Where the weights a layer owns get their random keys.

The pure API takes keys explicitly (``init(key)``, ``apply(..., key=key)``). The Keras-style API
(a layer creates its weights when it is first called) needs a key without being handed one: each
weight draws a ticket ``(seed, counter)`` from this stream when it is declared, and turns it into
``fold_in(key(seed), counter)`` only when its value is first needed. ``set_random_seed(s)`` restarts
the stream, so the same script builds the same weights, bitwise. Built-in initializers turn the
ticket into a NumPy generator instead (see ``kfunc.initializers``), which needs no compilation.
"""

import contextlib
import contextvars
import random
import secrets
from collections.abc import Iterator

import jax
import numpy as np

_seed: int | None = None
_counter = 0


def set_random_seed(seed: int) -> None:
    """Make weight initialization, shuffling and dropout in ``fit`` repeat for the same seed.

    Also seeds Python's ``random`` and NumPy's global generator, as Keras does.
    """
    global _seed, _counter
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"set_random_seed expects an int, received {type(seed).__name__} {seed!r}.")
    _seed = int(seed) % (2**32)
    _counter = 0
    random.seed(_seed)
    np.random.seed(_seed)


def next_ticket() -> tuple[int, int]:
    """A fresh ``(seed, counter)`` pair; the seed is random unless ``set_random_seed`` was called."""
    global _seed, _counter
    if _seed is None:
        _seed = secrets.randbits(32)
    ticket = (_seed, _counter)
    _counter += 1
    return ticket


def generator_from_ticket(ticket: tuple[int, int]) -> np.random.Generator:
    """A NumPy generator for host-side draws, seeded by the whole ticket."""
    return np.random.default_rng(list(ticket))


def key_from_ticket(ticket: tuple[int, int]) -> jax.Array:
    """The key a ticket stands for: ``fold_in(key(seed), counter)``."""
    seed, counter = ticket
    return jax.random.fold_in(jax.random.key(seed), counter)


def next_key() -> jax.Array:
    """A fresh key from the stream (used by ``fit`` for shuffling and dropout)."""
    return key_from_ticket(next_ticket())


# ---------------------------------------------------------------------------- the key of a call
# A pure call (``Layer.apply(..., key=)``, each ``fit`` step) hands every layer that draws random
# numbers a key of its own. ``Layer`` opens this scope around its ``call`` with that key, so that
# ``kfunc.random`` draws made through a ``SeedGenerator`` inside ``call`` come from the step's key
# (pure, resumable) rather than from the generator's own state. A context variable of the call,
# never an attribute of a shared object: two traces in flight do not see each other's keys.


class CallKey:
    """The key of the call in progress and how many draws each ``SeedGenerator`` made from it
    (so a generator's second draw in one call differs from its first)."""

    def __init__(self, key):
        self.key = key
        self.draws: dict[int, int] = {}

    def next_draw(self, owner) -> int:
        """The index of ``owner``'s next draw in this call: 0, 1, 2 ..."""
        count = self.draws.get(id(owner), 0)
        self.draws[id(owner)] = count + 1
        return count


_CALL_KEY: contextvars.ContextVar[CallKey | None] = contextvars.ContextVar("kfunc_call_key", default=None)


@contextlib.contextmanager
def call_key_scope(key) -> Iterator[CallKey | None]:
    """Make ``key`` (a JAX key) the key of the block; ``None`` (or any value that is not a key,
    such as the ``key`` tensor of an attention layer) keeps the enclosing block's key, so a
    sublayer called without one still draws from its parent's."""
    if not is_random_key(key):
        yield _CALL_KEY.get()
        return
    scope = CallKey(key)
    token = _CALL_KEY.set(scope)
    try:
        yield scope
    finally:
        _CALL_KEY.reset(token)


def is_random_key(value) -> bool:
    """A typed JAX key (``jax.random.key``) or raw ``uint32[2]`` key data (``jax.random.PRNGKey``)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return dtype == np.uint32 and tuple(value.shape) == (2,)


def current_call_key() -> CallKey | None:
    """The ``CallKey`` of the innermost ``call_key_scope`` with a key, or None outside any."""
    return _CALL_KEY.get()
