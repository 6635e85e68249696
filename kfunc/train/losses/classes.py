"""Keras 3's built-in loss classes, with its argument names, defaults and names.

``BinaryCrossentropy(from_logits=True)(y_true, y_pred)`` is one number (reduced with
``reduction``); its ``call`` gives the per-sample values ``(batch, ...)`` the training step weighs.
"""

from __future__ import annotations

from kfunc.errors import TrainingConfigError
from kfunc.train.losses import functions as f
from kfunc.train.losses.loss import LossFunctionWrapper

SUM_OVER_BATCH = "sum_over_batch_size"

__all__ = [
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
    "LogCosh", "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson", "CosineSimilarity",
    "Huber", "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "Dice", "Tversky",
]


class _BuiltinLoss(LossFunctionWrapper):
    """A built-in loss: ``get_config`` holds the name, the reduction and the options (no function)."""

    function = None  # the loss function of the class

    def __init__(self, reduction=SUM_OVER_BATCH, name=None, dtype=None, **options):
        super().__init__(type(self).function, reduction=reduction, name=name, dtype=dtype, **options)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, **self._fn_kwargs}


def _plain(function, class_name: str, default_name: str) -> type:
    """A built-in loss class without options: ``Class(reduction=..., name=..., dtype=None)``."""

    def __init__(self, reduction=SUM_OVER_BATCH, name=default_name, dtype=None):
        _BuiltinLoss.__init__(self, reduction=reduction, name=name, dtype=dtype)

    return type(class_name, (_BuiltinLoss,), {"function": staticmethod(function), "__init__": __init__,
                                              "__module__": __name__,
                                              "__doc__": f"Keras's ``{class_name}``: ``{function.__name__}``."})


MeanSquaredError = _plain(f.mean_squared_error, "MeanSquaredError", "mean_squared_error")
MeanAbsoluteError = _plain(f.mean_absolute_error, "MeanAbsoluteError", "mean_absolute_error")
MeanAbsolutePercentageError = _plain(
    f.mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error"
)
MeanSquaredLogarithmicError = _plain(
    f.mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"
)
LogCosh = _plain(f.log_cosh, "LogCosh", "log_cosh")
Hinge = _plain(f.hinge, "Hinge", "hinge")
SquaredHinge = _plain(f.squared_hinge, "SquaredHinge", "squared_hinge")
CategoricalHinge = _plain(f.categorical_hinge, "CategoricalHinge", "categorical_hinge")
KLDivergence = _plain(f.kl_divergence, "KLDivergence", "kl_divergence")
Poisson = _plain(f.poisson, "Poisson", "poisson")


class CosineSimilarity(_BuiltinLoss):
    """Negative cosine similarity along ``axis``."""

    function = staticmethod(f.cosine_similarity)

    def __init__(self, axis=-1, reduction=SUM_OVER_BATCH, name="cosine_similarity", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, axis=axis)


class Huber(_BuiltinLoss):
    """Quadratic for errors up to ``delta``, linear beyond."""

    function = staticmethod(f.huber)

    def __init__(self, delta=1.0, reduction=SUM_OVER_BATCH, name="huber_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, delta=delta)


class BinaryCrossentropy(_BuiltinLoss):
    """Binary cross-entropy of probabilities (or logits with ``from_logits=True``), averaged over ``axis``."""

    function = staticmethod(f.binary_crossentropy)

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=SUM_OVER_BATCH,
                 name="binary_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class CategoricalCrossentropy(_BuiltinLoss):
    """Cross-entropy of one-hot labels against class probabilities (or logits) along ``axis``."""

    function = staticmethod(f.categorical_crossentropy)

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=SUM_OVER_BATCH,
                 name="categorical_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(_BuiltinLoss):
    """Cross-entropy of integer labels ``(batch,)`` or ``(batch, 1)`` against class probabilities."""

    function = staticmethod(f.sparse_categorical_crossentropy)

    def __init__(self, from_logits=False, ignore_class=None, reduction=SUM_OVER_BATCH, axis=-1,
                 name="sparse_categorical_crossentropy", dtype=None):
        if ignore_class is not None:
            raise TrainingConfigError(
                f"SparseCategoricalCrossentropy '{name}' got ignore_class={ignore_class!r}, which kfunc does "
                "not support; leave it None and give the ignored samples sample_weight 0 instead."
            )
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=from_logits, axis=axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "ignore_class": None}


class BinaryFocalCrossentropy(_BuiltinLoss):
    """Binary cross-entropy down-weighting well classified labels by ``(1 - p_t) ** gamma``."""

    function = staticmethod(f.binary_focal_crossentropy)

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 axis=-1, reduction=SUM_OVER_BATCH, name="binary_focal_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, apply_class_balancing=apply_class_balancing,
                         alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class CategoricalFocalCrossentropy(_BuiltinLoss):
    """Categorical cross-entropy with each class term scaled by ``alpha * (1 - p) ** gamma``."""

    function = staticmethod(f.categorical_focal_crossentropy)

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction=SUM_OVER_BATCH, name="categorical_focal_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class Dice(_BuiltinLoss):
    """The Dice loss of soft segmentations, summed over ``axis`` (None: the whole batch)."""

    function = staticmethod(f.dice)

    def __init__(self, reduction=SUM_OVER_BATCH, name="dice", axis=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, axis=axis)


class Tversky(_BuiltinLoss):
    """The Tversky loss: Dice with false positives weighed by ``alpha`` and false negatives by ``beta``."""

    function = staticmethod(f.tversky)

    def __init__(self, alpha=0.5, beta=0.5, reduction=SUM_OVER_BATCH, name="tversky", axis=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta, axis=axis)


BUILTIN_LOSS_CLASSES = (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCosh,
    Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson, CosineSimilarity, Huber,
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy, Dice, Tversky,
)
