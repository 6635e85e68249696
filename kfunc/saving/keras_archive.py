"""Keras 3 ``.keras`` files, opened safely: a zip archive with ``metadata.json``
(``{"keras_version": "3.x", ...}``), ``config.json`` (the model's Keras config, translated by
``kfunc.saving.keras_config``) and ``model.weights.h5`` (the weights in Keras's layout, read by
``kfunc.saving.h5_file``), turned into a kfunc model with the same weights and outputs.

The archive is read by kfunc's strict zip reader (member names, sizes and compression ratios
checked before anything is decompressed), the config resolves names only through kfunc's tables
and registry, and the HDF5 file is checked object by object before a number is read. A Keras
model's compile settings are not restored (compile the loaded model again).
"""

from __future__ import annotations

import os

from kfunc.errors import WeightsError
from kfunc.io.strict_zip import open_archive
from kfunc.saving.errors import KerasFileError, SavedFileError, WeightsFileError
from kfunc.saving.h5_file import read_h5_weights
from kfunc.saving.keras_config import KerasConfigTranslator
from kfunc.saving.model_config import ModelBuilder
from kfunc.saving.registry import Resolver, model_classes, shown
from kfunc.saving.structure import assign_all, match_weights, structural_weights

MAX_CONFIG_BYTES = 64 << 20
_WHAT = "Keras model file (.keras)"
_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}


def is_keras_archive(names) -> bool:
    """Whether a zip's member names are those of a Keras 3 ``.keras`` file (kfunc's model files
    have no ``metadata.json``)."""
    return "metadata.json" in names and "config.json" in names


def load_keras_model(filepath, custom_objects=None):
    """The kfunc model described by the Keras 3 ``.keras`` file at ``filepath``, with its weights.

    ``custom_objects``: ``{name: class_or_function}`` for the file's own registered classes (by
    their Keras ``registered_name``). Raises ``KerasFileError`` (a ``ModelFileError``) for a
    refused or unreadable file and ``UnknownObjectError`` for a name kfunc does not know."""
    Model, _ = model_classes()
    path = os.fspath(filepath)
    source = f"'{path}'"
    resolver = Resolver(custom_objects)
    with open_archive(path, error=KerasFileError, what=_WHAT) as archive:
        extra = sorted(set(archive.names) - _MEMBERS)
        if extra:
            raise KerasFileError(
                f"The {_WHAT} '{path}' holds members kfunc does not read ({[n[:80] for n in extra[:5]]}); it reads "
                f"Keras 3 files with exactly {sorted(_MEMBERS)} (weights saved as .h5, no assets)."
            )
        metadata = archive.read_json("metadata.json", limit=1 << 20)
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        if not (isinstance(version, str) and version.split(".")[0] == "3"):
            raise KerasFileError(
                f"The {_WHAT} '{path}' was written by Keras {shown(version)}; kfunc reads files of Keras 3."
            )
        document = archive.read_json("config.json", limit=MAX_CONFIG_BYTES)
        weights = archive.read_bytes("model.weights.h5")
    spec = KerasConfigTranslator(resolver, source).layer_spec(document, "config.json")
    model = ModelBuilder(resolver).layer(spec, f"The Keras file {source}")
    if not isinstance(model, Model):
        raise KerasFileError(f"The {_WHAT} '{path}' describes a {type(model).__name__} layer, not a model.")
    try:
        stored = read_h5_weights(weights, name=f"{path}/model.weights.h5")
        pairs = match_weights(model, stored, f"{source} (model.weights.h5)")
    except (WeightsFileError, WeightsError) as error:
        raise KerasFileError(str(error)) from None
    assign_all(pairs, source)
    return model


def whole_model_weights(filepath) -> dict:
    """``{structural path: array}`` of the whole-model file at ``filepath``: a Keras ``.keras``
    file (its ``model.weights.h5``) or a kfunc model file (rebuilt, then read by structure)."""
    from kfunc.saving.model_file import load_model

    path = os.fspath(filepath)
    with open_archive(path, error=WeightsFileError, what="model file (.kfunc or .keras)") as archive:
        if is_keras_archive(archive.names):
            if "model.weights.h5" not in archive.names:
                raise WeightsFileError(f"The Keras file '{path}' holds no model.weights.h5 (only .h5 weights are read).")
            return read_h5_weights(archive.read_bytes("model.weights.h5"), name=f"{path}/model.weights.h5")
    try:
        source_model = load_model(path, compile=False)
    except SavedFileError as error:
        raise WeightsFileError(f"load_weights cannot read the model file '{path}': {error}") from None
    return {entry.path: entry.variable.numpy() for entry in structural_weights(source_model)}
