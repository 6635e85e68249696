"""Regression metrics: mean errors, ``RootMeanSquaredError``, ``CosineSimilarity``, ``R2Score``.

``y_true`` and ``y_pred`` are ``(batch, ..., features)``; the mean errors average each sample's
error over its last axis, then over samples (weighted by ``sample_weight``)."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.errors import TrainingConfigError
from kfunc.train.losses import functions as f
from kfunc.train.losses.loss import match_ranks
from kfunc.train.metrics.metric import Metric
from kfunc.train.metrics.reduction import BuiltinMeanMetric, Mean


def mean_metric_class(function, class_name: str, default_name: str, module: str) -> type:
    """A built-in ``MeanMetricWrapper`` class over ``function`` without options:
    ``Class(name=default_name, dtype=None)``."""

    def __init__(self, name=default_name, dtype=None):
        BuiltinMeanMetric.__init__(self, function, name=name, dtype=dtype)

    doc = f"The mean over samples of ``{function.__name__}(y_true, y_pred)``."
    return type(class_name, (BuiltinMeanMetric,), {"__init__": __init__, "__module__": module, "__doc__": doc})


MeanSquaredError = mean_metric_class(f.mean_squared_error, "MeanSquaredError", "mean_squared_error", __name__)
MeanAbsoluteError = mean_metric_class(f.mean_absolute_error, "MeanAbsoluteError", "mean_absolute_error", __name__)
MeanAbsolutePercentageError = mean_metric_class(
    f.mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error", __name__
)
MeanSquaredLogarithmicError = mean_metric_class(
    f.mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", __name__
)
LogCoshError = mean_metric_class(f.log_cosh, "LogCoshError", "logcosh", __name__)


def cosine_similarity(y_true, y_pred, axis=-1):
    """The cosine similarity of ``y_true`` and ``y_pred`` along ``axis`` (1 when aligned)."""
    return -f.cosine_similarity(y_true, y_pred, axis=axis)


class CosineSimilarity(BuiltinMeanMetric):
    """The mean cosine similarity between labels and predictions along ``axis``."""

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)


class RootMeanSquaredError(Mean):
    """``sqrt`` of the weighted mean of squared errors over all values seen."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = match_ranks(jnp.asarray(y_true, self.dtype), jnp.asarray(y_pred, self.dtype))
        super().update_state(jnp.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return jnp.sqrt(super().result())


class R2Score(Metric):
    """The coefficient of determination of ``y_pred`` ``(batch, outputs)`` against ``y_true``.

    ``class_aggregation``: ``"uniform_average"`` (mean over outputs), ``"variance_weighted_average"``
    or None (one score per output); ``num_regressors`` > 0 gives the adjusted R2 (the plain score
    when there are too few samples for it)."""

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise TrainingConfigError(
                f"R2Score '{self.name}' got class_aggregation={class_aggregation!r}; expected None, "
                "'uniform_average' or 'variance_weighted_average'."
            )
        if num_regressors < 0:
            raise TrainingConfigError(f"R2Score '{self.name}' got num_regressors={num_regressors}; it must be >= 0.")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = self.add_variable(shape=(), initializer="zeros", name="num_samples")
        self._built = False

    def _build(self, y_true_shape, y_pred_shape) -> None:
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2 or y_pred_shape[-1] is None:
            raise TrainingConfigError(
                f"R2Score '{self.name}' needs y_true and y_pred of shape (batch, outputs) with the outputs "
                f"known; received y_true {tuple(y_true_shape)} and y_pred {tuple(y_pred_shape)}."
            )
        outputs = int(y_pred_shape[-1])
        self.squared_sum = self.add_variable(shape=(outputs,), initializer="zeros", name="squared_sum")
        self.sum = self.add_variable(shape=(outputs,), initializer="zeros", name="sum")
        self.total_mse = self.add_variable(shape=(outputs,), initializer="zeros", name="residual")
        self.count = self.add_variable(shape=(outputs,), initializer="zeros", name="count")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = match_ranks(jnp.asarray(y_true, self.dtype), jnp.asarray(y_pred, self.dtype))
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        weight = jnp.asarray(1.0 if sample_weight is None else sample_weight, self.dtype)
        if weight.ndim == 1:
            weight = weight[:, None]
        weight = jnp.broadcast_to(weight, y_true.shape)
        self.sum.assign_add(jnp.sum(y_true * weight, axis=0))
        self.squared_sum.assign_add(jnp.sum(y_true * y_true * weight, axis=0))
        self.total_mse.assign_add(jnp.sum(jnp.square(y_true - y_pred) * weight, axis=0))
        self.count.assign_add(jnp.sum(weight, axis=0))
        self.num_samples.assign_add(jnp.asarray(y_true.size, self.dtype))

    def result(self):
        mean = self.sum.value / self.count.value
        total = self.squared_sum.value - self.sum.value * mean
        raw = 1.0 - self.total_mse.value / total
        raw = jnp.where(jnp.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = jnp.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = jnp.sum(total * raw) / jnp.sum(total)
        else:
            score = raw
        if self.num_regressors:
            n, p = self.num_samples.value, float(self.num_regressors)
            adjusted = 1.0 - (1.0 - score) * (n - 1.0) / jnp.where(n - p - 1.0 > 0, n - p - 1.0, 1.0)
            score = jnp.where(p < n - 1.0, adjusted, score)
        return score

    def get_config(self) -> dict:
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
