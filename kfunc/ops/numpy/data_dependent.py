"""Ops of ``keras.ops`` whose output shape depends on the values of the input: ``nonzero``,
``unique`` and ``bincount``.

Under ``jax.jit`` every shape must be known before the values are, so, as Keras 3 on JAX, these
ops run eagerly only (on concrete arrays, outside ``jit``/``fit``); ``unique`` also runs traced,
and in a model graph, when ``size`` fixes its output length. On a symbolic tensor they refuse with
a ``SymbolicTensorError``; traced without a fixed size they raise a ``ValueError`` that says so.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation, record_symbolic, refuse_symbolic


def _concrete(x, name: str, fix: str):
    x = as_array(x)
    if isinstance(x, jax.core.Tracer):
        raise ValueError(
            f"kfunc.ops.{name} was called inside jax.jit (or fit/predict), where its output shape would depend on "
            f"the values of its input; {fix}."
        )
    return x


@operation("nonzero", symbolic=refuse_symbolic(
    "nonzero", "the number of nonzero entries is known only from the values",
    "use ops.where(condition, x1, x2) to keep the shape, or call nonzero on arrays outside the model"))
def nonzero(x):
    """The indices of the nonzero entries of ``x``: one int32 array ``(count,)`` per axis of ``x``
    (eager only, see the module docstring)."""
    x = _concrete(x, "nonzero", "use ops.where(condition, x1, x2) to keep the shape, or call it outside jit")
    return tuple(index.astype(jnp.int32) for index in jnp.nonzero(x))


def _unique_symbolic(x, sorted=True, return_index=False, return_inverse=False, return_counts=False, axis=None,
                     size=None, fill_value=None):
    arguments = dict(sorted=sorted, return_index=return_index, return_inverse=return_inverse,
                     return_counts=return_counts, axis=axis, size=size, fill_value=fill_value)
    if size is None:
        refuse_symbolic("unique", "without size, the number of distinct values is known only from the values",
                        "pass size=N (the output length; missing values are filled with fill_value)")(x)
    return record_symbolic("unique", (x,), arguments, [x])


@operation("unique", symbolic=_unique_symbolic)
def unique(x, sorted=True, return_index=False, return_inverse=False, return_counts=False, axis=None, size=None,
           fill_value=None):
    """The distinct values of ``x`` (flattened, or the distinct slices along ``axis``), sorted;
    with ``return_index`` / ``return_inverse`` / ``return_counts`` also where each first occurs,
    the index of each element's value, and how often each occurs (int32), as a tuple.

    ``size``: a fixed output length (padded with ``fill_value``, default the smallest value, or
    cut), which makes the op work under ``jax.jit`` and in a model graph; without it the op is
    eager only. ``sorted=False`` allows any order (JAX still sorts); NaNs are each distinct.
    """
    x = as_array(x) if size is not None else _concrete(x, "unique", "pass size=N to fix the output length")
    results = jnp.unique(x, return_index=return_index, return_inverse=return_inverse, return_counts=return_counts,
                         axis=axis, size=size, fill_value=fill_value, sorted=sorted, equal_nan=False)
    if not isinstance(results, tuple):
        return results
    return (results[0], *(r.astype(jnp.int32) for r in results[1:]))


@operation("bincount", symbolic=refuse_symbolic(
    "bincount", "the number of bins (the largest value + 1) is known only from the values",
    "count with ops.sum(ops.one_hot(x, num_classes), axis=0) (a fixed number of classes) instead"))
def bincount(x, weights=None, minlength=0, sparse=False):
    """How often each value ``0 .. max(x)`` occurs in the non-negative ints ``x`` (``(n,)``, or
    ``(batch, n)`` counted per row), at least ``minlength`` bins; with ``weights`` (the shape of
    ``x``) the sum of the weights instead. int32 counts, or the weights' dtype. Eager only (see the
    module docstring); ``sparse=True`` (Keras's sparse output) does not exist in kfunc."""
    if sparse:
        raise ValueError("kfunc.ops.bincount: sparse=True is not supported (kfunc has no sparse arrays); pass "
                         "sparse=False.")
    x = _concrete(x, "bincount",
                  "count with ops.sum(ops.one_hot(x, num_classes), axis=0) (a fixed number of classes) instead")
    if x.ndim not in (1, 2):
        raise ValueError(f"kfunc.ops.bincount expects x of shape (n,) or (batch, n), received {tuple(x.shape)}.")
    length = max(int(jnp.max(x)) + 1 if x.size else 0, minlength)
    weights = None if weights is None else as_array(weights)
    if x.ndim == 1:
        return jnp.bincount(x, weights=weights, length=length)
    if weights is None:
        return jax.vmap(lambda row: jnp.bincount(row, length=length))(x)
    return jax.vmap(lambda row, w: jnp.bincount(row, weights=w, length=length))(x, weights)


__all__ = ["nonzero", "unique", "bincount"]
