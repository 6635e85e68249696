"""Nested structures of lists, tuples, namedtuples and dicts, flattened and matched as Keras 3 does.

A model's inputs and outputs, and the data, losses and weights given for them, may be any nesting
of these containers. Each leaf has a *path*: the dict keys and sequence positions that lead to
it, e.g. ``(1, "mask")`` for ``[a, {"mask": b}]``. Flattening visits dict keys in sorted order
(as Keras 3's ``tree.flatten`` and ``jax.tree_util`` do, so ``{"score": s, "cls": c}`` flattens to
``[c, s]``) and sequences in order; lists, tuples and namedtuples are interchangeable when
paths are compared. ``None`` is a leaf (an optional input left out, an output without labels).
"""

from __future__ import annotations

from collections import OrderedDict

Path = tuple  # dict keys and sequence positions from the top of a structure to one leaf


def is_container(value) -> bool:
    """Lists, tuples (namedtuples included) and dicts nest; everything else is a leaf."""
    return isinstance(value, (list, tuple, dict))


def _keys_in_order(mapping: dict) -> list:
    if isinstance(mapping, OrderedDict):
        return list(mapping)
    try:
        return sorted(mapping)
    except TypeError:  # keys of mixed types: keep the order they were given in
        return list(mapping)


def flatten_with_paths(structure, is_leaf=None) -> list[tuple[Path, object]]:
    """``[(path, leaf), ...]`` in the canonical order; ``is_leaf(value)`` stops the descent early
    (e.g. for nested lists of numbers that are one array)."""
    found: list = []
    _visit(structure, (), is_leaf, found)
    return found


# The recursions are module functions, not nested closures: a closure that calls itself is a
# reference cycle, and the leaves it holds (a streamed chunk of training data) would wait for the
# garbage collector (measured: 80 MB more resident memory per epoch until a collection).
def _visit(value, path: Path, is_leaf, found: list) -> None:
    if (is_leaf is not None and is_leaf(value)) or not is_container(value):
        found.append((path, value))
    elif isinstance(value, dict):
        for key in _keys_in_order(value):
            _visit(value[key], path + (key,), is_leaf, found)
    else:
        for position, item in enumerate(value):
            _visit(item, path + (position,), is_leaf, found)


def leaves(structure, is_leaf=None) -> list:
    """The leaves of ``structure`` in the canonical order."""
    return [leaf for _, leaf in flatten_with_paths(structure, is_leaf)]


def pack_like(structure, flat: list, is_leaf=None):
    """``structure`` with its leaves replaced, in order, by ``flat`` (same container types)."""
    return _build(structure, iter(flat), is_leaf)


def _build(value, remaining, is_leaf):
    if (is_leaf is not None and is_leaf(value)) or not is_container(value):
        return next(remaining)
    if isinstance(value, dict):
        rebuilt = {key: _build(value[key], remaining, is_leaf) for key in _keys_in_order(value)}
        ordered = [(key, rebuilt[key]) for key in value]  # the caller's key order, kept
        return dict(ordered) if type(value) is dict else type(value)(ordered)
    items = [_build(item, remaining, is_leaf) for item in value]
    if hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*items)
    return type(value)(items)


def map_leaves(fn, structure, is_leaf=None):
    """``structure`` with every leaf ``x`` replaced by ``fn(x)``."""
    return pack_like(structure, [fn(leaf) for leaf in leaves(structure, is_leaf)], is_leaf)


def path_text(path: Path) -> str:
    """``(1, "mask")`` -> ``[1]['mask']``: how a user indexes the leaf."""
    return "".join(f"[{key!r}]" for key in path)


def describe_structure(structure, leaf_text, is_leaf=None) -> str:
    """The structure written out with ``leaf_text(leaf)`` for each leaf, e.g. ``[x, {'m': y}]``."""

    def text(value):
        if (is_leaf is not None and is_leaf(value)) or not is_container(value):
            return leaf_text(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{key!r}: {text(value[key])}" for key in value) + "}"
        inner = ", ".join(text(item) for item in value)
        if hasattr(value, "_fields"):
            return f"{type(value).__name__}({inner})"
        return f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"

    return text(structure)


def matched_by_paths(value, paths: list[Path], is_leaf=None) -> list | None:
    """The leaves of ``value`` aligned with ``paths`` when ``value`` has exactly those paths (lists,
    tuples and namedtuples interchangeable), else None."""
    given = dict(flatten_with_paths(value, is_leaf))
    if len(given) != len(paths) or any(path not in given for path in paths):
        return None
    return [given[path] for path in paths]


def matched_by_subset_of_paths(value, paths: list[Path], is_leaf=None) -> list | None:
    """Like ``matched_by_paths``, but ``value`` may leave some paths out (None there)."""
    given = dict(flatten_with_paths(value, is_leaf))
    if not given or any(path not in paths for path in given):
        return None
    return [given.get(path) for path in paths]
