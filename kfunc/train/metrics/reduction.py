"""``Sum``, ``Mean`` and ``MeanMetricWrapper``: the running (weighted) sum and mean that most
metrics are made of."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from kfunc.train.losses.loss import match_ranks
from kfunc.train.metrics.metric import Metric


def samplewise(values, sample_weight, reduce, dtype):
    """Keras's reduction of ``values`` ``(batch, ...)`` to one value per sample, weighted.

    ``sample_weight`` (``(batch,)``, ``(batch, ...)`` or None): the values are reduced with
    ``reduce`` over the axes the weight lacks, multiplied by the weight, then reduced to
    ``(batch,)``. Returns ``(values (batch,), weight)``; the weight is reduced over its own
    non-batch axes, so a ``(batch, timesteps)`` mask counts each sample by its kept fraction."""
    values = jnp.asarray(values).astype(dtype)
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight).astype(dtype)
        values, sample_weight = match_ranks(values, sample_weight)
        if values.ndim > sample_weight.ndim:
            values = reduce(values, axis=tuple(range(sample_weight.ndim, values.ndim)))
        sample_weight = jnp.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if sample_weight.ndim > 1:
            sample_weight = reduce(sample_weight, axis=tuple(range(1, sample_weight.ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Sum(Metric):
    """The running sum of ``values`` (weighted by ``sample_weight``)."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, values, sample_weight=None):
        values, _ = samplewise(values, sample_weight, jnp.sum, self.dtype)
        self.total.assign_add(jnp.sum(values))

    def result(self):
        return self.total.value.astype(self.dtype)


class Mean(Metric):
    """The running weighted mean of ``values``: ``sum(values * weight) / sum(weight)``."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values, sample_weight=None):
        values, sample_weight = samplewise(values, sample_weight, jnp.mean, self.dtype)
        self.total.assign_add(jnp.sum(values))
        if sample_weight is not None:
            samples = jnp.sum(sample_weight)
        else:
            samples = values.shape[0] if values.ndim >= 1 else 1
        self.count.assign_add(jnp.asarray(samples, self.dtype))

    def result(self):
        count = self.count.value
        return jnp.where(count != 0, self.total.value / jnp.where(count != 0, count, 1), 0.0).astype(self.dtype)


class MeanMetricWrapper(Mean):
    """The weighted mean over samples of ``fn(y_true, y_pred, **kwargs)``, e.g.
    ``MeanMetricWrapper(my_error, name="my_error")``."""

    def __init__(self, fn: Callable, name=None, dtype=None, **kwargs):
        super().__init__(name=name if name is not None else getattr(fn, "__name__", "mean_metric_wrapper"),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        """``y_pred`` ``(batch, ...)``; ``sample_weight`` ``(batch,)``, or ``(batch, timesteps)`` for
        an output whose mask the training step passes in it (padded steps weigh 0)."""
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "fn": self._fn, **self._fn_kwargs}


class BuiltinMeanMetric(MeanMetricWrapper):
    """A built-in metric over a fixed function: its config holds the name, dtype and options."""

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)
