"""``kfunc.layers.serialize`` / ``deserialize``: a layer as Keras 3's config dict, and back.

The work is ``kfunc.saving.serialization``'s (which sits above the layers); it adds its functions
to ``kfunc.registry`` as ``"config_api"`` entries when imported (``import kfunc`` does), and these
look them up there, as the saving code finds the model classes.
"""

from __future__ import annotations

from kfunc import registry
from kfunc.errors import SavingError


def _config_api(name: str):
    found = registry.builtins("config_api").get(name)
    if found is None:
        raise SavingError(f"layers.{name}: kfunc.saving is not imported; import kfunc first.")
    return found


def serialize(layer) -> dict:
    """``{"module", "class_name", "config", "registered_name"}`` of ``layer`` (a model's config holds its graph)."""
    return _config_api("serialize")(layer)


def deserialize(config, custom_objects=None):
    """The layer ``config`` (from ``serialize``, or Keras 3's) describes, with new weights; classes
    resolve only through kfunc's layers, the registry and ``custom_objects``."""
    return _config_api("deserialize")(config, custom_objects)
