"""``save_weights`` / ``load_weights``: a ``.npz`` of arrays keyed by weight path, read with
``allow_pickle=False`` so a file can never run code, written atomically.

Loading matches weights by path (``"dense_1/kernel"``); when no path matches but the file holds
the same number of weights with the same shapes in the same order (the same architecture built
again, whose default layer names differ), they are loaded in order, as Keras 2 did."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from kfunc.errors import KfuncError, WeightsError
from kfunc.saving.atomic import atomic_write


class WeightsFileError(KfuncError, ValueError):
    """A weights file is missing, unreadable, corrupt or holds something other than plain arrays."""


def save_weights(model, path) -> None:
    """Every weight of ``model`` under its path (``"dense_1/kernel"``), in one ``.npz``."""
    arrays = {variable.path: variable.numpy() for variable in model.weights}
    if len(arrays) != len(model.weights):
        raise WeightsError(f"Model '{model.name}' has two weights with the same path; give its layers unique names.")
    with atomic_write(path) as stream:
        np.savez(stream, **arrays)


def read_weights_file(path) -> dict[str, np.ndarray]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsFileError(f"No weights file at '{path}'.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as error:
        raise WeightsFileError(f"'{path}' is not a readable kfunc weights file (.npz of plain arrays): {error}") from None


def load_weights(model, path) -> None:
    """Set every weight of ``model`` from ``path``; lists every missing, unexpected or
    mis-shaped entry (with both shapes) before changing anything."""
    stored = read_weights_file(path)
    variables = {v.path: v for v in model.weights}
    same_layout = [tuple(a.shape) for a in stored.values()] == [v.shape for v in variables.values()]
    if same_layout and not set(stored) & set(variables):
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
    for name, variable in variables.items():
        variable.set_value(stored[name])
