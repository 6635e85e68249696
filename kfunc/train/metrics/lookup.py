"""Metrics by name, and the metric objects ``compile`` resolves for an output.

A metric given to ``compile`` is a name (Keras 3's class names, their snake-case names, and the
aliases ``"mse"``, ``"mae"``, ``"mape"``, ``"msle"``, ``"bce"``; ``"accuracy"``/``"acc"`` resolved
from the loss and shapes), a ``Metric`` instance, a ``Metric`` class, or a function
``(y_true, y_pred) -> values`` (wrapped in ``MeanMetricWrapper``). A name becomes the metric's
log name, as in Keras's ``compile``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from kfunc.errors import TrainingConfigError
from kfunc.naming import to_snake_case
from kfunc.train import losses
from kfunc.train.metrics import accuracy_metrics as accuracy
from kfunc.train.metrics import confusion, correlation, f_score, iou, operating_point, probabilistic, regression
from kfunc.train.metrics.metric import Metric
from kfunc.train.metrics.reduction import Mean, MeanMetricWrapper, Sum

METRIC_CLASSES: tuple[type, ...] = (
    Sum, Mean,
    accuracy.Accuracy, accuracy.BinaryAccuracy, accuracy.CategoricalAccuracy, accuracy.SparseCategoricalAccuracy,
    accuracy.TopKCategoricalAccuracy, accuracy.SparseTopKCategoricalAccuracy,
    regression.MeanSquaredError, regression.MeanAbsoluteError, regression.MeanAbsolutePercentageError,
    regression.MeanSquaredLogarithmicError, regression.RootMeanSquaredError, regression.CosineSimilarity,
    regression.LogCoshError, regression.R2Score,
    probabilistic.Hinge, probabilistic.SquaredHinge, probabilistic.CategoricalHinge, probabilistic.KLDivergence,
    probabilistic.Poisson, probabilistic.BinaryCrossentropy, probabilistic.CategoricalCrossentropy,
    probabilistic.SparseCategoricalCrossentropy,
    confusion.TruePositives, confusion.FalsePositives, confusion.TrueNegatives, confusion.FalseNegatives,
    confusion.Precision, confusion.Recall, confusion.AUC,
    f_score.FBetaScore, f_score.F1Score,
    iou.IoU, iou.MeanIoU, iou.BinaryIoU, iou.OneHotIoU, iou.OneHotMeanIoU,
    correlation.PearsonCorrelation, correlation.ConcordanceCorrelation,
    operating_point.SensitivityAtSpecificity, operating_point.SpecificityAtSensitivity,
    operating_point.PrecisionAtRecall, operating_point.RecallAtPrecision,
)

# Keras 3's table: each class by its name and by its name in snake case, plus the short aliases.
METRICS: dict[str, type] = {cls.__name__: cls for cls in METRIC_CLASSES}
METRICS.update({to_snake_case(cls.__name__): cls for cls in METRIC_CLASSES})
METRICS.update({
    alias: cls
    for cls, aliases in (
        (probabilistic.BinaryCrossentropy, ("bce", "BCE")),
        (regression.MeanSquaredError, ("mse", "MSE")),
        (regression.MeanAbsoluteError, ("mae", "MAE")),
        (regression.MeanAbsolutePercentageError, ("mape", "MAPE")),
        (regression.MeanSquaredLogarithmicError, ("msle", "MSLE")),
        (regression.LogCoshError, ("logcosh",)),
    )
    for alias in aliases
})


def get(identifier):
    """Keras's ``metrics.get``: a new metric for a name (a class name, its snake-case name or an
    alias) or a ``Metric`` class; ``identifier`` itself for a ``Metric`` or a function."""
    if isinstance(identifier, str):
        if identifier not in METRICS:
            raise TrainingConfigError(
                f"Unknown metric '{identifier}'; expected 'accuracy', one of {sorted(METRICS)}, a "
                "kfunc.metrics.Metric, or a function (y_true, y_pred) -> per-sample values."
            )
        return METRICS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in METRICS:
        return METRICS[identifier["class_name"]].from_config(dict(identifier.get("config") or {}))
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, Metric) or callable(identifier):
        return identifier
    raise TrainingConfigError(
        f"A metric must be a name, a Metric or a function (y_true, y_pred), received "
        f"{type(identifier).__name__} {identifier!r:.80}."
    )


def check(identifier) -> None:
    """Raise at compile time for a metric name or object that ``resolve`` could not use (without
    making the metric: its variables are made once, when fit resolves it)."""
    if isinstance(identifier, str):
        if identifier.lower() not in ("accuracy", "acc") and identifier not in METRICS:
            get(identifier)  # raises the unknown-name error
    elif not (isinstance(identifier, Metric) or callable(identifier)
              or (isinstance(identifier, dict) and identifier.get("class_name") in METRICS)):
        get(identifier)  # raises the wrong-type error


def _accuracy(name: str, loss: Callable | None, output_shape: tuple, label_shape: tuple | None) -> Metric:
    loss_name = "" if loss is None else losses.name_of(loss)
    sparse = loss_name == "sparse_categorical_crossentropy" or (
        label_shape is not None
        and (len(label_shape) < len(output_shape) or (label_shape[-1:] == (1,) and output_shape[-1] != 1))
    )
    if output_shape[-1] == 1 or "binary" in loss_name:
        return accuracy.BinaryAccuracy(name=name)
    return accuracy.SparseCategoricalAccuracy(name=name) if sparse else accuracy.CategoricalAccuracy(name=name)


def resolve(identifier, *, loss: Callable | None, output_shape: tuple, label_shape: tuple | None) -> Metric:
    """The metric object for one output. ``'accuracy'`` becomes binary accuracy for one unit or a
    binary loss, sparse accuracy for integer labels (label rank below the output's, or a sparse
    loss), categorical accuracy otherwise. A name gives the metric that name, as Keras's compile
    does. A metric whose variables depend on the shapes (``F1Score``, ``R2Score``) is built here.
    Shapes exclude the batch axis."""
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        metric = _accuracy(identifier, loss, tuple(output_shape), label_shape)
    else:
        metric = get(identifier)
        if not isinstance(metric, Metric):
            metric = MeanMetricWrapper(metric, name=getattr(metric, "__name__", None) or "metric")
        if isinstance(identifier, str):
            metric.name = identifier
    if getattr(metric, "_built", True) is False:
        labels = tuple(output_shape) if label_shape is None else tuple(label_shape)
        metric._build((None,) + labels, (None,) + tuple(output_shape))
    return metric
