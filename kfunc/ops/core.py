"""Core ops of ``keras.ops``: dtypes and conversion, shapes, control flow, slicing, scatter.

Control-flow ops (``cond``, ``scan``, ``fori_loop``, ``while_loop``, ``vectorized_map``, ``map``,
``switch``) take Python functions of arrays and become JAX's structured control flow, so they
compile once under ``jax.jit``; in a model graph, the functions are part of the op's
configuration (a saved model needs them registered with ``kfunc.saving.register``).
"""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import SymbolicTensorError
from kfunc.ops.arrays import as_array, standardize_dtype
from kfunc.ops.operation import operation, values_only


# ---------------------------------------------------------------- dtypes and conversion
@operation("cast")
def cast(x, dtype):
    """``x`` converted to ``dtype`` (a name such as ``"float32"``, or a NumPy/JAX dtype)."""
    return as_array(x).astype(standardize_dtype(dtype))


def _range_of(dtype):
    info = jnp.iinfo(dtype) if jnp.issubdtype(dtype, jnp.integer) else jnp.finfo(dtype)
    return info.min, info.max


@operation("saturate_cast")
def saturate_cast(x, dtype):
    """``x`` converted to ``dtype``, values first clipped to the range both dtypes can hold."""
    x, dtype = as_array(x), jnp.dtype(standardize_dtype(dtype))
    numeric = (jnp.integer, jnp.floating)
    if any(jnp.issubdtype(dtype, kind) for kind in numeric) and any(jnp.issubdtype(x.dtype, k) for k in numeric):
        (low, high), (in_low, in_high) = _range_of(dtype), _range_of(x.dtype)
        x = jnp.clip(x, builtins.max(low, in_low), builtins.min(high, in_high))
    return x.astype(dtype)


def _convert_symbolic(x, dtype=None, sparse=None, ragged=None):
    return x if dtype is None or x.dtype == jnp.dtype(standardize_dtype(dtype)) else cast(x, dtype)


@operation("convert_to_tensor", symbolic=_convert_symbolic)
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """``x`` (array, number, list, Variable) as a JAX array, in ``dtype`` when given; a symbolic
    tensor is returned as it is (cast when ``dtype`` differs)."""
    if ragged:
        raise ValueError("kfunc.ops.convert_to_tensor: ragged tensors do not exist in JAX; pass ragged=None.")
    return as_array(x, dtype)


def _refuse_numpy(x):
    raise SymbolicTensorError(
        f"kfunc.ops.convert_to_numpy cannot convert symbolic tensor '{x.name}': it holds no values while the "
        "model is being built; build a Model and call model.predict(...) (or the model) on arrays."
    )


@operation("convert_to_numpy", symbolic=_refuse_numpy)
def convert_to_numpy(x):
    """``x`` as a NumPy array (copied to the host)."""
    return np.asarray(x)


@operation("shape", symbolic=lambda x: x.shape)
def shape(x):
    """The shape of ``x`` as a tuple (``None`` for unknown sizes of a symbolic tensor)."""
    return tuple(jnp.shape(x))


@operation("dtype", symbolic=lambda x: x.dtype.name)
def dtype(x):
    """The dtype of ``x`` as a string, e.g. ``"float32"``."""
    return standardize_dtype(as_array(x).dtype)


def is_tensor(x) -> bool:
    """Whether ``x`` is an array (JAX or NumPy) rather than a number, list or symbolic tensor."""
    return isinstance(x, (jax.Array, np.ndarray))


@operation("stop_gradient")
def stop_gradient(variable):
    """``variable`` (an array or Variable) as a constant for differentiation: no gradient flows."""
    return jax.lax.stop_gradient(as_array(variable))


# ---------------------------------------------------------------- control flow
@operation("cond")
def cond(pred, true_fn, false_fn):
    """``true_fn()`` if the scalar boolean ``pred`` holds, else ``false_fn()`` (both traced)."""
    return jax.lax.cond(pred, true_fn, false_fn)


@operation("switch")
def switch(index, branches, *operands):
    """``branches[index](*operands)``; ``index`` is clamped to the valid range."""
    return jax.lax.switch(index, branches, *operands)


@operation("scan")
def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """``carry, ys``: ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs`` (or
    ``length`` steps), the ``y`` stacked."""
    if not isinstance(unroll, bool) and (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(f"kfunc.ops.scan: unroll must be a positive int or a bool, received {unroll!r}.")
    return jax.lax.scan(f, init, xs, length=length, reverse=reverse, unroll=unroll)


@operation("associative_scan")
def associative_scan(f, elems, reverse=False, axis=0):
    """Prefix results of the associative ``f`` over ``axis`` of ``elems`` (e.g. ``add``: cumsum)."""
    return jax.lax.associative_scan(f, elems, reverse=reverse, axis=axis)


@operation("map")
def map(f, xs):
    """``f`` applied to each slice of ``xs`` along its leading axis, the results stacked."""
    return jax.lax.map(f, xs)


@operation("fori_loop")
def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``, from ``init_val``."""
    return jax.lax.fori_loop(lower, upper, body_fun, init_val)


@operation("while_loop")
def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)`` holds (at most
    ``maximum_iterations`` times); a tuple/list of loop variables is passed positionally."""
    is_sequence = isinstance(loop_vars, (tuple, list))
    state = (tuple(loop_vars) if is_sequence else (loop_vars,)) + (jnp.asarray(0, jnp.int32),)

    def keep_going(values):
        holds = cond(*values[:-1])
        return holds if maximum_iterations is None else holds & (values[-1] < maximum_iterations)

    def step(values):
        result = body(*values[:-1])
        return (tuple(result) if is_sequence else (result,)) + (values[-1] + 1,)

    final = jax.lax.while_loop(keep_going, step, state)[:-1]
    return type(loop_vars)(final) if is_sequence else final[0]


@operation("vectorized_map")
def vectorized_map(function, elements):
    """``function`` applied to each slice of ``elements`` (a tensor or structure of tensors)
    along the leading axis, vectorized with ``jax.vmap``."""
    return jax.vmap(function)(elements)


# ---------------------------------------------------------------- slices and scatter
@operation("unstack")
def unstack(x, num=None, axis=0):
    """The slices of ``x`` along ``axis``, as a list of ``x.shape[axis]`` arrays."""
    x = as_array(x)
    return [jax.lax.index_in_dim(x, i, axis, keepdims=False) for i in range(x.shape[axis])]


@operation("slice")
def slice(inputs, start_indices, shape):
    """The block of ``inputs`` of ``shape`` starting at ``start_indices`` (-1 in ``shape``: to the
    end of that axis); the start may be traced values."""
    inputs = as_array(inputs)
    sizes = tuple(inputs.shape[i] - start_indices[i] if s == -1 else s for i, s in enumerate(shape))
    return jax.lax.dynamic_slice(inputs, start_indices, sizes)


@operation("slice_update")
def slice_update(inputs, start_indices, updates):
    """``inputs`` with the block at ``start_indices`` replaced by ``updates``."""
    inputs = as_array(inputs)
    return jax.lax.dynamic_update_slice(inputs, as_array(updates).astype(inputs.dtype), tuple(start_indices))


@operation("scatter")
def scatter(indices, values, shape):
    """Zeros of ``shape`` with ``values`` added at ``indices`` ``(n, index_depth)``; repeated
    indices add up."""
    values = as_array(values)
    key = tuple(jnp.moveaxis(as_array(indices), -1, 0))
    return jnp.zeros(tuple(shape), values.dtype).at[key].add(values)


@operation("scatter_update")
def scatter_update(inputs, indices, updates, reduction=None):
    """``inputs`` with the entries at ``indices`` ``(n, index_depth)`` set to ``updates``
    (or combined with them: ``reduction`` "add", "max", "min" or "mul")."""
    inputs = as_array(inputs)
    at = inputs.at[tuple(jnp.transpose(as_array(indices)))]
    combine = {None: at.set, "add": at.add, "max": at.max, "min": at.min, "mul": at.multiply}
    if reduction not in combine:
        raise ValueError(
            f"kfunc.ops.scatter_update: reduction must be None, 'add', 'max', 'min' or 'mul', received {reduction!r}."
        )
    return combine[reduction](updates)


def custom_gradient(f):
    """``f`` with a gradient of your own: ``f(*args)`` returns ``(output, grad_fn)`` where
    ``grad_fn(upstream)`` gives the gradient of each argument (a tuple for several). On JAX the
    upstream gradient is passed positionally, so Keras 3's ``def grad(*args, upstream=None)``
    also works. The returned function works on arrays and Variables (inside a layer's ``call``);
    on symbolic tensors it refuses."""
    return values_only("custom_gradient", jax.custom_gradient(f))


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
__all__ += ["is_tensor", "custom_gradient"]
