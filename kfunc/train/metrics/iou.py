"""Intersection-over-union metrics from a running confusion matrix: ``IoU``, ``MeanIoU``,
``BinaryIoU``, ``OneHotIoU`` and ``OneHotMeanIoU``.

Labels and predictions are class ids ``(batch, ...)`` (or scores ``(batch, ..., classes)`` when
``sparse_y_true`` / ``sparse_y_pred`` is False: their arg-max is taken). As in Keras 3 the matrix
is counted in ``dtype``, an integer type by default, so fractional sample weights are truncated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc import config
from kfunc.errors import TrainingConfigError
from kfunc.train.metrics.metric import Metric


class IoU(Metric):
    """The mean over ``target_class_ids`` of ``tp / (tp + fp + fn)`` per class (classes never seen
    nor predicted are left out of the mean)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype=dtype if dtype is not None else "int32")
        if not target_class_ids or max(target_class_ids) >= num_classes or min(target_class_ids) < 0:
            raise TrainingConfigError(
                f"{type(self).__name__} '{self.name}' got target_class_ids={list(target_class_ids)!r}; each must "
                f"be a class id in [0, {num_classes})."
            )
        self.num_classes = int(num_classes)
        self.target_class_ids = list(target_class_ids)
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.total_cm = self.add_variable(shape=(self.num_classes, self.num_classes), initializer="zeros",
                                          name="total_confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = jnp.asarray(y_true) if self.sparse_y_true else jnp.argmax(jnp.asarray(y_true), axis=self.axis)
        y_pred = jnp.asarray(y_pred) if self.sparse_y_pred else jnp.argmax(jnp.asarray(y_pred), axis=self.axis)
        weight = jnp.asarray(1 if sample_weight is None else sample_weight).astype(self.dtype)
        if 0 < weight.ndim < y_true.ndim:  # one weight per sample: over all of the sample's values
            weight = weight.reshape(weight.shape + (1,) * (y_true.ndim - weight.ndim))
        weight = jnp.broadcast_to(weight, y_true.shape).reshape(-1)
        y_true = y_true.astype(self.dtype).reshape(-1)
        y_pred = y_pred.astype(self.dtype).reshape(-1)
        # Ids outside [0, num_classes) and the ignored class count nowhere.
        valid = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (y_pred < self.num_classes)
        if self.ignore_class is not None:
            valid = valid & (y_true != self.ignore_class)
        weight = jnp.where(valid, weight, 0)
        true_hot = jax.nn.one_hot(jnp.where(valid, y_true, 0), self.num_classes, dtype=self.dtype)
        pred_hot = jax.nn.one_hot(jnp.where(valid, y_pred, 0), self.num_classes, dtype=self.dtype)
        self.total_cm.assign_add((true_hot * weight[:, None]).T @ pred_hot)

    def result(self):
        matrix = self.total_cm.value.astype(jnp.float32)
        true_positives = jnp.diagonal(matrix)
        union = jnp.sum(matrix, axis=0) + jnp.sum(matrix, axis=1) - true_positives
        ids = jnp.asarray(self.target_class_ids)
        true_positives, union = true_positives[ids], union[ids]
        seen = union > 1e-9
        iou = jnp.where(seen, true_positives / (union + config.epsilon()), 0.0)
        return jnp.sum(iou) / (jnp.sum(seen.astype(jnp.float32)) + config.epsilon())

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class MeanIoU(IoU):
    """``IoU`` averaged over every class."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
                 axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config_ = super().get_config()
        del config_["target_class_ids"]
        return config_


class BinaryIoU(IoU):
    """``IoU`` of binary labels against ``y_pred >= threshold``."""

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(2, target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = (jnp.asarray(y_pred, jnp.float32) >= self.threshold).astype(self.dtype)
        super().update_state(jnp.asarray(y_true).astype(self.dtype), predicted, sample_weight)

    def get_config(self) -> dict:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}


class OneHotIoU(IoU):
    """``IoU`` of one-hot labels ``(batch, ..., classes)``."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_pred=False,
                 axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config_ = super().get_config()
        del config_["sparse_y_true"]
        return config_


class OneHotMeanIoU(MeanIoU):
    """``MeanIoU`` of one-hot labels ``(batch, ..., classes)``."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config_ = super().get_config()
        del config_["sparse_y_true"]
        return config_
