"""``Loss``: Keras 3's loss base class, and the reductions that turn per-sample values into one
number.

A subclass defines ``call(y_true, y_pred) -> values`` of shape ``(batch, ...)``; calling the loss,
``loss(y_true, y_pred, sample_weight=None)``, weighs the values and reduces them as ``reduction``
says (``"sum_over_batch_size"`` by default). The training step uses ``call`` and the same
reduction, so a ``Loss`` subclass trains in ``compile(loss=...)`` exactly as it computes eagerly.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from kfunc import config
from kfunc.errors import TrainingConfigError
from kfunc.naming import to_snake_case, unique_name

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def standardize_reduction(reduction, owner: str):
    """``reduction`` if Keras 3 knows it; otherwise a ``TrainingConfigError`` naming ``owner``."""
    if reduction not in REDUCTIONS:
        raise TrainingConfigError(
            f"{owner} got reduction={reduction!r}; expected one of {list(REDUCTIONS)} "
            "(\"sum_over_batch_size\" averages over every value, as Keras does by default)."
        )
    return reduction


def match_ranks(a, b):
    """Keras's rank fix-up: when ranks differ by one and the longer array ends in a size-1 axis,
    drop that axis, or give a rank-1 array a trailing axis. ``(batch,)`` vs ``(batch, 1)``."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def broadcast_weight(weight, values):
    """``weight`` ``(batch,)`` or ``(batch, ...)`` broadcast over the trailing axes of ``values``."""
    weight = jnp.asarray(weight, values.dtype)
    values, weight = match_ranks(values, weight)
    if weight.ndim < values.ndim:
        weight = weight.reshape(weight.shape + (1,) * (values.ndim - weight.ndim))
    return jnp.broadcast_arrays(values, weight)  # a loss reduced to one number (Dice) meets (batch,) weights


def reduce_weighted(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Keras's reduction of loss ``values`` ``(batch, ...)`` weighted by ``sample_weight``.

    ``"sum"``: the weighted sum; ``"sum_over_batch_size"`` / ``"mean"``: the weighted sum over the
    number of values; ``"mean_with_sample_weight"``: over the sum of the weights; ``"none"``/None:
    the weighted values themselves."""
    if sample_weight is not None:
        values, sample_weight = broadcast_weight(sample_weight, values)
        values = values * sample_weight
    if reduction in (None, "none") or values.ndim == 0 or values.size == 0:
        return values
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = jnp.sum(sample_weight)
    else:
        divisor = jnp.asarray(values.size, total.dtype)
    return jnp.where(divisor != 0, total / jnp.where(divisor != 0, divisor, 1), 0.0).astype(total.dtype)


class Loss:
    """Base class of losses: subclass it and define ``call(y_true, y_pred) -> values (batch, ...)``.

    ``name``: shown in logs (default: the class name in snake case); ``reduction``: one of
    ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``, ``"mean_with_sample_weight"``,
    ``"none"`` or None; ``dtype``: the dtype the inputs are cast to (default ``kfunc.config.floatx()``).
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self.reduction = standardize_reduction(reduction, f"Loss '{self.name}' ({type(self).__name__})")
        self._dtype = dtype

    @property
    def dtype(self) -> str:
        return self._dtype if self._dtype is not None else config.floatx()

    def call(self, y_true, y_pred):
        raise NotImplementedError(
            f"Loss '{self.name}' ({type(self).__name__}) must define call(y_true, y_pred) returning the "
            "per-sample losses."
        )

    def values(self, y_true, y_pred):
        """``call`` on inputs cast to the loss's dtype: the unreduced values ``(batch, ...)``."""
        y_pred = jnp.asarray(y_pred, self.dtype)
        y_true = jnp.asarray(y_true, self.dtype)
        values = self.call(y_true, y_pred)
        if not hasattr(values, "shape") or not hasattr(values, "dtype"):
            raise TrainingConfigError(
                f"Loss '{self.name}' ({type(self).__name__}).call returned {type(values).__name__}; it must "
                "return an array of per-sample losses, shape (batch,) or (batch, ...)."
            )
        return jnp.asarray(values)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss of ``y_pred`` ``(batch, ...)`` against ``y_true``, reduced by ``reduction``."""
        return reduce_weighted(self.values(y_true, y_pred), sample_weight, self.reduction)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class LossFunctionWrapper(Loss):
    """A ``Loss`` computing ``fn(y_true, y_pred, **kwargs)``, e.g.
    ``LossFunctionWrapper(my_loss, name="my_loss", scale=2.0)``."""

    def __init__(self, fn: Callable, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name if name is not None else getattr(fn, "__name__", None), reduction=reduction,
                         dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = match_ranks(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "fn": self.fn, **self._fn_kwargs}

