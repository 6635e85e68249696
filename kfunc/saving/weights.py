"""``save_weights`` / ``load_weights``: every weight under its structural path (``layers/dense/vars/0``,
see ``kfunc.saving.structure``), so a file loads into the same architecture built again, whatever
its layers are named. The format follows the file's suffix:

- ``.npz`` (kfunc's own; ``w.weights.npz``): a zip of ``<path>.npy`` arrays and a member
  ``kfunc_weights.json`` (``{"format": "kfunc.weights", "format_version": 2, "bfloat16": [paths]}``:
  NumPy has no bfloat16, so those weights are stored as their raw ``uint16`` bits and tagged);
  read by the strict reader of ``kfunc.io.strict_zip``. Files written before structural paths
  (no ``kfunc_weights.json``, arrays keyed ``dense_1/kernel``) still load, matched by weight path;
- ``.safetensors``: a safetensors file (readable by ``safetensors.numpy.load_file`` and the rest of
  that ecosystem), one tensor per structural path, bfloat16 as ``BF16``;
- ``.h5`` (``w.weights.h5``): Keras 3's weights file layout, through the optional ``h5py``;
  Keras's own ``.weights.h5`` files load into the equivalent kfunc model.

``load_weights`` also reads whole-model files: kfunc's (``.kfunc``) and Keras 3's (``.keras``).
Every file is read without running code and with its sizes checked before anything is allocated.
"""

from __future__ import annotations

import os

import numpy as np

from kfunc.errors import WeightsError
from kfunc.saving import h5_file, keras_archive, safetensors_file
from kfunc.saving.bfloat16 import BFLOAT16, storable
from kfunc.io.strict_zip import open_archive, write_array
from kfunc.io.atomic import atomic_write
from kfunc.io.files import open_regular_file
from kfunc.saving.errors import SavingError, WeightsFileError
from kfunc.saving.structure import assign_all, match_weights, structural_weights

__all__ = ["WeightsFileError", "load_weights", "read_weights_file", "save_weights"]

MARKER = "kfunc_weights.json"
FORMAT = "kfunc.weights"
FORMAT_VERSION = 2
_FORMATS_TEXT = (
    "'.npz' (kfunc's weights file, e.g. 'model.weights.npz'), '.safetensors', and '.h5' (Keras 3's layout, "
    "e.g. 'model.weights.h5', needs h5py)"
)


def _suffix_format(path: str, *, loading: bool) -> str:
    lowered = path.lower()
    for suffix, kind in ((".npz", "npz"), (".safetensors", "safetensors"), (".h5", "h5"), (".hdf5", "h5")):
        if lowered.endswith(suffix):
            return kind
    if loading and lowered.endswith((".kfunc", ".keras")):
        return "model"
    if loading:
        raise WeightsFileError(
            f"load_weights cannot tell the format of '{path}' from its suffix: it reads {_FORMATS_TEXT}, and "
            "whole-model files '.kfunc' and '.keras'; rename the file to its format's suffix."
        )
    raise SavingError(
        f"save_weights cannot tell which format to write to '{path}' from its suffix: it writes {_FORMATS_TEXT}; "
        "end the file name with one of them."
    )


# ---------------------------------------------------------------------- saving
def save_weights(model, path, overwrite: bool = True) -> None:
    """Every weight of ``model`` under its structural path, in the format of ``path``'s suffix,
    written atomically (a failed save leaves the previous file as it was)."""
    path = os.fspath(path)
    kind = _suffix_format(path, loading=False)
    if not overwrite and os.path.exists(path):
        raise SavingError(f"'{path}' exists and overwrite=False.")
    arrays = {entry.path: np.asarray(entry.variable.numpy()) for entry in structural_weights(model)}
    if kind == "safetensors":
        safetensors_file.write_safetensors(path, arrays, {"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    elif kind == "h5":
        h5_file.write_h5_weights(path, arrays)
    else:
        _write_npz(path, arrays)


def _write_npz(path: str, arrays: dict) -> None:
    import json
    import zipfile

    bfloat16 = [name for name, value in arrays.items() if value.dtype == BFLOAT16]
    marker = {"format": FORMAT, "format_version": FORMAT_VERSION, "bfloat16": bfloat16}
    with atomic_write(path) as stream, zipfile.ZipFile(stream, "w") as archive:
        archive.writestr(MARKER, json.dumps(marker))
        for name, value in arrays.items():
            write_array(archive, f"{name}.npy", storable(value))


# ---------------------------------------------------------------------- loading
def read_weights_file(path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` by key (the member name without ``.npy``; bfloat16
    weights restored); raises ``WeightsFileError`` for a missing, corrupt or refused file."""
    return _read_npz(path)[0]


def _read_npz(path) -> tuple[dict[str, np.ndarray], dict | None]:
    """``(arrays, marker)``; ``marker`` is ``None`` for files written before structural paths."""
    with open_archive(path, error=WeightsFileError, what="weights file (.npz of plain arrays)") as archive:
        marker = archive.read_json(MARKER, limit=64 << 20) if MARKER in archive.names else None
        if marker is not None:
            _check_marker(marker, os.fspath(path))
        arrays = {}
        for name in archive.names:
            if name == MARKER:
                continue
            if not name.endswith(".npy"):
                raise WeightsFileError(
                    f"The weights file '{os.fspath(path)}': the member {name[:80]!r} is not an .npy array."
                )
            arrays[name[: -len(".npy")]] = archive.read_array(name)
    for name in marker["bfloat16"] if marker else ():
        value = arrays.get(name)
        if value is None or value.dtype != np.uint16:
            raise WeightsFileError(
                f"The weights file '{os.fspath(path)}' tags {name[:80]!r} as bfloat16 but holds no uint16 array there."
            )
        arrays[name] = value.view(BFLOAT16)
    return arrays, marker


def _check_marker(marker, path: str) -> None:
    valid = (
        isinstance(marker, dict)
        and marker.get("format") == FORMAT
        and isinstance(marker.get("bfloat16"), list)
        and all(isinstance(name, str) for name in marker["bfloat16"])
    )
    if not valid:
        raise WeightsFileError(f"The weights file '{path}': {MARKER} is not a kfunc weights description.")
    version = marker.get("format_version")
    if type(version) is not int or not 2 <= version <= FORMAT_VERSION:
        raise WeightsFileError(
            f"The weights file '{path}' has format version {version!r:.20}; this kfunc reads version "
            f"{FORMAT_VERSION} (a newer kfunc wrote it?)."
        )


def load_weights(model, path, skip_mismatch: bool = False) -> None:
    """Set every weight of ``model`` from the file at ``path`` (any format above), matched by
    structure. Every missing, unexpected or mis-shaped weight is listed, naming the layer and both
    shapes, before anything changes; ``skip_mismatch=True`` leaves such layers as they are (with a
    warning) and loads the rest."""
    path = os.fspath(path)
    # Refuse a FIFO or a device before anything else (the suffix check would otherwise speak first).
    if os.path.exists(path):
        open_regular_file(path, error=WeightsFileError, what="weights file").close()
    kind = _suffix_format(path, loading=True)
    source = f"'{path}'"
    if kind == "npz":
        stored, marker = _read_npz(path)
        if marker is None:
            _load_by_variable_path(model, stored, path)
            return
    elif kind == "safetensors":
        stored = safetensors_file.read_safetensors(path)[0]
    elif kind == "h5":
        stored = h5_file.read_h5_weights(path)
    else:
        stored = keras_archive.whole_model_weights(path)
    assign_all(match_weights(model, stored, source, skip_mismatch=skip_mismatch), source)


def _load_by_variable_path(model, stored: dict, path: str) -> None:
    """Files of format version 1: keyed by weight path (``dense_1/kernel``); when no key matches
    but the shapes line up in order (the same architecture built again), in order."""
    variables = {v.path: v for v in model.weights}
    same_layout = [tuple(a.shape) for a in stored.values()] == [v.shape for v in variables.values()]
    if same_layout and not set(stored) & set(variables):
        assign_all(list(zip(variables.values(), stored.values(), strict=True)), f"'{path}'")
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
            f"Weights in '{path}' do not fit model '{model.name}': missing {missing}, unexpected "
            f"{unexpected}, shape mismatches {mismatched}."
        )
    assign_all([(variable, stored[name]) for name, variable in variables.items()], f"'{path}'")
