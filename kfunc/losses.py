"""``kfunc.losses``: Keras 3's loss functions and classes, ``Loss`` to subclass, ``get``,
``serialize`` / ``deserialize`` (a facade over ``kfunc.train.losses`` and the config reader)."""

from kfunc.saving.serialization import deserialize_keras_object, serialize_keras_object
from kfunc.train.losses import *  # noqa: F403
from kfunc.train.losses import LOSSES, Loss, LossFunctionWrapper, get, name_of  # noqa: F401


def serialize(loss) -> dict:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of a loss object or function."""
    return serialize_keras_object(loss)


def deserialize(name, custom_objects=None):
    """The loss a name (``"mse"``, ``"binary_crossentropy"``) or a Keras 3 config describes; classes
    resolve only through kfunc's tables, the registry and ``custom_objects``."""
    if isinstance(name, str):
        return (custom_objects or {}).get(name) or get(name)
    return deserialize_keras_object(name, custom_objects)
