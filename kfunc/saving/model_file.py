"""Whole-model files: ``save_model`` / ``model.save`` and ``load_model``.

A model file (``.kfunc`` by convention) is one zip archive, written atomically (a failed save
leaves the previous file as it was), with the members

- ``config.json``: ``{"format": "kfunc.model", "format_version": 1, "kfunc_version": ...,
  "model": <model spec, see kfunc.saving.model_config>, "weights": [{"path": "dense/kernel",
  "shape": [5, 4], "dtype": "float32"}, ...], "compile": <see kfunc.saving.compile_state>}``;
- ``weights/<path>.npy``: each weight under its path in the params/state trees
  (``weights/dense/kernel.npy``, nested models nested by name); a bfloat16 weight is stored as
  its ``uint16`` bits, its entry in ``weights`` saying ``"dtype": "bfloat16"``;
- ``optimizer/<i>.npy`` and ``optimizer/dropout_key.npy``: the optimizer state, when saved.

Loading never executes code from the file: classes and functions are found by name in the
registry only (``kfunc.saving.registry``), arrays are read by the strict reader of
``kfunc.io.strict_zip`` (no pickle, sizes checked before allocating and capped in proportion
to the file), and every problem with
the file raises ``ModelFileError`` (or its subclass ``UnknownObjectError``).
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from kfunc.io import strict_zip as archive_lib
from kfunc.saving.bfloat16 import BFLOAT16, restored, storable
from kfunc.io.atomic import atomic_write
from kfunc.saving.compile_state import compile_section, optimizer_members, restore_compile
from kfunc.saving.dtype_policy import ADVICE, dtype_mismatch
from kfunc.saving.errors import ModelFileError, SavingError
from kfunc.saving.model_config import ModelBuilder, ModelSerializer
from kfunc.saving.registry import Resolver, model_classes, shown
from kfunc.version import __version__

FORMAT = "kfunc.model"
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 64 << 20
_WHAT = "kfunc model file"


def _weight_entries(model) -> list[tuple[str, object]]:
    """``(path, variable)`` for every weight once, paths as in the params/state trees."""
    entries = []
    for variable, path in model.variable_paths():
        name = "/".join(path)
        if archive_lib.unsafe_member_name(f"weights/{name}.npy") or "" in path:
            raise SavingError(
                f"Weight path {name!r} of model '{model.name}' cannot be a file member name; rename the layer "
                "(names without '/', '..' or backslashes)."
            )
        entries.append((name, variable))
    if len({name for name, _ in entries}) != len(entries):
        raise SavingError(f"Model '{model.name}' has two weights with the same path; give its layers unique names.")
    return entries


def save_model(model, filepath, overwrite: bool = True, *, include_optimizer: bool = True) -> None:
    """Write ``model`` (architecture, weights and, with ``include_optimizer``, its compile()
    settings and optimizer state) to one file at ``filepath``, atomically."""
    Model, _ = model_classes()
    if not isinstance(model, Model):
        raise SavingError(f"save_model expects a kfunc Model, received {type(model).__name__}.")
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise SavingError(f"'{filepath}' exists and overwrite=False.")
    serializer = ModelSerializer()
    spec = serializer.layer_spec(model)
    weights = [(name, np.asarray(variable.numpy())) for name, variable in _weight_entries(model)]
    for name, value in weights:
        if (value.dtype.kind not in "biufc" or value.dtype.hasobject) and value.dtype != BFLOAT16:
            raise SavingError(f"Weight '{name}' has dtype {value.dtype}; model files hold plain numeric arrays only.")
    section, optimizer_arrays = compile_section(model, serializer.encoder) if include_optimizer else (None, [])
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kfunc_version": __version__,
        "model": spec,
        "weights": [{"path": n, "shape": list(v.shape), "dtype": v.dtype.name} for n, v in weights],
        "compile": section,
    }
    text = json.dumps(document)
    names = optimizer_members(section)
    with atomic_write(filepath) as stream, zipfile.ZipFile(stream, "w") as archive:
        archive_lib.write_member(archive, "config.json", text.encode())
        for name, value in weights:
            archive_lib.write_array(archive, f"weights/{name}.npy", storable(value))
        for name, value in zip(names, optimizer_arrays, strict=True):
            archive_lib.write_array(archive, name, value)


def load_model(filepath, custom_objects=None, compile: bool = True):
    """The model saved at ``filepath``, with its weights and (with ``compile=True``, when saved)
    its compile() settings and optimizer state, so ``fit`` continues where it stopped.

    ``custom_objects``: ``{name: class_or_function}`` for names the file uses that are not
    registered with ``kfunc.saving.register``. Raises ``ModelFileError`` for a missing, corrupt or
    refused file and ``UnknownObjectError`` for a name found nowhere."""
    resolver = Resolver(custom_objects)
    path = os.fspath(filepath)
    with archive_lib.open_archive(path, error=ModelFileError, what=_WHAT) as archive:
        document = archive.read_json("config.json", limit=MAX_CONFIG_BYTES)
        _check_document(document, path)
        section = document.get("compile")
        entries = _check_weight_entries(document["weights"], path)
        expected = {"config.json"} | {f"weights/{p}.npy" for p in entries} | set(optimizer_members(section))
        unexpected = sorted(set(archive.names) - expected)
        if unexpected:
            raise ModelFileError(f"Model file '{path}' holds unexpected members {[shown(n) for n in unexpected[:5]]}.")
        builder = ModelBuilder(resolver)
        model = builder.layer(document["model"], f"Model file '{path}'")
        if not isinstance(model, model_classes()[0]):
            raise ModelFileError(f"Model file '{path}' describes a {type(model).__name__} layer, not a model.")
        _set_weights(model, entries, archive, path)
        if compile and section is not None:
            restore_compile(model, section, builder.decoder, archive.read_array)
    return model


def _check_document(document, path: str) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not a {_WHAT}: config.json does not declare format '{FORMAT}'.")
    version = document.get("format_version")
    if type(version) is not int or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"Model file '{path}' has format version {shown(version)}; this kfunc reads version {FORMAT_VERSION} "
            "(a newer kfunc wrote it?)."
        )
    if not isinstance(document.get("model"), dict) or not isinstance(document.get("weights"), list):
        raise ModelFileError(f"Model file '{path}': config.json lacks the model or weights entries.")


def _check_weight_entries(entries, path: str) -> dict[str, tuple]:
    """``{weight path: (shape, dtype name)}`` from config.json's ``weights`` list."""
    found = {}
    for entry in entries:
        valid = (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("shape"), list)
            and all(type(d) is int and d >= 0 for d in entry["shape"])
            and isinstance(entry.get("dtype"), str)
        )
        if not valid or entry["path"] in found:
            raise ModelFileError(f"Model file '{path}': malformed or repeated weights entry {shown(entry)}.")
        found[entry["path"]] = (tuple(entry["shape"]), entry["dtype"])
    return found


def _set_weights(model, entries: dict, archive, path: str) -> None:
    """Read every weight, check it against the rebuilt model, then set them all."""
    variables = dict(_weight_entries(model))
    if not getattr(model, "_graph_network", True) and len(variables) == len(entries):
        # A subclassed model makes its layers anew in __init__ (new automatic names): its weights
        # pair with the file's in order, which the same architecture keeps; shapes are checked below.
        variables = dict(zip(entries, variables.values(), strict=True))
    missing = [p for p in variables if p not in entries]
    unexpected = [p for p in entries if p not in variables]
    if missing or unexpected:
        raise ModelFileError(
            f"Model file '{path}': the weights do not match the architecture it describes: missing "
            f"{missing[:10]}, unexpected {[shown(p) for p in unexpected[:10]]}."
        )
    values = []
    for name, variable in variables.items():
        value = restored(archive.read_array(f"weights/{name}.npy"), entries[name][1])
        if value.shape != variable.shape or entries[name] != (value.shape, value.dtype.name):
            raise ModelFileError(
                f"Model file '{path}': weight '{name}' is {value.dtype}{list(value.shape)}, the model needs "
                f"{variable.dtype}{list(variable.shape)}."
            )
        mismatch = dtype_mismatch(name, variable.dtype, value.dtype)
        if mismatch:
            raise ModelFileError(f"Model file '{path}': dtype mismatch {mismatch}; {ADVICE}.")
        values.append(value)
    for variable, value in zip(variables.values(), values, strict=True):
        variable.set_value(value)
