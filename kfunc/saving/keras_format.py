"""kfunc layers and models described in Keras 3's config format (``get_config``, ``to_json``,
``serialize_keras_object``).

The graph walk is ``ModelSerializer``'s (the one that writes kfunc's model files); only the way
values are written differs. Every object is written as Keras 3 writes it::

    {"module": "keras.layers", "class_name": "Dense", "config": {...}, "registered_name": None}

kfunc's built-in layers, initializers, regularizers, constraints and losses under Keras's
modules (``keras.layers`` ...), so a config made by Keras and one made by kfunc read the same way;
a registered class or function under its own module with its ``registered_name``; a symbolic
tensor among a node's arguments as ``{"class_name": "__keras_tensor__", "config": {"shape",
"dtype", "keras_history": [layer, node, tensor]}}``. A functional model's config is Keras's:
``name``, ``trainable``, ``layers`` (each with ``name`` and ``inbound_nodes``),
``input_layers`` and ``output_layers``; a Sequential's: ``name``, ``trainable``, ``layers``
(an ``InputLayer`` first once built) and ``build_input_shape``.

Reading goes the other way through ``kfunc.saving.keras_config`` (names resolved only through
kfunc's tables and registry) and ``ModelBuilder``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from kfunc import activations, constraints, initializers, regularizers
from kfunc.graph.tensor import is_symbolic
from kfunc.saving import registry
from kfunc.saving.errors import SavingError
from kfunc.saving.model_config import MAX_NESTING, ModelSerializer

KERAS_TENSOR = "__keras_tensor__"
_MODEL_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras.src.models.sequential"}


def keras_object(module: str, class_name: str, config, registered_name=None) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": registered_name}


class KerasEncoder:
    """Encodes config values in Keras 3's format; the interface of ``config_values.Encoder``."""

    def __init__(self, layer_spec: Callable):
        self._layer_spec = layer_spec

    def name_of(self, obj, where: str) -> str:
        """The name a class or function is written under: registered, else its ``__name__``."""
        name = registry.registered_name(obj) or getattr(obj, "__name__", None)
        if not isinstance(name, str) or not name.isidentifier() and registry.registered_name(obj) is None:
            raise SavingError(
                f"{where}: {obj!r:.80} has no name a config can refer to (a lambda or a callable object); "
                "register it under a name, e.g. kfunc.saving.register_keras_serializable('my_package')(function)."
            )
        return name

    def value(self, value, where: str, tensor_ref: Callable | None = None, depth: int = 0):
        if depth > MAX_NESTING * 4:
            raise SavingError(f"{where}: the configuration is nested too deeply.")
        if value is None or isinstance(value, (bool, str, int, float)) and not isinstance(value, np.generic):
            return value
        if isinstance(value, np.generic):
            return value.item()
        recurse = lambda v: self.value(v, where, tensor_ref, depth + 1)  # noqa: E731
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return tuple(recurse(v) for v in value)
        if isinstance(value, list):
            return [recurse(v) for v in value]
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise SavingError(f"{where}: dict keys must be strings, found {bad[:3]!r}.")
            return {k: recurse(v) for k, v in value.items()}
        if is_symbolic(value):
            if tensor_ref is None:
                raise SavingError(f"{where}: a symbolic tensor '{value.name}' is held in a layer's configuration.")
            history = tensor_ref(value)
            return {"class_name": KERAS_TENSOR,
                    "config": {"shape": tuple(value.shape), "dtype": value.dtype.name, "keras_history": history}}
        from kfunc.layers.base import Layer

        if isinstance(value, Layer):
            return self._layer_spec(value)
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            raise SavingError(
                f"{where}: an array of shape {tuple(value.shape)} cannot be part of a model's configuration; "
                "hold it as a weight (add_weight) or pass it as a model input."
            )
        return self._object(value, where, depth)

    def _object(self, obj, where: str, depth: int):
        config_of = lambda o: self.value(o.get_config(), where, None, depth + 1)  # noqa: E731
        name = next((n for n, known in activations.ACTIVATIONS.items() if known is obj), None)
        if name is not None:
            return keras_object("builtins", "function", name, "function")  # as Keras 3 writes its activations
        if any(type(obj) is cls for cls in initializers.INITIALIZERS.values()):
            return keras_object("keras.initializers", type(obj).__name__, config_of(obj))
        for module, table in (("keras.regularizers", regularizers.REGULARIZERS),
                              ("keras.constraints", constraints.CONSTRAINTS),
                              ("keras.losses", registry.builtin_loss_classes()),
                              ("keras.metrics", registry.builtin_metric_classes())):
            if table.get(type(obj).__name__) is type(obj):
                return keras_object(module, type(obj).__name__, config_of(obj))
        if inspect.isclass(obj) or inspect.isfunction(obj) or registry.registered_name(obj) is not None:
            name = self.name_of(obj, where)
            return keras_object(getattr(obj, "__module__", None) or "builtins", "function", name, name)
        if callable(getattr(obj, "get_config", None)):
            cls = type(obj)
            return keras_object(cls.__module__, cls.__name__, config_of(obj), self.name_of(cls, where))
        raise SavingError(
            f"{where}: {type(obj).__name__} {obj!r:.60} cannot be part of a config; configurations hold numbers, "
            "strings, lists, dicts, layers and registered classes or functions."
        )


class KerasModelSerializer(ModelSerializer):
    """``ModelSerializer``'s graph walk, writing Keras 3's layer and model configs."""

    def __init__(self):
        super().__init__()
        self.encoder = KerasEncoder(self.layer_spec)

    def layer_spec(self, layer) -> dict:
        spec = super().layer_spec(layer)
        class_name = spec["class_name"]
        registered = registry.registered_name(type(layer))
        if registered is not None:
            return keras_object(type(layer).__module__, type(layer).__name__, spec["config"], registered)
        if class_name in _MODEL_MODULES and type(layer) in registry.model_classes():
            return keras_object(_MODEL_MODULES[class_name], class_name, spec["config"], class_name)
        if class_name in registry.builtin_layers():
            return keras_object("keras.layers", class_name, spec["config"])
        # An unregistered class of the user's: named by its class name, which reading resolves
        # only through custom_objects or a custom_object_scope.
        return keras_object(type(layer).__module__, type(layer).__name__, spec["config"], type(layer).__name__)

    def _sequential_config(self, model) -> dict:
        base = super()._sequential_config(model)
        layers = base["layers"]
        config = {"name": base["name"], "trainable": base["trainable"]}
        if base["input_layer"] is not None:
            layers = [base["input_layer"], *layers]
            config["build_input_shape"] = tuple(model._input_tensor.shape)
        return config | {"layers": layers}

    def _functional_config(self, model) -> dict:
        base = super()._functional_config(model)
        Model, Sequential = registry.model_classes()
        nested_functional = {
            layer.name for layer in model._graph().plan.layers
            if isinstance(layer, Model) and not isinstance(layer, Sequential)
        }
        layers = []
        for entry in base["layers"]:
            if "module" not in entry:  # an InputLayer made for an intermediate input
                entry = keras_object("keras.layers", entry["class_name"], entry["config"]) | {
                    "inbound_nodes": entry["inbound_nodes"]}
            layers.append(entry | {"name": entry["config"]["name"]})

        def references(structure):
            # Keras counts the node a functional model makes of itself in these references.
            if isinstance(structure, dict) and structure.get("class_name") == KERAS_TENSOR:
                name, node, index = structure["config"]["keras_history"]
                return [name, node + 1 if name in nested_functional else node, index]
            if isinstance(structure, (list, tuple)):
                return [references(item) for item in structure]
            return {key: references(item) for key, item in structure.items()}

        return {
            "name": base["name"],
            "trainable": base["trainable"],
            "layers": layers,
            "input_layers": references(base["inputs"]),
            "output_layers": references(base["outputs"]),
        }


def layer_config(layer) -> dict:
    """``serialize_keras_object(layer)``: a layer or model in Keras 3's format."""
    return KerasModelSerializer().layer_spec(layer)


def model_config(model) -> dict:
    """``model.get_config()``: the inner config of a functional or Sequential model."""
    return layer_config(model)["config"]


def value_config(value):
    """``serialize_keras_object(value)`` for any other value (initializers, losses, plain values)."""
    serializer = KerasModelSerializer()
    return serializer.encoder.value(value, f"{type(value).__name__} value")
