"""``vectorize`` of ``keras.ops`` (NumPy name): a function of single elements (or of core
shapes, given a ``signature``) made to map over leading batch axes."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.operation import values_only


def vectorize(pyfunc, *, excluded=None, signature=None):
    """``pyfunc`` applied over all leading axes by ``jax.vmap`` (NumPy's ``vectorize``):
    ``excluded`` names positional indices or keywords passed through unmapped; ``signature`` such
    as ``"(n),(n)->()"`` gives the core shapes. The returned function works on arrays and
    Variables, e.g. inside a custom layer's ``call``; on symbolic tensors it refuses (wrap it in a
    ``Lambda`` layer)."""
    return values_only("vectorize", jnp.vectorize(pyfunc, excluded=set() if excluded is None else excluded,
                                                  signature=signature))


__all__ = ["vectorize"]
