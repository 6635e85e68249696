"""Saving and loading: weights files and whole-model files that cannot carry code, written
atomically; the registry through which a file names classes and functions."""

from kfunc.saving.errors import (
    KerasFileError,
    ModelFileError,
    RegistrationError,
    SavedFileError,
    SavingError,
    UnknownObjectError,
    WeightsFileError,
)
from kfunc.saving.model_file import save_model
from kfunc.saving.model_loading import load_model
from kfunc.saving.registry import register, registered_name

__all__ = [
    "KerasFileError",
    "ModelFileError",
    "RegistrationError",
    "SavedFileError",
    "SavingError",
    "UnknownObjectError",
    "WeightsFileError",
    "load_model",
    "register",
    "registered_name",
    "save_model",
]
