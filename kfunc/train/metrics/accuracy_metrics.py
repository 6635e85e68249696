"""Accuracy metrics: functions ``(y_true, y_pred) -> matches`` and Keras 3's classes over them.

``y_pred`` is ``(batch, ..., classes)`` for the categorical forms and ``(batch, ...)`` for the
binary and exact-match forms; the matches are 1.0 or 0.0, averaged by ``Mean``.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import config
from kfunc.train.losses.loss import match_ranks
from kfunc.train.metrics.reduction import BuiltinMeanMetric


def _labels(y_true, y_pred):
    """Integer class labels from sparse ``(batch, ...)`` or ``(batch, ..., 1)`` labels."""
    labels = jnp.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return labels.astype(jnp.int32)


def accuracy(y_true, y_pred):
    """Elementwise ``y_true == y_pred``."""
    y_pred = jnp.asarray(y_pred)
    y_true, y_pred = match_ranks(jnp.asarray(y_true, y_pred.dtype), y_pred)
    return (y_true == y_pred).astype(config.floatx())


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Elementwise ``y_true == (y_pred > threshold)``."""
    y_pred = jnp.asarray(y_pred)
    y_true, y_pred = match_ranks(jnp.asarray(y_true), y_pred)
    predicted = (y_pred > threshold).astype(y_true.dtype)
    return (y_true == predicted).astype(config.floatx())


def categorical_accuracy(y_true, y_pred):
    """Whether the arg-max class of one-hot ``y_true`` is that of ``y_pred``, ``(batch, ...)``."""
    return (jnp.argmax(y_true, axis=-1) == jnp.argmax(y_pred, axis=-1)).astype(config.floatx())


def sparse_categorical_accuracy(y_true, y_pred):
    """Whether the integer label is the arg-max class of ``y_pred``, ``(batch, ...)``."""
    return (_labels(y_true, y_pred) == jnp.argmax(y_pred, axis=-1)).astype(config.floatx())


def _in_top_k(y_pred, labels, k):
    target = jnp.take_along_axis(y_pred, labels[..., None], axis=-1)
    return (jnp.sum(y_pred > target, axis=-1) < k).astype(config.floatx())


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Whether the one-hot label's class is among the ``k`` highest scores."""
    return _in_top_k(y_pred, jnp.argmax(y_true, axis=-1), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """Whether the integer label is among the ``k`` highest scores; with ``from_sorted_ids``,
    ``y_pred`` ``(batch, n)`` already holds class ids sorted by score (Keras's option)."""
    labels = _labels(y_true, y_pred)
    if from_sorted_ids:
        return jnp.any(y_pred[..., :k] == labels[..., None], axis=-1).astype(config.floatx())
    return _in_top_k(y_pred, labels, k)


class Accuracy(BuiltinMeanMetric):
    """How often ``y_pred`` equals ``y_true`` exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(BuiltinMeanMetric):
    """How often ``y_pred > threshold`` matches the binary labels."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(BuiltinMeanMetric):
    """How often the arg-max of ``y_pred`` is the one-hot label's class."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(BuiltinMeanMetric):
    """How often the arg-max of ``y_pred`` is the integer label."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(BuiltinMeanMetric):
    """How often the one-hot label's class is among the ``k`` highest scores."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(BuiltinMeanMetric):
    """How often the integer label is among the ``k`` highest scores."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
