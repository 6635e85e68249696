"""Metrics as pure accumulators: ``init() -> state``, ``update(state, y_true, y_pred, weight) -> state``,
``result(state) -> scalar``; the state is a small pytree updated inside the compiled step.

``y_pred`` is ``(batch, ...)``; ``weight`` is ``(batch,)``, or ``(batch, timesteps)`` for an output
that carries a mask (every row is a real sample: batches are never padded). Names and defaults follow Keras; ``resolve('accuracy', ...)`` picks the binary,
categorical or sparse form from the loss and shapes, as Keras does.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from kfunc.train import losses
from kfunc.train.losses import TrainingConfigError


class Metric:
    """Base class; ``name`` is what logs show."""

    name = "metric"

    def init(self):
        raise NotImplementedError(f"{type(self).__name__} must define init().")

    def update(self, state, y_true, y_pred, weight):
        raise NotImplementedError(f"{type(self).__name__} must define update().")

    def result(self, state):
        raise NotImplementedError(f"{type(self).__name__} must define result().")


def _per_sample_weight(values, weight):
    """Broadcast ``weight (batch,)`` over per-sample values of any rank."""
    return weight.reshape(weight.shape + (1,) * (values.ndim - 1))


class Mean(Metric):
    """Weighted mean of values; the loss trackers use it with the batch's sample count."""

    def __init__(self, name="mean"):
        self.name = name

    def init(self):
        return (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))

    def add(self, state, value, weight):
        total, count = state
        return (total + jnp.sum(value * weight), count + jnp.sum(weight))

    def result(self, state):
        total, count = state
        return jnp.where(count > 0, total / jnp.maximum(count, 1e-12), 0.0)


class MeanMetricWrapper(Mean):
    """Weighted mean over samples of ``function(y_true, y_pred)``."""

    function: Callable = staticmethod(losses.mean_squared_error)

    def __init__(self, name=None, **options):
        super().__init__(name or _default_name(type(self)))
        self.options = options

    def values(self, y_true, y_pred):
        return type(self).function(y_true, y_pred, **self.options)

    # A masked output's weight is ``(batch, timesteps)``: the mean runs over the kept steps (Keras).
    respects_masks = True

    def update(self, state, y_true, y_pred, weight):
        """``weight``: ``(batch,)``, or ``(batch, timesteps)`` for an output with a mask."""
        values = self.values(y_true, y_pred).astype(jnp.float32)
        if values.ndim > weight.ndim:
            values = jnp.mean(values, axis=tuple(range(weight.ndim, values.ndim)))
        elif values.ndim < weight.ndim:  # the metric reduced the steps itself: weigh rows only
            weight = jnp.max(weight, axis=tuple(range(values.ndim, weight.ndim)))
        return self.add(state, values, weight)


def _default_name(cls) -> str:
    from kfunc.naming import to_snake_case

    return to_snake_case(cls.__name__)


def _labels(y_true, y_pred):
    """Integer class labels from sparse ``(batch,)``/``(batch, 1)`` labels."""
    labels = jnp.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return labels.astype(jnp.int32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    predicted = (y_pred > threshold).astype(jnp.float32)
    return jnp.mean((predicted == jnp.asarray(y_true, jnp.float32)).astype(jnp.float32), axis=-1)


def categorical_accuracy(y_true, y_pred):
    return (jnp.argmax(y_true, axis=-1) == jnp.argmax(y_pred, axis=-1)).astype(jnp.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    return (_labels(y_true, y_pred) == jnp.argmax(y_pred, axis=-1)).astype(jnp.float32)


def _in_top_k(y_pred, labels, k):
    target = jnp.take_along_axis(y_pred, labels[..., None], axis=-1)
    return (jnp.sum(y_pred > target, axis=-1) < k).astype(jnp.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    return _in_top_k(y_pred, jnp.argmax(y_true, axis=-1), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    return _in_top_k(y_pred, _labels(y_true, y_pred), k)


def accuracy(y_true, y_pred):
    return jnp.mean((jnp.asarray(y_true, y_pred.dtype) == y_pred).astype(jnp.float32), axis=-1)


def _wrapper(function: Callable, class_name: str, **defaults) -> type:
    def __init__(self, name=None, **options):
        unknown = set(options) - set(defaults)
        if unknown:
            raise TrainingConfigError(f"{class_name} got unknown argument(s) {sorted(unknown)}; it accepts {sorted(defaults)}.")
        MeanMetricWrapper.__init__(self, name=name, **{**defaults, **options})

    cls = type(class_name, (MeanMetricWrapper,), {"function": staticmethod(function), "__init__": __init__})
    return cls


Accuracy = _wrapper(accuracy, "Accuracy")
BinaryAccuracy = _wrapper(binary_accuracy, "BinaryAccuracy", threshold=0.5)
CategoricalAccuracy = _wrapper(categorical_accuracy, "CategoricalAccuracy")
SparseCategoricalAccuracy = _wrapper(sparse_categorical_accuracy, "SparseCategoricalAccuracy")
TopKCategoricalAccuracy = _wrapper(top_k_categorical_accuracy, "TopKCategoricalAccuracy", k=5)
SparseTopKCategoricalAccuracy = _wrapper(sparse_top_k_categorical_accuracy, "SparseTopKCategoricalAccuracy", k=5)
MeanSquaredError = _wrapper(losses.mean_squared_error, "MeanSquaredError")
MeanAbsoluteError = _wrapper(losses.mean_absolute_error, "MeanAbsoluteError")
MeanAbsolutePercentageError = _wrapper(losses.mean_absolute_percentage_error, "MeanAbsolutePercentageError")
MeanSquaredLogarithmicError = _wrapper(losses.mean_squared_logarithmic_error, "MeanSquaredLogarithmicError")
BinaryCrossentropy = _wrapper(losses.binary_crossentropy, "BinaryCrossentropy", from_logits=False, label_smoothing=0.0)
CategoricalCrossentropy = _wrapper(losses.categorical_crossentropy, "CategoricalCrossentropy", from_logits=False, label_smoothing=0.0)
SparseCategoricalCrossentropy = _wrapper(losses.sparse_categorical_crossentropy, "SparseCategoricalCrossentropy", from_logits=False)
CosineSimilarity = _wrapper(lambda t, p: -losses.cosine_similarity(t, p), "CosineSimilarity")
LogCoshError = _wrapper(losses.log_cosh, "LogCoshError")
Hinge = _wrapper(losses.hinge, "Hinge")
KLDivergence = _wrapper(losses.kl_divergence, "KLDivergence")
Poisson = _wrapper(losses.poisson, "Poisson")


class _ConfusionCounts(Metric):
    """True/false positives/negatives of ``y_pred > threshold`` for each of ``thresholds``."""

    def __init__(self, thresholds, name):
        self.thresholds = np.asarray(thresholds, np.float32)
        self.name = name

    def init(self):
        zeros = jnp.zeros(self.thresholds.shape, jnp.float32)
        return {"tp": zeros, "fp": zeros, "tn": zeros, "fn": zeros}

    def update(self, state, y_true, y_pred, weight):
        y_pred = y_pred.astype(jnp.float32).reshape(y_pred.shape[0], -1)
        positive = jnp.asarray(y_true, jnp.float32).reshape(y_pred.shape) > 0.5
        weight = jnp.broadcast_to(weight[:, None], y_pred.shape).reshape(-1)
        predicted = y_pred.reshape(-1)[:, None] > jnp.asarray(self.thresholds)[None, :]
        positive = positive.reshape(-1)[:, None]
        w = weight[:, None]

        def count(mask):
            return jnp.sum(jnp.where(mask, w, 0.0), axis=0)

        return {
            "tp": state["tp"] + count(predicted & positive),
            "fp": state["fp"] + count(predicted & ~positive),
            "tn": state["tn"] + count(~predicted & ~positive),
            "fn": state["fn"] + count(~predicted & positive),
        }


def _safe_divide(a, b):
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)


class Precision(_ConfusionCounts):
    """``tp / (tp + fp)`` of ``y_pred > threshold`` (default 0.5)."""

    def __init__(self, thresholds=None, name="precision"):
        super().__init__([0.5] if thresholds is None else np.atleast_1d(thresholds), name)

    def result(self, state):
        value = _safe_divide(state["tp"], state["tp"] + state["fp"])
        return value[0] if value.shape == (1,) else value


class Recall(_ConfusionCounts):
    """``tp / (tp + fn)`` of ``y_pred > threshold`` (default 0.5)."""

    def __init__(self, thresholds=None, name="recall"):
        super().__init__([0.5] if thresholds is None else np.atleast_1d(thresholds), name)

    def result(self, state):
        value = _safe_divide(state["tp"], state["tp"] + state["fn"])
        return value[0] if value.shape == (1,) else value


class AUC(_ConfusionCounts):
    """Area under the ROC (default) or PR curve, from ``num_thresholds`` evenly spaced thresholds
    in [0, 1] (plus one just below 0 and one just above 1), summed with trapezoids (ROC) or the
    Davis-Goadrich interpolation (PR), as Keras's ``AUC``."""

    def __init__(self, num_thresholds=200, curve="ROC", name="auc"):
        if num_thresholds < 2:
            raise TrainingConfigError(f"AUC needs num_thresholds >= 2, received {num_thresholds}.")
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__([-1e-7] + inner + [1.0 + 1e-7], name)
        self.curve = curve.upper()
        if self.curve not in ("ROC", "PR"):
            raise TrainingConfigError(f"AUC curve must be 'ROC' or 'PR', received {curve!r}.")

    def result(self, state):
        tp, fp, tn, fn = state["tp"], state["fp"], state["tn"], state["fn"]
        if self.curve == "PR":
            return self._interpolated_pr(tp, fp, fn)
        recall = _safe_divide(tp, tp + fn)
        false_positive_rate = _safe_divide(fp, fp + tn)
        heights = (recall[:-1] + recall[1:]) / 2.0
        return jnp.sum((false_positive_rate[:-1] - false_positive_rate[1:]) * heights)

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


METRICS: dict[str, Callable[[], Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": lambda: MeanSquaredError(name="mse"),
    "mean_squared_error": MeanSquaredError,
    "mae": lambda: MeanAbsoluteError(name="mae"),
    "mean_absolute_error": MeanAbsoluteError,
    "mape": lambda: MeanAbsolutePercentageError(name="mape"),
    "msle": lambda: MeanSquaredLogarithmicError(name="msle"),
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "cosine_similarity": CosineSimilarity,
    "log_cosh_error": LogCoshError,
    "hinge": Hinge,
    "kl_divergence": KLDivergence,
    "poisson": Poisson,
    "auc": AUC,
    "precision": Precision,
    "recall": Recall,
}


def resolve(identifier, *, loss: Callable, output_shape: tuple, label_shape: tuple | None) -> Metric:
    """A metric for one output. ``'accuracy'`` becomes binary accuracy for one unit or a binary
    loss, sparse accuracy for integer labels (label rank below the output's, or a sparse loss),
    categorical accuracy otherwise. Shapes exclude the batch axis."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            loss_name = losses.name_of(loss)
            sparse = loss_name == "sparse_categorical_crossentropy" or (
                label_shape is not None
                and (len(label_shape) < len(output_shape) or (label_shape[-1:] == (1,) and output_shape[-1] != 1))
            )
            if output_shape[-1] == 1 or "binary" in loss_name:
                return BinaryAccuracy(name=identifier)
            return SparseCategoricalAccuracy(name=identifier) if sparse else CategoricalAccuracy(name=identifier)
        if identifier in METRICS:
            metric = METRICS[identifier]()
            metric.name = identifier
            return metric
        raise TrainingConfigError(
            f"Unknown metric '{identifier}'; expected 'accuracy' or one of {sorted(METRICS)}, a kfunc.metrics "
            "object, or a function (y_true, y_pred) -> per-sample values."
        )
    if callable(identifier):
        wrapper = MeanMetricWrapper(name=getattr(identifier, "__name__", "metric"))
        wrapper.values = lambda y_true, y_pred: identifier(y_true, y_pred)
        return wrapper
    raise TrainingConfigError(f"A metric must be a name, a Metric or a function, received {type(identifier).__name__}.")
