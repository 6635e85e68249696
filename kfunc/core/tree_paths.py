"""Nested dicts addressed by paths: how weights map into the params and state pytrees."""

from __future__ import annotations

from kfunc.errors import WeightsError, describe_layer


def tree_from_paths(items) -> dict:
    """``[(("dense", "kernel"), x), ...]`` -> ``{"dense": {"kernel": x}}``."""
    tree: dict = {}
    for path, value in items:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise WeightsError(f"Weight path {'/'.join(path)} collides with a weight named '{key}'.")
        if path[-1] in node:
            raise WeightsError(f"Two weights share the path {'/'.join(path)}; give the layers distinct names.")
        node[path[-1]] = value
    return tree


def get_path(tree, path: tuple[str, ...], layer):
    """``tree[path[0]][path[1]]...`` with an error naming the missing entry and what exists."""
    node = tree
    for depth, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            where = "/".join(path[:depth]) or "the top level"
            present = sorted(node) if isinstance(node, dict) else type(node).__name__
            raise WeightsError(
                f"{describe_layer(layer)}: the weights tree has no entry '{'/'.join(path)}' "
                f"(at {where} it holds {present}). Pass the trees returned by init() or get_variables()."
            )
        node = node[key]
    return node
