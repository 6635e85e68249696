"""``kfunc.models``: Model, Sequential and ``load_model``."""

from kfunc.models.functional import Model
from kfunc.models.sequential import Sequential
from kfunc.saving.model_loading import load_model

__all__ = ["Model", "Sequential", "load_model"]
