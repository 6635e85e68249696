"""``kfunc.models``: Model, Sequential, ``save_model`` / ``load_model``, ``clone_model``, ``model_from_json``."""

from kfunc.models.cloning import clone_model
from kfunc.models.functional import Model
from kfunc.models.sequential import Sequential
from kfunc.models.subclassed import SubclassedModel
from kfunc.registry import add_builtins as _add_builtins
from kfunc.saving.model_file import save_model
from kfunc.saving.model_loading import load_model
from kfunc.saving.serialization import model_from_json

_add_builtins("layer", {"Functional": Model, "Sequential": Sequential})

__all__ = ["Model", "Sequential", "clone_model", "load_model", "model_from_json", "save_model"]
