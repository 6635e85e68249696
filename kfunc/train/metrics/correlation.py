"""Correlation metrics: the mean over samples of each sample's Pearson or concordance
correlation between ``y_true`` and ``y_pred`` along ``axis`` (``(batch, features)`` inputs)."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import config
from kfunc.train.losses.loss import match_ranks
from kfunc.train.metrics.reduction import BuiltinMeanMetric


def _pair(y_true, y_pred):
    y_pred = jnp.asarray(y_pred)
    return match_ranks(jnp.asarray(y_true, y_pred.dtype), y_pred)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson's correlation coefficient along ``axis``."""
    y_true, y_pred = _pair(y_true, y_pred)
    true_centered = y_true - jnp.mean(y_true, axis=axis, keepdims=True)
    pred_centered = y_pred - jnp.mean(y_pred, axis=axis, keepdims=True)
    true_standard = true_centered / jnp.std(true_centered, axis=axis, keepdims=True)
    pred_standard = pred_centered / jnp.std(pred_centered, axis=axis, keepdims=True)
    return jnp.mean(true_standard * pred_standard, axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation coefficient along ``axis``."""
    y_true, y_pred = _pair(y_true, y_pred)
    true_mean = jnp.mean(y_true, axis=axis, keepdims=True)
    pred_mean = jnp.mean(y_pred, axis=axis, keepdims=True)
    covariance = (y_true - true_mean) * (y_pred - pred_mean)
    scale = (jnp.var(y_true, axis=axis, keepdims=True) + jnp.var(y_pred, axis=axis, keepdims=True)
             + jnp.square(true_mean - pred_mean))
    return jnp.mean(2.0 * covariance / (scale + config.epsilon()), axis=axis)


class PearsonCorrelation(BuiltinMeanMetric):
    """The mean over samples of ``pearson_correlation`` along ``axis``."""

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)


class ConcordanceCorrelation(BuiltinMeanMetric):
    """The mean over samples of ``concordance_correlation`` along ``axis``."""

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)
