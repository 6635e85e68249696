"""InputSpec: what a layer accepts for one input, checked on every call (symbolic or arrays)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kfunc.errors import LayerInputError, describe_layer


@dataclass(frozen=True)
class InputSpec:
    """Constraints on one input: rank, sizes of given axes, dtype family.

    ``axes`` maps an axis (negative counts from the end) to the size it must have, e.g. a built
    Dense has ``axes={-1: in_features}``. ``hint`` ends the error message with how to fix it.
    """

    ndim: int | None = None
    min_ndim: int | None = None
    max_ndim: int | None = None
    axes: dict = field(default_factory=dict)
    dtype_kind: str | None = None  # "integer" or "floating"
    hint: str = ""

    def check(self, layer, index: int, shape: tuple, dtype) -> None:
        """Raise ``LayerInputError`` naming the layer, the input and the mismatch."""
        where = f"{describe_layer(layer)}: input {index}"
        ndim = len(shape)
        if self.ndim is not None and ndim != self.ndim:
            self._fail(f"{where} must have rank {self.ndim} (shape {_example(self.ndim)}), but received shape {shape} of rank {ndim}.")
        if self.min_ndim is not None and ndim < self.min_ndim:
            self._fail(f"{where} must have rank >= {self.min_ndim}, but received shape {shape} of rank {ndim}.")
        if self.max_ndim is not None and ndim > self.max_ndim:
            self._fail(f"{where} must have rank <= {self.max_ndim}, but received shape {shape} of rank {ndim}.")
        for axis, size in self.axes.items():
            if -ndim <= axis < ndim and shape[axis] is not None and shape[axis] != size:
                self._fail(
                    f"{where} must have size {size} on axis {axis} (the size the layer was built for), "
                    f"but received shape {shape}."
                )
        if self.dtype_kind == "integer" and not np.issubdtype(np.dtype(dtype), np.integer):
            self._fail(f"{where} must have an integer dtype, but received dtype {np.dtype(dtype).name} (shape {shape}).")
        if self.dtype_kind == "floating" and not np.issubdtype(np.dtype(dtype), np.floating):
            self._fail(f"{where} must have a floating dtype, but received dtype {np.dtype(dtype).name} (shape {shape}).")

    def _fail(self, message: str):
        raise LayerInputError(f"{message} {self.hint}".strip())


def _example(ndim: int) -> str:
    return "(" + ", ".join(["batch"] + [f"d{i}" for i in range(1, ndim)]) + ")"
