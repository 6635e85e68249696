"""Ops of ``keras.ops`` (NumPy names) that rearrange, join, split, select and index arrays."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import as_array, canonical_axis
from kfunc.ops.operation import operation


@operation("reshape")
def reshape(x, newshape):
    """``x`` with shape ``newshape`` (a tuple; one entry may be -1)."""
    return jnp.reshape(as_array(x), tuple(newshape) if isinstance(newshape, list) else newshape)


@operation("transpose")
def transpose(x, axes=None):
    """``x`` with its axes permuted by ``axes`` (reversed when None)."""
    return jnp.transpose(as_array(x), axes=None if axes is None else tuple(axes))


@operation("moveaxis")
def moveaxis(x, source, destination):
    """``x`` with axes ``source`` (int or list) moved to ``destination``."""
    return jnp.moveaxis(as_array(x), source, destination)


@operation("swapaxes")
def swapaxes(x, axis1, axis2):
    """``x`` with axes ``axis1`` and ``axis2`` exchanged."""
    return jnp.swapaxes(as_array(x), axis1, axis2)


@operation("expand_dims")
def expand_dims(x, axis):
    """``x`` with a new axis of size 1 at ``axis`` (an int or a tuple of ints)."""
    return jnp.expand_dims(as_array(x), canonical_axis(axis, 0))


@operation("squeeze")
def squeeze(x, axis=None):
    """``x`` without its axes of size 1 (only ``axis`` when given)."""
    return jnp.squeeze(as_array(x), axis=canonical_axis(axis, 0))


@operation("ravel")
def ravel(x):
    """``x`` flattened to one axis."""
    return jnp.ravel(as_array(x))


@operation("broadcast_to")
def broadcast_to(x, shape):
    """``x`` broadcast to ``shape``."""
    return jnp.broadcast_to(as_array(x), tuple(shape))


@operation("concatenate")
def concatenate(xs, axis=0):
    """The arrays ``xs`` (same shape except along ``axis``) joined along ``axis``."""
    return jnp.concatenate([as_array(x) for x in xs], axis=axis)


@operation("stack")
def stack(x, axis=0):
    """The arrays ``x`` (a list of same-shaped arrays) stacked along a new ``axis``."""
    return jnp.stack([as_array(item) for item in x], axis=axis)


@operation("hstack")
def hstack(xs):
    """The arrays ``xs`` joined along their second axis (first for 1-D arrays)."""
    return jnp.hstack([as_array(x) for x in xs])


@operation("vstack")
def vstack(xs):
    """The arrays ``xs`` joined along their first axis (1-D arrays become rows)."""
    return jnp.vstack([as_array(x) for x in xs])


@operation("dstack")
def dstack(xs):
    """The arrays ``xs`` joined along their third axis (made at least 3-D first)."""
    return jnp.dstack([as_array(x) for x in xs])


@operation("append")
def append(x1, x2, axis=None):
    """``x2`` appended to ``x1`` along ``axis`` (both flattened when None)."""
    return jnp.append(as_array(x1), as_array(x2), axis=axis)


@operation("split")
def split(x, indices_or_sections, axis=0):
    """``x`` split along ``axis`` into ``indices_or_sections`` equal parts (an int) or at the
    given indices (a list); returns a list of arrays."""
    return list(jnp.split(as_array(x), indices_or_sections, axis=axis))


@operation("array_split")
def array_split(x, indices_or_sections, axis=0):
    """Like ``split``, but an int need not divide the axis: the first parts are one longer."""
    return list(jnp.array_split(as_array(x), indices_or_sections, axis=axis))


@operation("hsplit")
def hsplit(x, indices_or_sections):
    """``split`` along the second axis (the first for 1-D ``x``)."""
    return list(jnp.hsplit(as_array(x), indices_or_sections))


@operation("vsplit")
def vsplit(x, indices_or_sections):
    """``split`` along the first axis."""
    return list(jnp.vsplit(as_array(x), indices_or_sections))


@operation("dsplit")
def dsplit(x, indices_or_sections):
    """``split`` along the third axis (``x`` of rank 3 or more)."""
    x = as_array(x)
    if x.ndim < 3:
        raise ValueError(f"kfunc.ops.dsplit splits along the third axis and needs x of rank >= 3, received shape "
                         f"{tuple(x.shape)}.")
    return list(jnp.dsplit(x, indices_or_sections))


@operation("tile")
def tile(x, repeats):
    """``x`` repeated ``repeats`` times along each axis (an int or a tuple)."""
    return jnp.tile(as_array(x), repeats)


@operation("repeat")
def repeat(x, repeats, axis=None):
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (flattened when None)."""
    return jnp.repeat(as_array(x), repeats, axis=axis)


@operation("flip")
def flip(x, axis=None):
    """``x`` reversed along ``axis`` (every axis when None)."""
    return jnp.flip(as_array(x), axis=canonical_axis(axis, 0))


@operation("flipud")
def flipud(x):
    """``x`` reversed along its first axis."""
    return jnp.flipud(as_array(x))


@operation("fliplr")
def fliplr(x):
    """``x`` reversed along its second axis."""
    return jnp.fliplr(as_array(x))


@operation("rot90")
def rot90(array, k=1, axes=(0, 1)):
    """``array`` rotated ``k`` times by 90 degrees in the plane of ``axes`` (from the first axis
    toward the second)."""
    array = as_array(array)
    if array.ndim < 2 or len(axes) != 2 or axes[0] == axes[1]:
        raise ValueError(
            f"kfunc.ops.rot90: needs an array of rank >= 2 and two different axes, received shape {array.shape} "
            f"and axes={axes!r}."
        )
    return jnp.rot90(array, k=k, axes=tuple(axes))


@operation("diff")
def diff(a, n=1, axis=-1):
    """The ``n``-th differences ``a[i + 1] - a[i]`` along ``axis`` (that axis ``n`` shorter)."""
    return jnp.diff(as_array(a), n=n, axis=axis)


@operation("roll")
def roll(x, shift, axis=None):
    """``x`` shifted by ``shift`` along ``axis``, wrapping around (flattened when None)."""
    return jnp.roll(as_array(x), shift, axis=canonical_axis(axis, 0))


@operation("pad")
def pad(x, pad_width, mode="constant", constant_values=None):
    """``x`` padded by ``pad_width`` (``((before, after), ...)`` per axis); ``mode`` as NumPy's."""
    x = as_array(x)
    pad_width = [tuple(p) for p in pad_width] if isinstance(pad_width, (list, tuple)) and pad_width and isinstance(
        pad_width[0], (list, tuple)) else pad_width
    if constant_values is not None:
        if mode != "constant":
            raise ValueError(f"pad: constant_values applies only to mode='constant', received mode={mode!r}.")
        return jnp.pad(x, pad_width, mode=mode, constant_values=constant_values)
    return jnp.pad(x, pad_width, mode=mode)


@operation("take")
def take(x, indices, axis=None):
    """The elements of ``x`` at ``indices`` along ``axis`` (of the flattened ``x`` when None);
    negative indices count from the end."""
    return jnp.take(as_array(x), as_array(indices), axis=axis)


@operation("take_along_axis")
def take_along_axis(x, indices, axis=None):
    """``x`` indexed along ``axis`` by ``indices`` (same rank as ``x``, broadcasting elsewhere)."""
    return jnp.take_along_axis(as_array(x), as_array(indices), axis=axis)


@operation("where")
def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` holds, else ``x2`` (broadcast together)."""
    if x1 is None and x2 is None:
        raise ValueError("kfunc.ops.where needs x1 and x2 (the one-argument form has a data-dependent shape).")
    return jnp.where(as_array(condition), as_array(x1), as_array(x2))


@operation("select")
def select(condlist, choicelist, default=0):
    """From ``choicelist[i]`` where ``condlist[i]`` is the first condition that holds, else
    ``default``."""
    return jnp.select([as_array(c) for c in condlist], [as_array(c) for c in choicelist], default)


@operation("clip")
def clip(x, x_min, x_max):
    """``x`` limited to ``[x_min, x_max]``; booleans are clipped as int32."""
    x = as_array(x)
    if x.dtype == jnp.bool_:
        x = x.astype(jnp.int32)
    return jnp.clip(x, x_min, x_max)


@operation("tril")
def tril(x, k=0):
    """``x`` with the elements above the ``k``-th diagonal of its last two axes set to zero."""
    return jnp.tril(as_array(x), k=k)


@operation("triu")
def triu(x, k=0):
    """``x`` with the elements below the ``k``-th diagonal of its last two axes set to zero."""
    return jnp.triu(as_array(x), k=k)


@operation("diag")
def diag(x, k=0):
    """The ``k``-th diagonal of a 2-D ``x``, or a 2-D array with 1-D ``x`` on that diagonal."""
    return jnp.diag(as_array(x), k=k)


@operation("diagflat")
def diagflat(x, k=0):
    """A 2-D array with the flattened ``x`` on its ``k``-th diagonal."""
    return jnp.diagflat(as_array(x), k=k)


@operation("diagonal")
def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal ``offset`` of the planes ``(axis1, axis2)`` of ``x``, as the last axis."""
    return jnp.diagonal(as_array(x), offset=offset, axis1=axis1, axis2=axis2)


@operation("searchsorted")
def searchsorted(sorted_sequence, values, side="left"):
    """Where ``values`` would be inserted into the 1-D ``sorted_sequence`` to keep it sorted."""
    return jnp.searchsorted(as_array(sorted_sequence), as_array(values), side=side)


@operation("digitize")
def digitize(x, bins):
    """The index of the bin (``bins``: 1-D, increasing) each element of ``x`` falls in, int32."""
    return jnp.digitize(as_array(x), as_array(bins)).astype(jnp.int32)


@operation("meshgrid")
def meshgrid(*x, indexing="xy"):
    """Coordinate arrays from the 1-D arrays ``x``; ``indexing`` "xy" (Cartesian) or "ij"."""
    return list(jnp.meshgrid(*[as_array(v) for v in x], indexing=indexing))


@operation("size")
def size(x):
    """The number of elements of ``x``: a Python int (a scalar int32 tensor when ``x`` is symbolic)."""
    return jnp.size(as_array(x))


@operation("ndim", symbolic=lambda x: x.ndim)
def ndim(x):
    """The number of axes of ``x`` (a Python int, also for a symbolic tensor)."""
    return jnp.ndim(as_array(x))


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
