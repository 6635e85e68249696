"""Losses by name, and what the training step asks of a loss: per-sample values and the batch's
loss (``batch_loss``), with a mask (``masked_total``) or without.

A loss given to ``compile`` is a name (Keras 3's function names, class names and aliases such as
``"mse"``, ``"bce"``, ``"kld"``), a ``Loss`` instance (its ``call`` and ``reduction`` are used), or
a function ``(y_true, y_pred) -> values (batch, ...)`` (averaged over the batch, as Keras does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax.numpy as jnp

from kfunc.errors import TrainingConfigError
from kfunc.train.losses import functions as f
from kfunc.train.losses.classes import BUILTIN_LOSS_CLASSES
from kfunc.train.losses.loss import Loss, reduce_weighted

LOSSES: dict[str, Callable] = {
    "mean_squared_error": f.mean_squared_error,
    "mse": f.mean_squared_error,
    "MSE": f.mean_squared_error,
    "mean_absolute_error": f.mean_absolute_error,
    "mae": f.mean_absolute_error,
    "MAE": f.mean_absolute_error,
    "mean_absolute_percentage_error": f.mean_absolute_percentage_error,
    "mape": f.mean_absolute_percentage_error,
    "MAPE": f.mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": f.mean_squared_logarithmic_error,
    "msle": f.mean_squared_logarithmic_error,
    "MSLE": f.mean_squared_logarithmic_error,
    "binary_crossentropy": f.binary_crossentropy,
    "bce": f.binary_crossentropy,
    "BCE": f.binary_crossentropy,
    "categorical_crossentropy": f.categorical_crossentropy,
    "sparse_categorical_crossentropy": f.sparse_categorical_crossentropy,
    "huber": f.huber,
    "huber_loss": f.huber,
    "hinge": f.hinge,
    "squared_hinge": f.squared_hinge,
    "categorical_hinge": f.categorical_hinge,
    "kl_divergence": f.kl_divergence,
    "kld": f.kl_divergence,
    "KLD": f.kl_divergence,
    "kullback_leibler_divergence": f.kl_divergence,
    "poisson": f.poisson,
    "cosine_similarity": f.cosine_similarity,
    "log_cosh": f.log_cosh,
    "logcosh": f.log_cosh,
    "binary_focal_crossentropy": f.binary_focal_crossentropy,
    "categorical_focal_crossentropy": f.categorical_focal_crossentropy,
    "dice": f.dice,
    "tversky": f.tversky,
}

LOSS_CLASSES: dict[str, type] = {cls.__name__: cls for cls in BUILTIN_LOSS_CLASSES}


def get(identifier) -> Callable:
    """A loss function (for a function name or alias), a new ``Loss`` (for a class name, or a
    ``{"class_name", "config"}`` dict), or ``identifier`` itself when it is a ``Loss`` or a function."""
    if isinstance(identifier, str):
        if identifier in LOSSES:
            return LOSSES[identifier]
        if identifier in LOSS_CLASSES:
            return LOSS_CLASSES[identifier]()
        raise TrainingConfigError(
            f"Unknown loss '{identifier}'; expected one of {sorted(set(LOSSES) | set(LOSS_CLASSES))}, a "
            "kfunc.losses.Loss instance, or a function (y_true, y_pred) -> per-sample loss."
        )
    if isinstance(identifier, dict) and identifier.get("class_name") in LOSS_CLASSES:
        return LOSS_CLASSES[identifier["class_name"]].from_config(dict(identifier.get("config") or {}))
    if inspect.isclass(identifier) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise TrainingConfigError(
        f"A loss must be a name, a Loss or a function (y_true, y_pred), received {type(identifier).__name__} "
        f"{identifier!r:.80}."
    )


def check_trainable(loss, output_name: str) -> None:
    """A ``Loss`` in ``compile`` must reduce to one number per batch."""
    if isinstance(loss, Loss) and loss.reduction in (None, "none"):
        raise TrainingConfigError(
            f"compile: the loss '{loss.name}' ({type(loss).__name__}) of output '{output_name}' has reduction="
            f"{loss.reduction!r}, so it returns one value per sample, but training needs one number per batch; "
            "use reduction='sum_over_batch_size' (the default), 'sum', 'mean' or 'mean_with_sample_weight'."
        )


def name_of(loss: Callable) -> str:
    """The name Keras would show: the registry name, ``Loss.name``, or the function's name."""
    if isinstance(loss, Loss):
        return loss.name
    for name, known in LOSSES.items():
        if known is loss:
            return name
    return getattr(loss, "__name__", type(loss).__name__)


def values_of(loss: Callable, y_true, y_pred):
    """The loss's unreduced values ``(batch, ...)``: ``Loss.call`` (inputs cast to its dtype), or
    the function's result."""
    values = loss.values(y_true, y_pred) if isinstance(loss, Loss) else loss(y_true, y_pred)
    return jnp.asarray(values)


def per_sample(loss: Callable, y_true, y_pred):
    """The loss's values reduced to one per sample, ``(batch,)``."""
    values = values_of(loss, y_true, y_pred)
    if values.ndim > 1:
        values = jnp.mean(values, axis=tuple(range(1, values.ndim)))
    return values


def batch_loss(loss: Callable, y_true, y_pred, weight):
    """The batch's loss, a float32 scalar: a ``Loss`` reduces its values with ``weight`` (``(batch,)``
    or None) as its ``reduction`` says; a function's per-sample values are averaged over the batch
    (``sum(values * weight) / batch``, Keras's ``"sum_over_batch_size"``)."""
    if isinstance(loss, Loss):
        values = values_of(loss, y_true, y_pred).astype(jnp.float32)
        return reduce_weighted(values, weight, loss.reduction)
    values = per_sample(loss, y_true, y_pred).astype(jnp.float32)
    return jnp.sum(values if weight is None else values * weight) / values.shape[0]


def masked_total(loss: Callable, y_true, y_pred, mask, weight, *, output_name: str = "output"):
    """``(sum of loss * weight over kept steps, number of kept steps)`` for an output that carries
    a mask ``(batch, timesteps)``: Keras's rule, the loss averages over the kept steps of the whole
    batch. ``weight (batch,)``: the sample weights, or None (all 1)."""
    values = values_of(loss, y_true, y_pred)
    mask = jnp.asarray(mask, bool)
    if values.ndim > mask.ndim:
        values = jnp.mean(values, axis=tuple(range(mask.ndim, values.ndim)))
    elif values.ndim < mask.ndim:
        raise TrainingConfigError(
            f"Output '{output_name}' carries a mask of shape {tuple(mask.shape)} (padded steps from "
            f"Embedding(mask_zero=True) or Masking), but its loss returned values of shape {tuple(values.shape)}: "
            "a loss must keep the timestep axes (reduce only the last axis) so that padded steps can be left out."
        )

    def per_row(w):
        return w.reshape(w.shape + (1,) * (mask.ndim - 1)).astype(jnp.float32)

    kept = mask.astype(jnp.float32)
    weighted = kept if weight is None else kept * per_row(weight)
    return jnp.sum(values.astype(jnp.float32) * weighted), jnp.sum(kept)
