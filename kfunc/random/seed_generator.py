"""SeedGenerator and how every ``kfunc.random`` function turns its ``seed=`` into a JAX key.

Keras 3's semantics: an int seed gives the same draw at every call; a ``SeedGenerator`` gives a new
draw at every call; ``None`` uses one global generator. On top of that, kfunc keeps training pure:

- Inside a layer's ``call`` run with a key (``model.apply(..., key=)``, every ``fit`` step), a
  generator's draw is ``fold_in(fold_in(call_key, generator.seed), n)`` for its ``n``-th draw in
  that call: it comes from the step's key, so the compiled step reads and writes no global state,
  and training resumes exactly from a saved step.
- Anywhere else (eager code), the generator keeps its own state ``(seed, draws)`` and advances it,
  drawing with the raw key ``[seed, draws]`` exactly as Keras 3 on JAX does, so eager draws equal
  Keras's bit for bit.
"""

from __future__ import annotations

import random as python_random

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import naming, seeding
from kfunc.errors import SeedError, describe_value


class SeedGenerator:
    """A stream of random keys: pass it as ``seed=`` to ``kfunc.random`` functions.

    ``seed``: an int, or None for one drawn from Python's ``random`` (which
    ``kfunc.utils.set_random_seed`` seeds, as in Keras). Held by a layer as an attribute, it makes
    the layer receive a key in training (as ``Dropout`` does), from which its draws then come.
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if kwargs:
            raise SeedError(
                f"SeedGenerator got unexpected keyword argument(s) {sorted(kwargs)}; it takes seed= and name= "
                "(kfunc has one backend, JAX)."
            )
        self._initial_seed = seed
        if seed is None:
            seed = python_random.randint(1, int(1e9))  # Keras's default seed range
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise SeedError(f"SeedGenerator: seed must be an int or None, received {describe_value(seed)}.")
        self.seed = int(seed) % 2**32
        self.name = name if name is not None else naming.unique_name("seed_generator")
        self._draws = 0  # the eager state; never touched inside a call that has a key

    @property
    def state(self) -> np.ndarray:
        """``uint32[2]``: ``[seed, number of eager draws so far]``, Keras 3's state layout."""
        return np.array([self.seed, self._draws], np.uint32)

    def next_key(self) -> jax.Array:
        """The key of the next draw: from the call's key inside a call that has one, else from
        (and advancing) this generator's own state."""
        scope = seeding.current_call_key()
        if scope is not None:
            return jax.random.fold_in(jax.random.fold_in(scope.key, self.seed), scope.next_draw(self))
        key = jax.random.wrap_key_data(jnp.asarray(self.state))
        if isinstance(key, jax.core.Tracer):
            # Advancing a Python counter while JAX traces would bake one draw into the compiled
            # function: every call of it would repeat the same "random" numbers.
            raise SeedError(
                f"SeedGenerator '{self.name}' was asked for a draw while JAX traces a function that was "
                "given no random key; pass key=jax.random.key(...) to apply() (fit passes one), or pass a "
                "JAX key as seed= to the random function."
            )
        self._draws += 1
        return key

    def next(self, ordered=True) -> jax.Array:
        """Keras's ``next()``: the raw ``uint32[2]`` key data of the next draw."""
        return jax.random.key_data(self.next_key())

    def get_config(self) -> dict:
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> SeedGenerator:
        return cls(**config)

    def __repr__(self):
        return f"<SeedGenerator name={self.name}, seed={self.seed}>"


_GLOBAL: list[SeedGenerator] = []  # created on first use, so set_random_seed before it decides its seed


def global_seed_generator() -> SeedGenerator:
    """The generator ``seed=None`` draws from (Keras's global one)."""
    if not _GLOBAL:
        _GLOBAL.append(SeedGenerator(name="global_seed_generator"))
    return _GLOBAL[0]


def reset_global_seed_generator() -> None:
    """Forget the global generator (``set_random_seed`` and ``clear_session`` do), so the next
    ``seed=None`` draw starts a new one from Python's ``random``."""
    _GLOBAL.clear()


def draw_key(seed) -> jax.Array:
    """A JAX key for one draw from ``seed``: an int (the same key every time: Keras's ``[seed, 0]``),
    a ``SeedGenerator`` (its next key), a JAX key (typed, or raw ``uint32[2]``) as is, or None (the
    global generator)."""
    if isinstance(seed, SeedGenerator):
        return seed.next_key()
    if seed is None:
        return global_seed_generator().next_key()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return jax.random.wrap_key_data(jnp.asarray([int(seed) % 2**32, 0], jnp.uint32))
    dtype = getattr(seed, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key) and seed.shape == ():
        return seed
    if dtype is not None and tuple(getattr(seed, "shape", ())) == (2,) and jnp.dtype(dtype) == jnp.uint32:
        return jax.random.wrap_key_data(jnp.asarray(seed))
    raise SeedError(
        "seed must be an int, a kfunc.random.SeedGenerator, a JAX key (jax.random.key(...)) or None, received "
        f"{describe_value(seed)}."
    )


def holds_seed_generator(obj) -> bool:
    """Whether ``obj`` has a ``SeedGenerator`` as an attribute, or in a list, tuple or dict
    attribute (how a custom layer says it draws random numbers, as in Keras 3)."""
    for value in vars(obj).values():
        if isinstance(value, SeedGenerator):
            return True
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        if any(isinstance(item, SeedGenerator) for item in items):
            return True
    return False
