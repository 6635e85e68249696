"""A learning-rate schedule inside an optimizer's config, in Keras 3's serialized form.

``{"module": ..., "class_name": ..., "config": {...}, "registered_name": ...}``. Reading one never
imports anything: the class is found in ``custom_objects``, among the classes registered with
``kfunc.saving.register``, or among kfunc's built-in schedules.
"""

from __future__ import annotations

from kfunc import registry
from kfunc.errors import TrainingConfigError


def _builtin_schedules() -> dict[str, type]:
    # Imported when used: ``kfunc.optimizers`` re-exports this package, so importing it while this
    # package loads would find it half-initialized.
    from kfunc.train.optimizers.schedules import BUILTIN_SCHEDULES

    return BUILTIN_SCHEDULES


def serialize_schedule(schedule, owner: str) -> dict:
    """Keras 3's dict of a schedule object (one with ``get_config``)."""
    get_config = getattr(schedule, "get_config", None)
    if not callable(get_config):
        raise TrainingConfigError(
            f"{owner}: the learning-rate schedule {schedule!r:.60} has no get_config(), so it cannot be "
            "serialized; use a kfunc.optimizers.schedules class or a LearningRateSchedule subclass."
        )
    cls = type(schedule)
    builtin = _builtin_schedules().get(cls.__name__) is cls
    return {
        "module": "keras.optimizers.schedules" if builtin else cls.__module__,
        "class_name": cls.__name__,
        "config": get_config(),
        "registered_name": None if builtin else registry.registered_name(cls),
    }


def deserialize_schedule(config: dict, custom_objects, owner: str):
    """The schedule a ``serialize_schedule`` dict (or Keras 3's) describes."""
    name = config.get("class_name")
    inner = config.get("config")
    if not isinstance(name, str) or not isinstance(inner, dict):
        raise TrainingConfigError(
            f"{owner}: a learning-rate schedule config must be {{'class_name': ..., 'config': {{...}}}}, "
            f"received {config!r:.80}."
        )
    key = config.get("registered_name") or name
    found = (custom_objects or {}).get(key) or registry.registered_object(key) or _builtin_schedules().get(name)
    if not isinstance(found, type) or not callable(getattr(found, "from_config", None)):
        raise TrainingConfigError(
            f"{owner}: the learning-rate schedule '{key}' is neither a kfunc.optimizers.schedules class nor "
            "registered; register its class with kfunc.saving.register or pass it in custom_objects."
        )
    return found.from_config(inner)
