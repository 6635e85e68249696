"""``kfunc.metrics``: Keras 3's metrics (``Metric`` to subclass, the built-in classes, ``get``,
``serialize`` / ``deserialize``) and, as in Keras 3, the loss functions usable as metrics."""

from kfunc.saving.serialization import deserialize_keras_object, serialize_keras_object
from kfunc.train.losses.functions import binary_focal_crossentropy, categorical_focal_crossentropy, huber  # noqa: F401
from kfunc.train.metrics import *  # noqa: F403
from kfunc.train.metrics import METRICS, Metric, get, resolve  # noqa: F401


def serialize(metric) -> dict:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of a metric."""
    return serialize_keras_object(metric)


def deserialize(config, custom_objects=None):
    """The metric a name (``"accuracy"``, ``"AUC"``) or a Keras 3 config describes; classes resolve
    only through kfunc's tables, the registry and ``custom_objects``."""
    if isinstance(config, str):
        return (custom_objects or {}).get(config) or get(config)
    return deserialize_keras_object(config, custom_objects)
