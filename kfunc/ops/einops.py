"""``rearrange`` of ``keras.ops`` (einops' pattern language): transpose, split and merge axes by
naming them, e.g. ``"b (h w) c -> b h w c"`` with ``h=4``.

A pattern is ``"left -> right"``; each side lists the axes by name, a parenthesized group of names
being one axis that is the product of its parts (merged on the right, split on the left). Both
sides name the same axes. A group on the left needs the lengths of all but one of its names as
keyword arguments (``**axes_lengths``); the last is inferred.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation

_TOKEN = re.compile(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*|\S")


def _groups(side: str, pattern: str) -> list[list[str]]:
    """``"b (h w) c"`` -> ``[["b"], ["h", "w"], ["c"]]``."""
    groups, open_group = [], None
    for token in _TOKEN.findall(side):
        if token == "(":
            if open_group is not None:
                raise ValueError(f"kfunc.ops.rearrange: nested parentheses in pattern {pattern!r}; groups are one level.")
            open_group = []
        elif token == ")":
            if open_group is None:
                raise ValueError(f"kfunc.ops.rearrange: unbalanced ')' in pattern {pattern!r}.")
            groups.append(open_group)
            open_group = None
        elif token.isidentifier():
            (open_group if open_group is not None else groups).append(token if open_group is not None else [token])
        else:
            raise ValueError(f"kfunc.ops.rearrange: unexpected {token!r} in pattern {pattern!r}; use axis names, "
                             "parentheses and '->' (no '...' or numbers).")
    if open_group is not None:
        raise ValueError(f"kfunc.ops.rearrange: unbalanced '(' in pattern {pattern!r}.")
    return groups


def _parse(pattern: str):
    if not isinstance(pattern, str) or pattern.count("->") != 1:
        raise ValueError(f"kfunc.ops.rearrange expects a pattern 'left -> right', received {pattern!r}.")
    left, right = (_groups(side, pattern) for side in pattern.split("->"))
    left_names = [name for group in left for name in group]
    right_names = [name for group in right for name in group]
    for names in (left_names, right_names):
        if len(set(names)) != len(names):
            raise ValueError(f"kfunc.ops.rearrange: an axis name repeats on one side of pattern {pattern!r}.")
    if set(left_names) != set(right_names):
        raise ValueError(f"kfunc.ops.rearrange: both sides of {pattern!r} must name the same axes, received "
                         f"{sorted(left_names)} and {sorted(right_names)}.")
    return left, right, left_names, right_names


def _lengths(left, shape, axes_lengths, pattern):
    lengths = {}
    for group, size in zip(left, shape, strict=True):
        known = [axes_lengths[name] for name in group if name in axes_lengths]
        unknown = [name for name in group if name not in axes_lengths]
        if len(unknown) > 1:
            raise ValueError(f"kfunc.ops.rearrange: the group {group} of {pattern!r} needs the lengths of all but one "
                             f"name as keyword arguments, e.g. {unknown[0]}=...")
        product = math.prod(known)
        if (unknown and size % product) or (not unknown and size != product):
            raise ValueError(f"kfunc.ops.rearrange: axis of size {size} cannot be split as {group} with "
                             f"{ {name: axes_lengths[name] for name in group if name in axes_lengths} }.")
        for name in group:
            lengths[name] = axes_lengths[name] if name in axes_lengths else size // product
    return lengths


@operation("rearrange")
def rearrange(tensor, pattern, **axes_lengths):
    """``tensor`` with its axes split, transposed and merged as ``pattern`` says (see the module
    docstring), e.g. ``rearrange(x, "b h w c -> b c h w")`` or
    ``rearrange(x, "b (h p) w c -> b h w (p c)", p=2)``."""
    tensor = as_array(tensor)
    left, right, left_names, right_names = _parse(pattern)
    if len(left) != tensor.ndim:
        raise ValueError(f"kfunc.ops.rearrange: the left side of {pattern!r} names {len(left)} axes but the tensor "
                         f"has shape {tuple(tensor.shape)}.")
    lengths = _lengths(left, tensor.shape, axes_lengths, pattern)
    elementary = tensor.reshape([lengths[name] for name in left_names])
    moved = jnp.transpose(elementary, [left_names.index(name) for name in right_names])
    return moved.reshape([math.prod(lengths[name] for name in group) for group in right])


__all__ = ["rearrange"]
