"""``load_model``: one entry point for whole-model files, kfunc's own (``model.save``) and Keras 3's
``.keras`` files, told apart by their content (a Keras file has a ``metadata.json`` member), so a
kfunc model saved as ``model.keras`` loads as well."""

from __future__ import annotations

import os
import zipfile

from kfunc.saving import keras_archive, model_file


def _is_keras_file(path: str) -> bool:
    """A cheap look at the member list; any problem is left to the strict reader to report."""
    if not os.path.isfile(path):  # a FIFO or device would block the open; the strict reader refuses them
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return keras_archive.is_keras_archive(archive.namelist())
    except Exception:  # noqa: BLE001 - not a zip, missing, unreadable: the kfunc reader says why
        return False


def load_model(filepath, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """The model saved at ``filepath``: a kfunc model file (with its weights and, with
    ``compile=True``, its compile settings and optimizer state) or a Keras 3 ``.keras`` file
    (its architecture and weights; compile it again).

    ``custom_objects``: ``{name: class_or_function}`` for names the file uses that are not
    registered with ``kfunc.saving.register``. ``safe_mode`` is accepted for Keras compatibility:
    kfunc never runs code from a file, whatever its value. Raises ``ModelFileError`` (or its
    subclasses ``KerasFileError``, ``UnknownObjectError``) for a missing, corrupt or refused file."""
    del safe_mode  # loading is always safe
    path = os.fspath(filepath)
    if _is_keras_file(path):
        return keras_archive.load_keras_model(path, custom_objects=custom_objects)
    return model_file.load_model(path, custom_objects=custom_objects, compile=compile)
