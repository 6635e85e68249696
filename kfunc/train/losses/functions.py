"""Keras's loss functions: ``(y_true, y_pred) -> values``.

``y_pred`` is ``(batch, ..., features)``; each function reduces the last axis (or ``axis``) and
returns ``(batch, ...)``, as Keras computes before reducing over the batch. Probabilities are
clipped with ``kfunc.config.epsilon()`` read at each call, as Keras reads its backend epsilon.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from kfunc import config


def _float(x, like):
    return jnp.asarray(x, like.dtype if jnp.issubdtype(like.dtype, jnp.floating) else jnp.float32)


def mean_squared_error(y_true, y_pred):
    return jnp.mean(jnp.square(y_pred - _float(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return jnp.mean(jnp.abs(y_pred - _float(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    return 100.0 * jnp.mean(jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), config.epsilon())), axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    first = jnp.log(jnp.maximum(y_pred, config.epsilon()) + 1.0)
    second = jnp.log(jnp.maximum(y_true, config.epsilon()) + 1.0)
    return jnp.mean(jnp.square(first - second), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Mean over ``axis`` of ``-(y log p + (1 - y) log(1 - p))``; ``p`` clipped to [eps, 1-eps]."""
    y_true = _float(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # max(x, 0) - x * y + log(1 + exp(-|x|)): stable for large logits.
        values = jnp.maximum(y_pred, 0) - y_pred * y_true + jnp.log1p(jnp.exp(-jnp.abs(y_pred)))
    else:
        epsilon = config.epsilon()
        p = jnp.clip(y_pred, epsilon, 1.0 - epsilon)
        values = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log(1.0 - p))
    return jnp.mean(values, axis=axis)


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
        log_p = jnp.log(jnp.clip(p, config.epsilon(), 1.0 - config.epsilon()))
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
        log_p = jnp.log(jnp.clip(p, config.epsilon(), 1.0 - config.epsilon()))
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
    y_true = jnp.clip(_float(y_true, y_pred), config.epsilon(), 1.0)
    y_pred = jnp.clip(y_pred, config.epsilon(), 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    return jnp.mean(y_pred - _float(y_true, y_pred) * jnp.log(y_pred + config.epsilon()), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity (so that minimizing it aligns the vectors), as Keras's loss."""
    def normalize(x):
        return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), 1e-12))

    return -jnp.sum(normalize(_float(y_true, y_pred)) * normalize(y_pred), axis=axis)


def log_cosh(y_true, y_pred):
    x = y_pred - _float(y_true, y_pred)
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - jnp.log(2.0).astype(x.dtype), axis=-1)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy scaled by ``(1 - p_t) ** gamma`` (``p_t``: the probability given to
    the true label), optionally by ``alpha`` / ``1 - alpha`` per label; mean over ``axis``."""
    y_true = _float(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    p = jax.nn.sigmoid(y_pred) if from_logits else y_pred
    epsilon = config.epsilon()
    clipped = jnp.clip(p, epsilon, 1.0 - epsilon)
    cross_entropy = -(y_true * jnp.log(clipped) + (1.0 - y_true) * jnp.log(1.0 - clipped))
    p_true = y_true * p + (1.0 - y_true) * (1.0 - p)
    focal = jnp.power(1.0 - p_true, gamma) * cross_entropy
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return jnp.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                                   axis=-1):
    """Categorical cross-entropy with each class term scaled by ``alpha * (1 - p) ** gamma``."""
    y_true = _float(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    p = jax.nn.softmax(y_pred, axis=axis) if from_logits else y_pred
    p = p / jnp.sum(p, axis=axis, keepdims=True)
    p = jnp.clip(p, config.epsilon(), 1.0 - config.epsilon())
    return jnp.sum(alpha * jnp.power(1.0 - p, gamma) * -y_true * jnp.log(p), axis=axis)


def dice(y_true, y_pred, axis=None):
    """``1 - 2 |y_true * y_pred| / (|y_true| + |y_pred|)``, sums over ``axis`` (None: everything)."""
    y_true = _float(y_true, y_pred)
    overlap = jnp.sum(y_true * y_pred, axis=axis)
    return 1.0 - 2.0 * overlap / (jnp.sum(y_true, axis=axis) + jnp.sum(y_pred, axis=axis) + config.epsilon())


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """``1 - tp / (tp + alpha * fp + beta * fn)`` of soft counts summed over ``axis``."""
    y_true = _float(y_true, y_pred)
    overlap = jnp.sum(y_true * y_pred, axis=axis)
    false_positive = jnp.sum((1.0 - y_pred) * y_true, axis=axis)
    false_negative = jnp.sum(y_pred * (1.0 - y_true), axis=axis)
    return 1.0 - overlap / (overlap + alpha * false_positive + beta * false_negative + config.epsilon())
