"""Optimizers as Keras 3's serialized dicts, and back.

``serialize(optimizer)`` gives ``{"module", "class_name", "config", "registered_name"}``; the
config is the optimizer's ``get_config()`` (a learning-rate schedule in the same form, a wrapped
optimizer too). ``deserialize`` finds the class only in ``custom_objects``, among the classes
registered with ``kfunc.saving.register``, or in kfunc's built-in optimizer table (the
``"optimizer"`` table of ``kfunc.registry``, filled when ``kfunc.train.optimizers`` is imported):
the ``"module"`` a config names is never imported.
"""

from __future__ import annotations

from kfunc import registry
from kfunc.errors import TrainingConfigError
from kfunc.train.optimizers.base import Optimizer


def serialize(optimizer) -> dict:
    """Keras 3's dict of a ``kfunc.optimizers`` optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise TrainingConfigError(
            f"optimizers.serialize expects a kfunc.optimizers optimizer, received {type(optimizer).__name__}; "
            "an optax transformation has no config to serialize."
        )
    cls = type(optimizer)
    config = optimizer.get_config()
    rate = config.get("learning_rate")
    if callable(rate):
        raise TrainingConfigError(
            f"optimizers.serialize: the learning rate of {cls.__name__} is the function {rate!r:.60}, which has "
            "no config; use a kfunc.optimizers.schedules class (or a registered LearningRateSchedule subclass)."
        )
    builtin = registry.builtins("optimizer").get(cls.__name__) is cls
    return {
        "module": "keras.optimizers" if builtin else cls.__module__,
        "class_name": cls.__name__,
        "config": config,
        "registered_name": None if builtin else (registry.registered_name(cls) or cls.__name__),
    }


def deserialize(config, custom_objects=None) -> Optimizer:
    """The optimizer a ``serialize`` dict (or a Keras 3 optimizer config) describes."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(
            config.get("config", {}), dict):
        raise TrainingConfigError(
            f"optimizers.deserialize expects {{'class_name': ..., 'config': {{...}}}}, received {config!r:.80}."
        )
    name = config["class_name"]
    key = config.get("registered_name") or name
    builtins = registry.builtins("optimizer")
    found = (custom_objects or {}).get(key) or registry.registered_object(key) or builtins.get(name) or builtins.get(
        name.lower())
    if not (isinstance(found, type) and issubclass(found, Optimizer)):
        known = sorted(n for n in builtins if n[:1].isupper())
        raise TrainingConfigError(
            f"optimizers.deserialize: '{key}' names no optimizer; expected one of {known}, a class registered with "
            "kfunc.saving.register, or one passed in custom_objects."
        )
    return found.from_config(dict(config.get("config", {})), custom_objects=custom_objects)
