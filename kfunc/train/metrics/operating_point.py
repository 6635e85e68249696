"""Metrics at an operating point: the best sensitivity, specificity, precision or recall among
the thresholds where the other one of the pair reaches a required value
(``SensitivityAtSpecificity``, ``SpecificityAtSensitivity``, ``PrecisionAtRecall``,
``RecallAtPrecision``), from confusion counts at ``num_thresholds`` evenly spaced thresholds."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.errors import TrainingConfigError
from kfunc.train.metrics.confusion import _ConfusionCounts, _safe_divide


class _AtOperatingPoint(_ConfusionCounts):
    """``value``: the level the constrained rate must reach; the result is the largest dependent
    rate among the thresholds that reach it (0 if none does)."""

    value_name = "value"

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        owner = f"{type(self).__name__} '{name or type(self).__name__}'"
        if not 0.0 <= value <= 1.0:
            raise TrainingConfigError(f"{owner} got {self.value_name}={value!r}; it must lie in [0, 1].")
        if num_thresholds <= 0:
            raise TrainingConfigError(f"{owner} got num_thresholds={num_thresholds!r}; it must be an int > 0.")
        if num_thresholds == 1:
            thresholds = [0.5]
        else:
            thresholds = [0.0] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1.0]
        super().__init__(class_id=class_id, name=name, dtype=dtype, curve_thresholds=thresholds)
        self.value = value
        self.num_thresholds = num_thresholds

    def rates(self) -> dict:
        tp, fp = self.true_positives.value, self.false_positives.value
        tn, fn = self.true_negatives.value, self.false_negatives.value
        return {"sensitivity": _safe_divide(tp, tp + fn), "specificity": _safe_divide(tn, tn + fp),
                "precision": _safe_divide(tp, tp + fp)}

    def best(self, constrained, dependent):
        return jnp.max(jnp.where(constrained >= self.value, dependent, 0.0), initial=0.0)

    def get_config(self) -> dict:
        config_ = {key: v for key, v in super().get_config().items() if key != "thresholds"}
        return {**config_, "class_id": self.class_id, "num_thresholds": self.num_thresholds,
                self.value_name: self.value}


class SensitivityAtSpecificity(_AtOperatingPoint):
    """The best sensitivity (recall) among thresholds whose specificity is at least ``specificity``."""

    value_name = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def result(self):
        rates = self.rates()
        return self.best(rates["specificity"], rates["sensitivity"])


class SpecificityAtSensitivity(_AtOperatingPoint):
    """The best specificity among thresholds whose sensitivity is at least ``sensitivity``."""

    value_name = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def result(self):
        rates = self.rates()
        return self.best(rates["sensitivity"], rates["specificity"])


class PrecisionAtRecall(_AtOperatingPoint):
    """The best precision among thresholds whose recall is at least ``recall``."""

    value_name = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def result(self):
        rates = self.rates()
        return self.best(rates["sensitivity"], rates["precision"])


class RecallAtPrecision(_AtOperatingPoint):
    """The best recall among thresholds whose precision is at least ``precision``."""

    value_name = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def result(self):
        rates = self.rates()
        return self.best(rates["precision"], rates["sensitivity"])
