"""``split_dataset``: rows of in-memory data into a left and a right part."""

from __future__ import annotations

import numpy as np

from kfunc.errors import ArgumentError


def _size(value, total: int, side: str) -> int | None:
    """A split size as a row count: an int in ``(0, total)``, or a float fraction in ``(0, 1)``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"split_dataset: {side}_size must be an int, a float or None, received {value!r}.")
    if isinstance(value, int) and not 0 < value < total or isinstance(value, float) and not 0 < value < 1:
        raise ArgumentError(
            f"split_dataset: {side}_size must be a positive int smaller than {total} (the number of rows) or a float "
            f"in (0, 1), received {value!r}."
        )
    return round(value * total) if isinstance(value, float) else value


def _rows(dataset) -> list[np.ndarray]:
    leaves = list(dataset.values()) if isinstance(dataset, dict) else (
        list(dataset) if isinstance(dataset, (list, tuple)) else [dataset])
    arrays = [np.asarray(leaf) for leaf in leaves]
    counts = {len(a) for a in arrays if a.ndim}
    if not arrays or len(counts) != 1 or any(a.ndim == 0 for a in arrays):
        raise ArgumentError(
            "split_dataset expects an array, or a tuple, list or dict of arrays with the same number of rows, "
            f"received {type(dataset).__name__} with row counts {[len(a) if a.ndim else None for a in arrays]}."
        )
    return arrays


def _rebuild(dataset, arrays: list[np.ndarray]):
    if isinstance(dataset, dict):
        return dict(zip(dataset, arrays, strict=True))
    if isinstance(dataset, (list, tuple)):
        return type(dataset)(arrays) if type(dataset) in (list, tuple) else type(dataset)(*arrays)
    return arrays[0]


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """``(left, right)``: the first ``left_size`` rows and the last ``right_size`` rows of ``dataset``
    (an array, or a tuple, list or dict of arrays with as many rows), each in ``dataset``'s
    structure, as NumPy arrays. Sizes are row counts (int) or fractions (float, rounded); one may
    be None for the rest of the rows. ``shuffle``: reorder the rows first (NumPy's generator seeded
    with ``seed``). Keras 3 returns ``tf.data`` datasets; kfunc returns arrays, which ``fit`` takes."""
    arrays = _rows(dataset)
    total = len(arrays[0])
    if left_size is None and right_size is None:
        raise ArgumentError("split_dataset: give left_size, right_size or both (a row count or a fraction).")
    left, right = _size(left_size, total, "left"), _size(right_size, total, "right")
    left = total - right if left is None else left
    right = total - left if right is None else right
    if left + right > total or left == 0 or right == 0:
        raise ArgumentError(
            f"split_dataset: left_size={left_size!r} and right_size={right_size!r} give {left} and {right} rows of "
            f"{total}; each side needs at least one row and together at most {total}."
        )
    if shuffle:
        order = np.random.default_rng(seed).permutation(total)
        arrays = [a[order] for a in arrays]
    return _rebuild(dataset, [a[:left] for a in arrays]), _rebuild(dataset, [a[total - right:] for a in arrays])
