"""Linear algebra ops of ``keras.ops`` (also ``keras.ops.linalg``): matrices are the last two
axes, ``(..., n, n)``, with any leading batch axes."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array, as_float_array
from kfunc.ops.operation import operation


@operation("inv")
def inv(x):
    """The inverse of the square matrices ``x``."""
    return jnp.linalg.inv(as_array(x))


@operation("det")
def det(x):
    """The determinant of the square matrices ``x``, shape ``(...)``."""
    return jnp.linalg.det(as_array(x))


@operation("solve")
def solve(a, b):
    """``x`` with ``a @ x == b``: ``a`` ``(..., n, n)``, ``b`` ``(..., n, k)``."""
    return jnp.linalg.solve(as_array(a), as_array(b))


@operation("solve_triangular")
def solve_triangular(a, b, lower=False):
    """``x`` with ``a @ x == b`` for triangular ``a`` (``lower`` or upper)."""
    return jax.scipy.linalg.solve_triangular(as_array(a), as_array(b), lower=lower)


@operation("cholesky")
def cholesky(x, upper=False):
    """The Cholesky factor of the symmetric positive-definite matrices ``x``: lower triangular
    ``L`` with ``L @ L.T == x`` (``upper``: ``U`` with ``U.T @ U == x``). Not positive definite:
    NaN entries (under ``jax.jit``) or a ValueError (eagerly), as Keras 3."""
    factor = jnp.linalg.cholesky(as_array(x), upper=upper)
    try:
        failed = bool(jnp.any(jnp.isnan(factor)))
    except jax.errors.ConcretizationTypeError:  # traced: the NaNs are the answer
        failed = False
    if failed:
        raise ValueError("kfunc.ops.cholesky: the decomposition failed; the input is not a positive definite matrix.")
    return factor


@operation("qr")
def qr(x, mode="reduced"):
    """``(q, r)`` with ``q @ r == x``; ``mode`` "reduced" (``q``: ``(..., m, min(m, n))``) or
    "complete" (``q``: ``(..., m, m)``)."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"kfunc.ops.qr: mode must be 'reduced' or 'complete', received {mode!r}.")
    q, r = jnp.linalg.qr(as_array(x), mode=mode)
    return q, r


@operation("svd")
def svd(x, full_matrices=True, compute_uv=True):
    """``(u, s, vh)`` with ``u @ diag(s) @ vh == x`` (``s`` only, when ``compute_uv`` is False)."""
    result = jnp.linalg.svd(as_array(x), full_matrices=full_matrices, compute_uv=compute_uv)
    return tuple(result) if compute_uv else result


@operation("eig")
def eig(x):
    """``(eigenvalues, eigenvectors)`` of the square matrices ``x`` (complex; CPU only in JAX)."""
    values, vectors = jnp.linalg.eig(as_array(x))
    return values, vectors


@operation("eigh")
def eigh(x):
    """``(eigenvalues, eigenvectors)`` of the symmetric (Hermitian) matrices ``x``, values ascending."""
    values, vectors = jnp.linalg.eigh(as_array(x))
    return values, vectors


@operation("norm")
def norm(x, ord=None, axis=None, keepdims=False):
    """The vector norm (``axis`` an int) or matrix norm (``axis`` two ints) of ``x``; ``ord`` as
    NumPy's (None: 2-norm / Frobenius). Integers give float32."""
    axis = tuple(axis) if isinstance(axis, list) else axis
    return jnp.linalg.norm(as_float_array(x), ord=ord, axis=axis, keepdims=keepdims)


@operation("matrix_rank")
def matrix_rank(x, tol=None):
    """The rank of the matrices ``x`` ``(..., m, n)`` (singular values above ``tol``), int32."""
    x = as_array(x)
    if x.ndim < 2:
        raise ValueError(f"kfunc.ops.matrix_rank: needs matrices (rank >= 2), received shape {x.shape}.")
    return jnp.linalg.matrix_rank(x, rtol=tol).astype(jnp.int32)


@operation("pinv")
def pinv(x, rcond=None):
    """The Moore-Penrose pseudo-inverse of the matrices ``x`` ``(..., m, n)``."""
    return jnp.linalg.pinv(as_array(x), rtol=rcond)


@operation("lstsq")
def lstsq(a, b, rcond=None):
    """The least-squares ``x`` minimizing ``|a @ x - b|``."""
    return jnp.linalg.lstsq(as_array(a), as_array(b), rcond=rcond)[0]



@operation("cholesky_inverse")
def cholesky_inverse(x, upper=False):
    """The inverse of ``A`` from its Cholesky factor ``x`` ``(..., n, n)``: ``A = x @ x^T`` for a
    lower factor, ``A = x^T @ x`` with ``upper``."""
    factor = as_float_array(x)
    identity = jnp.broadcast_to(jnp.eye(factor.shape[-1], dtype=factor.dtype), factor.shape)
    inverse_factor = jax.scipy.linalg.solve_triangular(factor, identity, lower=not upper)
    transposed = jnp.swapaxes(inverse_factor, -1, -2)
    return inverse_factor @ transposed if upper else transposed @ inverse_factor


@operation("lu_factor")
def lu_factor(x):
    """``(lu, pivots)`` of the square matrices ``x`` ``(..., n, n)`` (SciPy's ``lu_factor``):
    ``lu`` holds ``L`` (unit diagonal, below) and ``U`` (on and above), ``pivots`` ``(..., n)``
    int32 the row swapped with each row."""
    x = as_float_array(x)
    factor = jax.scipy.linalg.lu_factor
    for _ in range(x.ndim - 2):
        factor = jax.vmap(factor)
    return factor(x)


@operation("jvp")
def jvp(fun, primals, tangents, has_aux=False):
    """``(fun(*primals), the Jacobian of fun at primals times tangents)`` (forward-mode
    differentiation; ``primals``/``tangents``: tuples of the same structure); with ``has_aux``,
    ``fun`` returns ``(output, aux)`` and ``aux`` comes third."""
    return jax.jvp(fun, tuple(primals), tuple(tangents), has_aux=has_aux)


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
