"""``kfunc.models``: Model, Sequential and ``load_model``."""

from kfunc.models.functional import Model
from kfunc.models.sequential import Sequential
from kfunc.models.subclassed import SubclassedModel
from kfunc.registry import add_builtins as _add_builtins
from kfunc.saving.model_loading import load_model

_add_builtins("layer", {"Functional": Model, "Sequential": Sequential})

__all__ = ["Model", "Sequential", "load_model"]
