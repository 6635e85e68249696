"""``kfunc.models``: Model and Sequential."""

from kfunc.models.functional import Model
from kfunc.models.sequential import Sequential

__all__ = ["Model", "Sequential"]
