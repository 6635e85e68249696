"""Where the weights a layer owns get their random keys.

The pure API takes keys explicitly (``init(key)``, ``apply(..., key=key)``). The Keras-style API
(a layer creates its weights when it is first called) needs a key without being handed one: each
weight draws a ticket ``(seed, counter)`` from this stream when it is declared, and turns it into
``fold_in(key(seed), counter)`` only when its value is first needed. ``set_random_seed(s)`` restarts
the stream, so the same script builds the same weights, bitwise. Built-in initializers turn the
ticket into a NumPy generator instead (see ``kfunc.initializers``), which needs no compilation.
"""

import random
import secrets

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
