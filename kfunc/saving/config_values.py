"""Layer configurations as JSON values, and back, without ever executing a name from a file.

JSON holds ``None``, booleans, numbers, strings, lists and dicts with string keys as themselves.
Everything else is a tagged dict, ``{"__kfunc__": <tag>, ...}``:

- ``{"__kfunc__": "tuple", "items": [...]}``: a tuple (shapes, strides stay tuples);
- ``{"__kfunc__": "tensor", "ref": [layer_name, node_index, tensor_index]}``: a symbolic tensor
  among a node's call arguments or a model's inputs/outputs (``node_index`` counts the layer's
  calls within the model being described);
- ``{"__kfunc__": "layer", "class_name": ..., "config": {...}}``: a layer held by another layer
  (``TimeDistributed.layer``, ``Bidirectional.backward_layer``), or a nested model;
- ``{"__kfunc__": "activation", "name": "relu"}``: a built-in activation function;
- ``{"__kfunc__": "initializer", "name": "glorot_uniform", "config": {...}}``: a built-in initializer;
- ``{"__kfunc__": "loss", "name": "BinaryCrossentropy", "config": {...}}``: a built-in loss class;
- ``{"__kfunc__": "regularizer", "name": "L2", "config": {...}}`` and
  ``{"__kfunc__": "constraint", "name": "MaxNorm", "config": {...}}``: built-in regularizers and
  constraints (``kfunc.regularizers``, ``kfunc.constraints``);
- ``{"__kfunc__": "object", "name": ..., ["config": {...}]}``: a registered class or function (or an
  instance of a registered class, rebuilt from its config). A function that is not registered is
  saved under its ``__name__`` and must be registered (or given in ``custom_objects``) to load.

Decoding resolves names only through ``kfunc.saving.registry.Resolver``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from kfunc import activations, constraints, initializers, regularizers
from kfunc.graph.tensor import is_symbolic
from kfunc.saving import registry
from kfunc.saving.errors import ModelFileError, SavingError
from kfunc.saving.registry import shown

TAG = "__kfunc__"
MAX_DEPTH = 200


def _activation_name(obj) -> str | None:
    return next((name for name, known in activations.ACTIVATIONS.items() if known is obj), None)


def _initializer_name(obj) -> str | None:
    return next((name for name, cls in initializers.INITIALIZERS.items() if type(obj) is cls), None)


def _builtin_tables() -> dict[str, dict]:
    """Tag -> built-in classes by name, for objects saved as ``{tag, name, config}``."""
    from kfunc.optimizers.schedules import BUILTIN_SCHEDULES

    return {"regularizer": regularizers.REGULARIZERS, "constraint": constraints.CONSTRAINTS,
            "schedule": BUILTIN_SCHEDULES, "metric": registry.builtin_metric_classes()}


class Encoder:
    """Encodes config values for one save; remembers the names unregistered functions were saved
    under, so two different functions cannot be saved under one name."""

    def __init__(self, layer_spec: Callable):
        self._layer_spec = layer_spec  # layer -> {"class_name", "config"}
        self._by_name: dict[str, object] = {}

    def name_of(self, obj, where: str) -> str:
        """The name a class or function is saved under: registered, else its ``__name__``."""
        name = registry.registered_name(obj)
        if name is not None:
            return name
        name = getattr(obj, "__name__", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise SavingError(
                f"{where}: {obj!r:.80} has no name a file can refer to (a lambda or a callable object); "
                "register it under a name, e.g. kfunc.saving.register('my_package>square')(function)."
            )
        taken = name in registry.builtin_layers() or registry.registered_object(name) is not None
        other = self._by_name.setdefault(name, obj)
        if other is not obj or taken:
            raise SavingError(
                f"{where}: {obj!r:.80} is not registered and its name '{name}' is taken by another object; "
                "register it under a distinct name with kfunc.saving.register."
            )
        return name

    def value(self, value, where: str, tensor_ref: Callable | None = None, depth: int = 0):
        if depth > MAX_DEPTH:
            raise SavingError(f"{where}: the configuration is nested more than {MAX_DEPTH} levels deep.")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return float(value)
        recurse = lambda v: self.value(v, where, tensor_ref, depth + 1)
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {TAG: "tuple", "items": [recurse(v) for v in value]}
        if isinstance(value, list):
            return [recurse(v) for v in value]
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str) or k == TAG]
            if bad:
                raise SavingError(f"{where}: dict keys must be strings (and not '{TAG}'), found {bad[:3]!r}.")
            return {k: recurse(v) for k, v in value.items()}
        if is_symbolic(value):
            if tensor_ref is None:
                raise SavingError(f"{where}: a symbolic tensor '{value.name}' is held in a layer's configuration.")
            return {TAG: "tensor", "ref": tensor_ref(value)}
        from kfunc.layers.base import Layer

        if isinstance(value, Layer):
            return {TAG: "layer", **self._layer_spec(value)}
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            raise SavingError(
                f"{where}: an array of shape {tuple(value.shape)} cannot be part of a model's configuration; "
                "hold it as a weight (add_weight) or pass it as a model input."
            )
        return self._object(value, where, depth)

    def _object(self, obj, where: str, depth: int):
        from kfunc.train import losses

        name = _activation_name(obj)
        if name is not None:
            return {TAG: "activation", "name": name}
        name = _initializer_name(obj)
        if name is not None:
            return {TAG: "initializer", "name": name, "config": self.value(obj.get_config(), where, None, depth + 1)}
        for tag, table in _builtin_tables().items():
            if table.get(type(obj).__name__) is type(obj):
                config = self.value(obj.get_config(), where, None, depth + 1)
                return {TAG: tag, "name": type(obj).__name__, "config": config}
        loss_class = registry.builtin_loss_classes().get(type(obj).__name__)
        if loss_class is type(obj) and isinstance(obj, losses.Loss):
            return {TAG: "loss", "name": type(obj).__name__, "config": self.value(obj.get_config(), where, None, depth + 1)}
        if inspect.isclass(obj) or registry.registered_name(obj) is not None:
            return {TAG: "object", "name": self.name_of(obj, where)}
        if callable(obj) and callable(getattr(obj, "get_config", None)):
            config = self.value(obj.get_config(), where, None, depth + 1)
            return {TAG: "object", "name": self.name_of(type(obj), where), "config": config}
        if callable(obj):
            return {TAG: "object", "name": self.name_of(obj, where)}
        raise SavingError(
            f"{where}: {type(obj).__name__} {obj!r:.60} cannot be written to a model file; configurations hold "
            "numbers, strings, lists, dicts, layers and registered classes or functions."
        )


class Decoder:
    """Decodes config values for one load. ``tensor(ref)`` resolves tensor references and
    ``layer(spec, context)`` builds layers; both are given by the model builder."""

    def __init__(self, resolver: registry.Resolver, layer: Callable):
        self.resolver = resolver
        self._layer = layer

    def value(self, data, context: str, tensor: Callable | None = None, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ModelFileError(f"{context}: the configuration is nested more than {MAX_DEPTH} levels deep.")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        recurse = lambda v: self.value(v, context, tensor, depth + 1)
        if isinstance(data, list):
            return [recurse(v) for v in data]
        if not isinstance(data, dict):
            raise ModelFileError(f"{context}: unexpected value {shown(data)}.")
        if TAG not in data:
            return {k: recurse(v) for k, v in data.items()}
        tag = data[TAG]
        if tag == "tuple":
            items = data.get("items")
            if not isinstance(items, list):
                raise ModelFileError(f"{context}: a tuple without a list of items.")
            return tuple(recurse(v) for v in items)
        if tag == "tensor":
            if tensor is None:
                raise ModelFileError(f"{context}: a tensor reference where none can be.")
            return tensor(data.get("ref"))
        if tag == "layer":
            return self._layer(data, context, depth + 1)
        name = data.get("name")
        config = data.get("config")
        if config is not None and not isinstance(config, dict):
            raise ModelFileError(f"{context}: the config of {shown(name)} is not a JSON object.")
        if tag == "activation":
            if not isinstance(name, str) or name not in activations.ACTIVATIONS:
                raise ModelFileError(f"{context}: {shown(name)} is not a built-in activation.")
            return activations.ACTIVATIONS[name]
        if tag in ("initializer", "loss"):
            table = initializers.INITIALIZERS if tag == "initializer" else registry.builtin_loss_classes()
            if not isinstance(name, str) or name not in table:
                raise ModelFileError(f"{context}: {shown(name)} is not a built-in {tag}.")
            return construct(table[name], self.value(config or {}, context, None, depth + 1), context)
        if tag in _builtin_tables():
            table = _builtin_tables()[tag]
            if not isinstance(name, str) or name not in table:
                raise ModelFileError(f"{context}: {shown(name)} is not a built-in {tag}.")
            return construct(table[name], self.value(config or {}, context, None, depth + 1), context)
        if tag == "object":
            found = self.resolver.lookup(name, context=context)
            if "config" not in data:
                return found
            if not inspect.isclass(found):
                raise ModelFileError(f"{context}: {shown(name)} has a config but names a function, not a class.")
            return construct(found, self.value(config, context, None, depth + 1), context)
        raise ModelFileError(f"{context}: unknown tag {shown(tag)}.")


def construct(cls: type, config: dict, context: str):
    """``cls.from_config(config)`` if it has one, else ``cls(**config)``; any failure is a
    ``ModelFileError`` naming ``context``."""
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ModelFileError(f"{context}: the config of {cls.__name__} is not a JSON object.")
    from_config = getattr(cls, "from_config", None)
    try:
        return from_config(config) if callable(from_config) else cls(**config)
    except ModelFileError:
        raise
    except Exception as error:
        raise ModelFileError(
            f"{context}: {cls.__name__} cannot be built from the file's config ({type(error).__name__}: "
            f"{str(error)[:300]})."
        ) from error
