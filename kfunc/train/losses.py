"""Losses with Keras's names, formulas and defaults.

A loss is a function ``(y_true, y_pred) -> per-sample values`` of shape ``(batch,)``: the
elementwise loss averaged over the last axis, as Keras computes it before reducing. The training
step reduces per-sample values with sample weights (``sum(values * weight) / samples``).
Classes (``BinaryCrossentropy(from_logits=True)``) carry options; strings name the defaults.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from kfunc.errors import TrainingConfigError  # noqa: F401 (re-exported)

EPSILON = 1e-7  # Keras's backend epsilon, used to clip probabilities


def _float(x, like):
    return jnp.asarray(x, like.dtype if jnp.issubdtype(like.dtype, jnp.floating) else jnp.float32)


def mean_squared_error(y_true, y_pred):
    return jnp.mean(jnp.square(y_pred - _float(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return jnp.mean(jnp.abs(y_pred - _float(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    return 100.0 * jnp.mean(jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON)), axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    first = jnp.log(jnp.maximum(y_pred, EPSILON) + 1.0)
    second = jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    return jnp.mean(jnp.square(first - second), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Mean over the last axis of ``-(y log p + (1 - y) log(1 - p))``; ``p`` clipped to [eps, 1-eps]."""
    y_true = _float(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # max(x, 0) - x * y + log(1 + exp(-|x|)): stable for large logits.
        values = jnp.maximum(y_pred, 0) - y_pred * y_true + jnp.log1p(jnp.exp(-jnp.abs(y_pred)))
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        values = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log(1.0 - p))
    return jnp.mean(values, axis=-1)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """``-sum(y * log p)`` over the classes; probabilities renormalized and clipped as in Keras."""
    y_true = _float(y_true, y_pred)
    if label_smoothing:
        classes = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    if from_logits:
        log_p = jax.nn.log_softmax(y_pred, axis=axis)
    else:
        p = y_pred / jnp.sum(y_pred, axis=axis, keepdims=True)
        log_p = jnp.log(jnp.clip(p, EPSILON, 1.0 - EPSILON))
    return -jnp.sum(y_true * log_p, axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1):
    """``-log p[label]`` with integer labels of shape ``(batch,)`` or ``(batch, 1)``."""
    labels = jnp.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    labels = labels.astype(jnp.int32)
    if from_logits:
        log_p = jax.nn.log_softmax(y_pred, axis=axis)
    else:
        p = y_pred / jnp.sum(y_pred, axis=axis, keepdims=True)
        log_p = jnp.log(jnp.clip(p, EPSILON, 1.0 - EPSILON))
    picked = jnp.take_along_axis(log_p, labels[..., None], axis=axis)[..., 0]
    return -picked


def huber(y_true, y_pred, delta=1.0):
    error = y_pred - _float(y_true, y_pred)
    absolute = jnp.abs(error)
    quadratic = jnp.minimum(absolute, delta)
    return jnp.mean(0.5 * quadratic**2 + delta * (absolute - quadratic), axis=-1)


def _hinge_labels(y_true, y_pred):
    """Labels in {0, 1} become {-1, 1}, as Keras does for hinge losses."""
    y_true = _float(y_true, y_pred)
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    return jnp.mean(jnp.maximum(1.0 - _hinge_labels(y_true, y_pred) * y_pred, 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    return jnp.mean(jnp.square(jnp.maximum(1.0 - _hinge_labels(y_true, y_pred) * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    positive = jnp.sum(y_true * y_pred, axis=-1)
    negative = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(negative - positive + 1.0, 0.0)


def kl_divergence(y_true, y_pred):
    y_true = jnp.clip(_float(y_true, y_pred), EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    return jnp.mean(y_pred - _float(y_true, y_pred) * jnp.log(y_pred + EPSILON), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity (so that minimizing it aligns the vectors), as Keras's loss."""
    def normalize(x):
        return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), 1e-12))

    return -jnp.sum(normalize(_float(y_true, y_pred)) * normalize(y_pred), axis=axis)


def log_cosh(y_true, y_pred):
    x = y_pred - _float(y_true, y_pred)
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - jnp.log(2.0).astype(x.dtype), axis=-1)


LOSSES: dict[str, Callable] = {
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
    "mean_absolute_percentage_error": mean_absolute_percentage_error,
    "mape": mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "msle": mean_squared_logarithmic_error,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "huber": huber,
    "huber_loss": huber,
    "hinge": hinge,
    "squared_hinge": squared_hinge,
    "categorical_hinge": categorical_hinge,
    "kl_divergence": kl_divergence,
    "kld": kl_divergence,
    "kullback_leibler_divergence": kl_divergence,
    "poisson": poisson,
    "cosine_similarity": cosine_similarity,
    "log_cosh": log_cosh,
    "logcosh": log_cosh,
}


class Loss:
    """A loss with options; calling it gives per-sample values ``(batch,)``."""

    function: Callable = staticmethod(mean_squared_error)

    def __init__(self, name=None, **options):
        self.name = name or _snake(type(self).__name__)
        self.options = options

    def __call__(self, y_true, y_pred):
        return type(self).function(y_true, y_pred, **self.options)

    def get_config(self):
        return {"name": self.name, **self.options}


def _snake(name: str) -> str:
    from kfunc.naming import to_snake_case

    return to_snake_case(name)


def _loss_class(function: Callable, class_name: str, **defaults) -> type:
    def __init__(self, name=None, **options):
        unknown = set(options) - set(defaults)
        if unknown:
            raise TrainingConfigError(f"{class_name} got unknown argument(s) {sorted(unknown)}; it accepts {sorted(defaults)}.")
        Loss.__init__(self, name=name, **{**defaults, **options})

    return type(class_name, (Loss,), {"function": staticmethod(function), "__init__": __init__})


MeanSquaredError = _loss_class(mean_squared_error, "MeanSquaredError")
MeanAbsoluteError = _loss_class(mean_absolute_error, "MeanAbsoluteError")
MeanAbsolutePercentageError = _loss_class(mean_absolute_percentage_error, "MeanAbsolutePercentageError")
MeanSquaredLogarithmicError = _loss_class(mean_squared_logarithmic_error, "MeanSquaredLogarithmicError")
BinaryCrossentropy = _loss_class(binary_crossentropy, "BinaryCrossentropy", from_logits=False, label_smoothing=0.0)
CategoricalCrossentropy = _loss_class(
    categorical_crossentropy, "CategoricalCrossentropy", from_logits=False, label_smoothing=0.0, axis=-1
)
SparseCategoricalCrossentropy = _loss_class(
    sparse_categorical_crossentropy, "SparseCategoricalCrossentropy", from_logits=False, axis=-1
)
Huber = _loss_class(huber, "Huber", delta=1.0)
Hinge = _loss_class(hinge, "Hinge")
SquaredHinge = _loss_class(squared_hinge, "SquaredHinge")
CategoricalHinge = _loss_class(categorical_hinge, "CategoricalHinge")
KLDivergence = _loss_class(kl_divergence, "KLDivergence")
Poisson = _loss_class(poisson, "Poisson")
CosineSimilarity = _loss_class(cosine_similarity, "CosineSimilarity", axis=-1)
LogCosh = _loss_class(log_cosh, "LogCosh")


def get(identifier) -> Callable:
    """A loss name, a ``Loss`` instance or a function ``(y_true, y_pred) -> values``."""
    if isinstance(identifier, str):
        try:
            return LOSSES[identifier]
        except KeyError:
            raise TrainingConfigError(
                f"Unknown loss '{identifier}'; expected one of {sorted(LOSSES)}, a kfunc.losses class "
                "instance, or a function (y_true, y_pred) -> per-sample loss."
            ) from None
    if callable(identifier):
        return identifier
    raise TrainingConfigError(
        f"A loss must be a name, a Loss or a function (y_true, y_pred), received {type(identifier).__name__} "
        f"{identifier!r}."
    )


def name_of(loss: Callable) -> str:
    """The name Keras would show: the registry name, ``Loss.name``, or the function's name."""
    if isinstance(loss, Loss):
        return loss.name
    for name, known in LOSSES.items():
        if known is loss:
            return name
    return getattr(loss, "__name__", type(loss).__name__)


def per_sample(loss: Callable, y_true, y_pred):
    """The loss's values reduced to one per sample, ``(batch,)``."""
    values = loss(y_true, y_pred)
    if values.ndim > 1:
        values = jnp.mean(values, axis=tuple(range(1, values.ndim)))
    return values


def masked_total(loss: Callable, y_true, y_pred, mask, weight, *, output_name: str = "output"):
    """``(sum of loss * weight over kept steps, number of kept steps)`` for an output that carries
    a mask ``(batch, timesteps)``: Keras's rule, the loss averages over the kept steps of the whole
    batch. ``weight (batch,)``: the sample weights, or None (all 1)."""
    values = loss(y_true, y_pred)
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
