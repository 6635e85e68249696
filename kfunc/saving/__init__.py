"""Saving and loading: weights files and whole-model files that cannot carry code, written
atomically; the registry through which a file names classes and functions."""

from kfunc.saving.errors import (
    ConfigError,
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
from kfunc.saving.registry import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register,
    register_keras_serializable,
    registered_name,
    registered_object,
)
from kfunc.saving.serialization import deserialize_keras_object, serialize_keras_object
from kfunc.saving.weights import load_weights, save_weights

__all__ = [
    "ConfigError",
    "CustomObjectScope",
    "KerasFileError",
    "ModelFileError",
    "RegistrationError",
    "SavedFileError",
    "SavingError",
    "UnknownObjectError",
    "WeightsFileError",
    "custom_object_scope",
    "deserialize_keras_object",
    "load_weights",
    "save_weights",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "register",
    "register_keras_serializable",
    "registered_name",
    "registered_object",
    "save_model",
    "serialize_keras_object",
]
