"""``save_weights`` / ``load_weights``: a ``.npz`` of arrays keyed by weight path, written
atomically and read by the strict reader of ``kfunc.io.strict_zip`` (plain numeric arrays only,
sizes checked before anything is allocated), so a file can never run code or exhaust memory.

Loading matches weights by path (``"dense_1/kernel"``); when no path matches but the file holds
the same number of weights with the same shapes in the same order (the same architecture built
again, whose default layer names differ), they are loaded in order, as Keras 2 did."""

from __future__ import annotations

import os

import numpy as np

from kfunc.errors import WeightsError
from kfunc.io.atomic import atomic_write
from kfunc.io.strict_zip import open_archive
from kfunc.saving.dtype_policy import ADVICE, dtype_mismatch
from kfunc.saving.errors import WeightsFileError

__all__ = ["WeightsFileError", "load_weights", "read_weights_file", "save_weights"]


def save_weights(model, path) -> None:
    """Every weight of ``model`` under its path (``"dense_1/kernel"``), in one ``.npz``."""
    arrays = {variable.path: variable.numpy() for variable in model.weights}
    if len(arrays) != len(model.weights):
        raise WeightsError(f"Model '{model.name}' has two weights with the same path; give its layers unique names.")
    with atomic_write(path) as stream:
        np.savez(stream, **arrays)


def read_weights_file(path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` by key (the member name without ``.npy``); raises
    ``WeightsFileError`` for a missing, corrupt or refused file."""
    with open_archive(path, error=WeightsFileError, what="weights file (.npz of plain arrays)") as archive:
        arrays = {}
        for name in archive.names:
            if not name.endswith(".npy"):
                raise WeightsFileError(
                    f"The weights file '{os.fspath(path)}': the member {name[:80]!r} is not an .npy array."
                )
            arrays[name[: -len(".npy")]] = archive.read_array(name)
        return arrays


def load_weights(model, path) -> None:
    """Set every weight of ``model`` from ``path``; lists every missing, unexpected,
    mis-shaped or mis-typed entry (with both shapes or dtypes) before changing anything.
    Dtypes must match exactly (``kfunc.saving.dtype_policy``, shared with ``load_model``)."""
    stored = read_weights_file(path)
    variables = {v.path: v for v in model.weights}
    same_layout = [tuple(a.shape) for a in stored.values()] == [v.shape for v in variables.values()]
    if same_layout and not set(stored) & set(variables):
        _refuse_other_dtypes(model, path, zip(variables.items(), stored.values(), strict=True))
        for variable, value in zip(variables.values(), stored.values(), strict=True):
            variable.set_value(value)
        return
    missing = [p for p in variables if p not in stored]
    unexpected = [p for p in stored if p not in variables]
    mismatched = [
        f"{p}: model {variables[p].shape}, file {stored[p].shape}"
        for p in variables
        if p in stored and tuple(stored[p].shape) != variables[p].shape
    ]
    if missing or unexpected or mismatched:
        raise WeightsError(
            f"Weights in '{os.fspath(path)}' do not fit model '{model.name}': missing {missing}, unexpected "
            f"{unexpected}, shape mismatches {mismatched}."
        )
    _refuse_other_dtypes(model, path, ((item, stored[item[0]]) for item in variables.items()))
    for name, variable in variables.items():
        variable.set_value(stored[name])


# ---- dtype policy (kfunc.saving.dtype_policy): the same rule as load_model
def _refuse_other_dtypes(model, path, pairs) -> None:
    """``pairs``: ``((weight path, variable), stored array)``; raises ``WeightsError`` listing
    every weight whose stored dtype is not the variable's."""
    mismatches = [m for (name, variable), value in pairs if (m := dtype_mismatch(name, variable.dtype, value.dtype))]
    if mismatches:
        raise WeightsError(
            f"Weights in '{os.fspath(path)}' do not fit model '{model.name}': dtype mismatches {mismatches[:10]}; "
            f"{ADVICE}."
        )
