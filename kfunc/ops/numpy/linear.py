"""Products of ``keras.ops`` (NumPy names): ``matmul``, ``dot``, ``einsum``, ``tensordot`` ..."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation


def _preferred(*arrays):
    """int8 x int8 accumulates in int32 (what fast int8 matmul hardware does, as Keras 3)."""
    return jnp.int32 if all(a.dtype == jnp.int8 for a in arrays) else None


@operation("matmul")
def matmul(x1, x2):
    """The matrix product of the last two axes of ``x1`` ``(..., n, k)`` and ``x2`` ``(..., k, m)``,
    batch axes broadcast; 1-D arguments are vectors."""
    x1, x2 = as_array(x1), as_array(x2)
    return jnp.matmul(x1, x2, preferred_element_type=_preferred(x1, x2))


@operation("dot")
def dot(x1, x2):
    """NumPy's ``dot``: the sum over the last axis of ``x1`` and the second-to-last of ``x2``."""
    return jnp.dot(as_array(x1), as_array(x2))


@operation("einsum")
def einsum(subscripts, *operands, **kwargs):
    """Einstein summation of ``operands`` as ``subscripts`` says, e.g. ``"bij,bjk->bik"``."""
    operands = [as_array(x) for x in operands]
    return jnp.einsum(subscripts, *operands, preferred_element_type=_preferred(*operands), **kwargs)


@operation("tensordot")
def tensordot(x1, x2, axes=2):
    """The sum of products over ``axes`` (an int: the last/first ``axes`` axes; or two lists)."""
    if isinstance(axes, list):
        axes = tuple(tuple(a) if isinstance(a, list) else a for a in axes)
    return jnp.tensordot(as_array(x1), as_array(x2), axes=axes)


@operation("outer")
def outer(x1, x2):
    """The outer product of the flattened ``x1`` and ``x2``: shape ``(x1.size, x2.size)``."""
    return jnp.outer(as_array(x1), as_array(x2))


@operation("inner")
def inner(x1, x2):
    """The sum of products over the last axes of ``x1`` and ``x2``."""
    return jnp.inner(as_array(x1), as_array(x2))


@operation("vdot")
def vdot(x1, x2):
    """The dot product of the flattened ``x1`` (conjugated) and ``x2``: a scalar."""
    return jnp.vdot(as_array(x1), as_array(x2))


@operation("cross")
def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 3-vectors (or 2-vectors) along the given axes."""
    return jnp.cross(as_array(x1), as_array(x2), axisa=axisa, axisb=axisb, axisc=axisc, axis=axis)


@operation("kron")
def kron(x1, x2):
    """The Kronecker product of ``x1`` and ``x2``."""
    return jnp.kron(as_array(x1), as_array(x2))


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
