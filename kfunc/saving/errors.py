"""The errors of saving and loading.

Everything wrong with a file on load is one family, ``SavedFileError`` (a ``ValueError``): a
missing path, an empty, truncated or corrupt archive, a member too large, a refused dtype, a
config naming a class or function that is not registered. Code catching that family never sees
``FileNotFoundError``, ``zipfile.BadZipFile``, ``json.JSONDecodeError`` or ``pickle`` errors.
"""

from __future__ import annotations

from kfunc.errors import KfuncError


class SavedFileError(KfuncError, ValueError):
    """A saved file (weights or whole model) is missing, unreadable, corrupt, or holds something
    kfunc refuses to load (pickled objects, unsafe member names, sizes over the caps)."""


class WeightsFileError(SavedFileError):
    """A weights file is missing, unreadable, corrupt or holds something other than plain arrays."""


class ModelFileError(SavedFileError):
    """A model file (``model.save``) is missing, unreadable, corrupt or describes a model kfunc
    cannot rebuild."""


class UnknownObjectError(ModelFileError):
    """A model file names a class or function that is neither built in, registered with
    ``kfunc.saving.register``, nor given in ``custom_objects``; nothing is ever imported by name."""


class KerasFileError(ModelFileError):
    """A Keras 3 file (``.keras``) describes something kfunc refuses to load (a ``Lambda`` layer,
    a class or function outside Keras that is not registered, an option kfunc lacks) or cannot read."""


class SavingError(KfuncError, ValueError):
    """A model cannot be saved: it holds an object that cannot be named in a file (a ``lambda``
    that is not registered, an array among call arguments, a weight path that is not a safe name)."""


class RegistrationError(KfuncError, ValueError):
    """``kfunc.saving.register`` was given a name that is taken or not a non-empty string."""
