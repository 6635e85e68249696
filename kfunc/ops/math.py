"""Math ops of ``keras.ops``: segment reductions, top-k, ``logsumexp``, special functions,
pairwise distances, framing, complex views."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.ops.arrays import as_array, as_float_array, canonical_axis
from kfunc.ops.operation import operation


def _segment(name: str, reduce):
    def segment_reduction(data, segment_ids, num_segments=None, sorted=False):
        if num_segments is None:
            raise ValueError(
                f"kfunc.ops.{name} needs num_segments (the number of segments, a Python int): the output "
                "shape cannot depend on the values of segment_ids under jax.jit."
            )
        return reduce(as_array(data), as_array(segment_ids), num_segments, indices_are_sorted=sorted)

    segment_reduction.__name__ = segment_reduction.__qualname__ = name
    segment_reduction.__doc__ = (
        f"``{name.split('_')[1]}`` of the rows of ``data`` ``(n, ...)`` that share a segment id "
        "(``segment_ids``: ``(n,)`` ints in ``[0, num_segments)``); shape ``(num_segments, ...)``."
    )
    return operation(name)(segment_reduction)


segment_sum = _segment("segment_sum", jax.ops.segment_sum)
segment_max = _segment("segment_max", jax.ops.segment_max)
segment_min = _segment("segment_min", jax.ops.segment_min)
segment_prod = _segment("segment_prod", jax.ops.segment_prod)


@operation("top_k")
def top_k(x, k, sorted=True):
    """``(values, indices)`` of the ``k`` largest entries along the last axis of ``x``, largest
    first (also when ``sorted=False``, which allows any order)."""
    values, indices = jax.lax.top_k(as_array(x), k)
    return values, indices


@operation("in_top_k")
def in_top_k(targets, predictions, k):
    """Whether the score of each target class (``targets``: ``(batch,)`` ints) is among the ``k``
    largest of ``predictions`` ``(batch, classes)``; NaN scores never are. Booleans ``(batch,)``."""
    predictions = as_array(predictions)
    at_label = jnp.take_along_axis(predictions, jnp.expand_dims(as_array(targets), -1), axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    rank = 1 + jnp.sum(predictions > at_label, axis=-1)
    return rank <= k


@operation("logsumexp")
def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow."""
    x = as_array(x)
    return jax.scipy.special.logsumexp(x, axis=canonical_axis(axis, x.ndim), keepdims=keepdims)


@operation("erf")
def erf(x):
    """The error function, element-wise."""
    return jax.lax.erf(as_float_array(x))


@operation("erfc")
def erfc(x):
    """The complementary error function ``1 - erf(x)``, accurate for large ``x``."""
    return jax.scipy.special.erfc(as_float_array(x))


@operation("erfinv")
def erfinv(x):
    """The inverse error function, element-wise (``x`` in (-1, 1))."""
    return jax.scipy.special.erfinv(as_float_array(x))


@operation("rsqrt")
def rsqrt(x):
    """``1 / sqrt(x)``, element-wise."""
    return jax.lax.rsqrt(as_float_array(x))


@operation("slogdet")
def slogdet(x):
    """``(sign, log|det|)`` of the square matrices ``x`` ``(..., n, n)``."""
    sign, logabsdet = jnp.linalg.slogdet(as_array(x))
    return sign, logabsdet


@operation("logdet")
def logdet(x):
    """``log(det(x))`` of square matrices ``(..., n, n)``, computed stably (``slogdet``)."""
    return jnp.linalg.slogdet(as_array(x))[1]



@operation("cdist")
def cdist(x, y):
    """The Euclidean distance between every row of ``x`` ``(..., n, d)`` and of ``y``
    ``(..., m, d)``: ``(..., n, m)``; integers give floatx."""
    x, y = as_float_array(x), as_float_array(y)
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(f"kfunc.ops.cdist expects x (..., n, d) and y (..., m, d) with the same d, received shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}.")
    difference = jnp.expand_dims(x, -2) - jnp.expand_dims(y, -3)
    return jnp.sqrt(jnp.sum(jnp.square(difference), axis=-1))


@operation("extract_sequences")
def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of ``sequence_length`` samples every ``sequence_stride`` samples along the last axis
    of ``x`` ``(..., length)``: ``(..., frames, sequence_length)`` with
    ``frames = 1 + (length - sequence_length) // sequence_stride``."""
    x = as_array(x)
    if x.shape[-1] < sequence_length:
        raise ValueError(f"kfunc.ops.extract_sequences: the last axis of x (shape {tuple(x.shape)}) is shorter than "
                         f"sequence_length={sequence_length}.")
    frames = 1 + (x.shape[-1] - sequence_length) // sequence_stride
    positions = np.arange(frames)[:, None] * sequence_stride + np.arange(sequence_length)[None, :]
    return jnp.take(x, jnp.asarray(positions), axis=-1)


@operation("view_as_complex")
def view_as_complex(x):
    """The complex array ``x[..., 0] + i x[..., 1]`` of a float ``x`` ``(..., 2)``: ``(...)``."""
    x = as_float_array(x)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"kfunc.ops.view_as_complex expects a last axis of size 2 (real, imaginary), received shape "
                         f"{tuple(x.shape)}.")
    return jax.lax.complex(x[..., 0], x[..., 1])


@operation("view_as_real")
def view_as_real(x):
    """The real and imaginary parts of the complex ``x`` ``(...)`` stacked last: ``(..., 2)``."""
    x = as_array(x)
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
