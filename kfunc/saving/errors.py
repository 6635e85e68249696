"""The errors of saving and loading.

Everything wrong with a file on load is one family, ``SavedFileError`` (a ``ValueError``): a
missing path, an empty, truncated or corrupt archive, a member too large, a refused dtype, a
config naming a class or function that is not registered. Code catching that family never sees
``FileNotFoundError``, ``zipfile.BadZipFile``, ``json.JSONDecodeError`` or ``pickle`` errors.
"""

from __future__ import annotations

from kfunc.errors import SavedFileError, WeightsFileError, ModelFileError, UnknownObjectError, SavingError, RegistrationError, KerasFileError, ConfigError  # noqa: F401 (re-exported)
