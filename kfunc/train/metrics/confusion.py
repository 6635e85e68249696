"""Metrics from confusion counts: ``TruePositives`` ... ``FalseNegatives``, ``Precision``,
``Recall`` and ``AUC``.

Labels and predictions are ``(batch, ...)`` (probabilities in [0, 1]); every value is one
binary decision, ``y_pred > threshold``, counted for each of the metric's thresholds and
weighted by its sample's ``sample_weight``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import TrainingConfigError
from kfunc.train.losses.loss import match_ranks
from kfunc.train.metrics.metric import Metric

NEG_INF = -1e10  # Keras's stand-in for "never above the threshold" (values outside the top k)
COUNTS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


def _thresholds(thresholds, default: float, owner: str) -> list[float]:
    """The thresholds as floats (``[default]`` when None); each given one must lie in [0, 1]."""
    if thresholds is None:
        return [default]
    values = np.atleast_1d(np.asarray(thresholds, np.float64)).tolist()
    if not values or any(not 0.0 <= t <= 1.0 for t in values):
        raise TrainingConfigError(f"{owner} got thresholds={thresholds!r}; give one or more numbers in [0, 1].")
    return [float(t) for t in values]


def _safe_divide(a, b):
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)


class _ConfusionCounts(Metric):
    """Counts (``counts``: some of ``COUNTS``) of ``y_pred > threshold`` against ``y_true > 0.5``,
    one per threshold. ``top_k``: only each row's ``k`` highest predictions can be positive;
    ``class_id``: only that column of ``(batch, classes)`` counts."""

    counts = COUNTS

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None, *,
                 default_threshold=0.5, curve_thresholds=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = curve_thresholds if curve_thresholds is not None else _thresholds(
            thresholds, default_threshold, f"{type(self).__name__} '{self.name}'"
        )
        for count in self.counts:
            setattr(self, count, self.add_variable(shape=(len(self.thresholds),), initializer="zeros", name=count))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = jnp.asarray(y_pred, self.dtype)
        y_true = jnp.asarray(y_true, self.dtype)
        y_pred, y_true = match_ranks(y_pred, y_true)
        if self.top_k is not None:
            _, indices = jax.lax.top_k(y_pred, self.top_k)
            kept = jnp.sum(jax.nn.one_hot(indices, y_pred.shape[-1], dtype=y_pred.dtype), axis=-2)
            y_pred = y_pred * kept + NEG_INF * (1.0 - kept)
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
        if sample_weight is None:
            weight = jnp.ones(y_pred.shape, self.dtype)
        else:
            weight = jnp.asarray(sample_weight, self.dtype)
            weight = jnp.broadcast_to(weight.reshape(weight.shape + (1,) * (y_pred.ndim - weight.ndim)), y_pred.shape)
        thresholds = jnp.asarray(self.thresholds, self.dtype)
        predicted = y_pred.reshape(-1)[:, None] > thresholds[None, :]
        positive = (y_true.reshape(-1) > 0.5)[:, None]
        weight = weight.reshape(-1)[:, None]
        masks = {"true_positives": predicted & positive, "false_positives": predicted & ~positive,
                 "true_negatives": ~predicted & ~positive, "false_negatives": ~predicted & positive}
        for count in self.counts:
            getattr(self, count).assign_add(jnp.sum(jnp.where(masks[count], weight, 0.0), axis=0))

    def _one_or_all(self, values):
        return values[0] if len(self.thresholds) == 1 else values

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds}


def _single_count(class_name: str, count: str, doc: str) -> type:
    def __init__(self, thresholds=None, name=None, dtype=None):
        _ConfusionCounts.__init__(self, thresholds=thresholds, name=name, dtype=dtype)

    def result(self):
        return self._one_or_all(getattr(self, count).value)

    return type(class_name, (_ConfusionCounts,), {"__init__": __init__, "result": result, "counts": (count,),
                                                  "__doc__": doc, "__module__": __name__})


TruePositives = _single_count("TruePositives", "true_positives", "The weighted number of true positives.")
FalsePositives = _single_count("FalsePositives", "false_positives", "The weighted number of false positives.")
TrueNegatives = _single_count("TrueNegatives", "true_negatives", "The weighted number of true negatives.")
FalseNegatives = _single_count("FalseNegatives", "false_negatives", "The weighted number of false negatives.")


class Precision(_ConfusionCounts):
    """``tp / (tp + fp)`` of ``y_pred > threshold`` (default 0.5; with ``top_k``, the top k)."""

    counts = ("true_positives", "false_positives")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype,
                         default_threshold=0.5 if top_k is None else NEG_INF)

    def result(self):
        tp = self.true_positives.value
        return self._one_or_all(_safe_divide(tp, tp + self.false_positives.value))

    def get_config(self) -> dict:
        return {**super().get_config(), "top_k": self.top_k, "class_id": self.class_id}


class Recall(_ConfusionCounts):
    """``tp / (tp + fn)`` of ``y_pred > threshold`` (default 0.5; with ``top_k``, the top k)."""

    counts = ("true_positives", "false_negatives")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype,
                         default_threshold=0.5 if top_k is None else NEG_INF)

    def result(self):
        tp = self.true_positives.value
        return self._one_or_all(_safe_divide(tp, tp + self.false_negatives.value))

    def get_config(self) -> dict:
        return {**super().get_config(), "top_k": self.top_k, "class_id": self.class_id}


class AUC(_ConfusionCounts):
    """Area under the ROC (default) or PR curve, from the counts at ``num_thresholds`` evenly spaced
    thresholds in [0, 1] (one just below 0 and one just above 1 included), or at ``thresholds``.
    ``summation_method``: ``"interpolation"`` (trapezoids for ROC, Davis-Goadrich for PR),
    ``"minoring"`` or ``"majoring"`` (left or right Riemann sums). ``from_logits``: ``y_pred`` are
    logits (a sigmoid is applied)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        owner = f"AUC '{name or 'auc'}'"
        if multi_label or label_weights is not None:
            raise TrainingConfigError(
                f"{owner}: multi_label and label_weights are not supported by kfunc; use one AUC per label "
                "(class_id is not needed: give each label its own output) or leave them at their defaults."
            )
        if str(curve).upper() not in ("ROC", "PR"):
            raise TrainingConfigError(f"{owner} got curve={curve!r}; expected 'ROC' or 'PR'.")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise TrainingConfigError(
                f"{owner} got summation_method={summation_method!r}; expected 'interpolation', 'minoring' or "
                "'majoring'."
            )
        if thresholds is not None:
            inner = sorted(float(t) for t in np.atleast_1d(thresholds))
            num_thresholds = len(inner) + 2
        else:
            if num_thresholds < 2:
                raise TrainingConfigError(f"{owner} got num_thresholds={num_thresholds}; it must be > 1.")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        epsilon = 1e-7
        super().__init__(name=name, dtype=dtype, curve_thresholds=[0.0 - epsilon] + inner + [1.0 + epsilon])
        self.num_thresholds = num_thresholds
        self.curve = str(curve).upper()
        self.summation_method = summation_method
        self.init_thresholds = None if thresholds is None else inner
        self.num_labels = num_labels
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = jax.nn.sigmoid(jnp.asarray(y_pred, self.dtype)) if self.from_logits else y_pred
        super().update_state(y_true, y_pred, sample_weight)

    def result(self):
        tp, fp = self.true_positives.value, self.false_positives.value
        tn, fn = self.true_negatives.value, self.false_negatives.value
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolated_pr(tp, fp, fn)
        recall = _safe_divide(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _safe_divide(fp, fp + tn), recall
        else:
            x, y = recall, _safe_divide(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = jnp.minimum(y[:-1], y[1:])
        else:
            heights = jnp.maximum(y[:-1], y[1:])
        return jnp.sum((x[:-1] - x[1:]) * heights)

    @staticmethod
    def _interpolated_pr(tp, fp, fn):
        # Within each interval between thresholds, TP and P = TP + FP vary linearly, so precision
        # is (intercept + slope * P) / P; integrating it over recall gives the closed form below.
        predicted = tp + fp
        d_tp = tp[:-1] - tp[1:]
        d_p = predicted[:-1] - predicted[1:]
        slope = _safe_divide(d_tp, jnp.maximum(d_p, 0.0))
        intercept = tp[1:] - slope * predicted[1:]
        both_positive = (predicted[:-1] > 0) & (predicted[1:] > 0)
        ratio = jnp.where(both_positive, _safe_divide(predicted[:-1], jnp.maximum(predicted[1:], 0.0)), 1.0)
        increments = _safe_divide(slope * (d_tp + intercept * jnp.log(ratio)), jnp.maximum(tp[1:] + fn[1:], 0.0))
        return jnp.sum(increments)

    def get_config(self) -> dict:
        config_ = {key: value for key, value in super().get_config().items() if key != "thresholds"}
        return {**config_, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "thresholds": self.init_thresholds,
                "multi_label": False, "num_labels": self.num_labels, "label_weights": None,
                "from_logits": self.from_logits}
