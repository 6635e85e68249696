"""Hinge and probabilistic metrics: the mean over samples of the loss functions of the same name."""

from __future__ import annotations

from kfunc.train.losses import functions as f
from kfunc.train.metrics.reduction import BuiltinMeanMetric
from kfunc.train.metrics.regression import mean_metric_class

Hinge = mean_metric_class(f.hinge, "Hinge", "hinge", __name__)
SquaredHinge = mean_metric_class(f.squared_hinge, "SquaredHinge", "squared_hinge", __name__)
CategoricalHinge = mean_metric_class(f.categorical_hinge, "CategoricalHinge", "categorical_hinge", __name__)
KLDivergence = mean_metric_class(f.kl_divergence, "KLDivergence", "kl_divergence", __name__)
Poisson = mean_metric_class(f.poisson, "Poisson", "poisson", __name__)


class BinaryCrossentropy(BuiltinMeanMetric):
    """The mean binary cross-entropy of probabilities (or logits with ``from_logits=True``)."""

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(f.binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)


class CategoricalCrossentropy(BuiltinMeanMetric):
    """The mean cross-entropy of one-hot labels against class probabilities (or logits)."""

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0, axis=-1):
        super().__init__(f.categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(BuiltinMeanMetric):
    """The mean cross-entropy of integer labels against class probabilities (or logits)."""

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False, ignore_class=None,
                 axis=-1):
        if ignore_class is not None:
            from kfunc.errors import TrainingConfigError

            raise TrainingConfigError(
                f"SparseCategoricalCrossentropy metric '{name}' got ignore_class={ignore_class!r}, which kfunc "
                "does not support; leave it None."
            )
        super().__init__(f.sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         axis=axis)
