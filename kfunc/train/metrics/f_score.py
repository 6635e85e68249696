"""``FBetaScore`` and ``F1Score`` of multi-label or one-hot predictions ``(batch, classes)``."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import config
from kfunc.errors import TrainingConfigError
from kfunc.train.metrics.metric import Metric


class FBetaScore(Metric):
    """``(1 + beta^2) * precision * recall / (beta^2 * precision + recall)`` per class.

    ``y_true`` and ``y_pred`` are ``(batch, classes)``. A prediction counts as positive when it is
    above ``threshold``, or, with ``threshold=None``, when it is the row's largest (and nonzero).
    ``average``: None (one score per class, ``(classes,)``), ``"micro"`` (counts pooled over
    classes), ``"macro"`` (mean of the class scores) or ``"weighted"`` (weighted by the number of
    true instances of each class)."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        where = f"{type(self).__name__} '{self.name}'"
        if average not in (None, "micro", "macro", "weighted"):
            raise TrainingConfigError(
                f"{where} got average={average!r}; expected None, 'micro', 'macro' or 'weighted'."
            )
        if not isinstance(beta, float) or beta <= 0.0:
            raise TrainingConfigError(f"{where} got beta={beta!r}; it must be a Python float > 0, e.g. 2.0.")
        if threshold is not None and (not isinstance(threshold, float) or not 0.0 < threshold <= 1.0):
            raise TrainingConfigError(
                f"{where} got threshold={threshold!r}; it must be None or a Python float in (0, 1], e.g. 0.5."
            )
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self._built = False

    def _build(self, y_true_shape, y_pred_shape) -> None:
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2 or y_pred_shape[-1] is None:
            raise TrainingConfigError(
                f"{type(self).__name__} '{self.name}' needs y_true and y_pred of shape (batch, classes) with the "
                f"classes known; received y_true {tuple(y_true_shape)} and y_pred {tuple(y_pred_shape)}."
            )
        shape = () if self.average == "micro" else (int(y_pred_shape[-1]),)
        for name in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, name, self.add_variable(shape=shape, initializer="zeros", name=name))
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = jnp.asarray(y_true, self.dtype)
        y_pred = jnp.asarray(y_pred, self.dtype)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            positive = (y_pred >= jnp.max(y_pred, axis=-1, keepdims=True)) & (jnp.abs(y_pred) > 1e-9)
        else:
            positive = y_pred > self.threshold
        predicted = positive.astype(self.dtype)
        axis = None if self.average == "micro" else 0

        def weighted_sum(values):
            if sample_weight is not None:
                values = values * jnp.asarray(sample_weight, self.dtype)[:, None]
            return jnp.sum(values, axis=axis)

        self.true_positives.assign_add(weighted_sum(predicted * y_true))
        self.false_positives.assign_add(weighted_sum(predicted * (1.0 - y_true)))
        self.false_negatives.assign_add(weighted_sum((1.0 - predicted) * y_true))
        self.intermediate_weights.assign_add(weighted_sum(y_true))

    def result(self):
        epsilon = config.epsilon()
        tp = self.true_positives.value
        precision = tp / (tp + self.false_positives.value + epsilon)
        recall = tp / (tp + self.false_negatives.value + epsilon)
        beta_squared = self.beta**2
        score = (1.0 + beta_squared) * precision * recall / (beta_squared * precision + recall + epsilon)
        if self.average == "weighted":
            support = self.intermediate_weights.value
            return jnp.sum(score * support / (jnp.sum(support) + epsilon))
        if self.average is not None:
            return jnp.mean(score)
        return score

    def get_config(self) -> dict:
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """``FBetaScore`` with ``beta=1``: the harmonic mean of precision and recall."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict:
        config_ = super().get_config()
        del config_["beta"]
        return config_
