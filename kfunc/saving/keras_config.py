"""Keras 3 model configs (the ``config.json`` of a ``.keras`` file) translated into kfunc's model
spec (``kfunc.saving.model_config``), which ``ModelBuilder`` then builds through the registry.

Keras writes every object as ``{"module": "keras.layers", "class_name": "Dense", "config": {...},
"registered_name": ..., "build_config": ...}``. The translation reads only names, never code:

- objects of Keras's own modules (``keras``, ``keras.layers``, ``keras.models``,
  ``keras.initializers``, ``keras.regularizers``, ``keras.constraints``, ``keras.activations``,
  ``keras.src...``) become kfunc's layers, initializers, regularizers, constraints and activations
  of the same names, found in kfunc's tables;
- an object of any other module (a user's class, or ``os.system``) is found only by its
  ``registered_name`` in kfunc's registry or in ``custom_objects``; anything else is refused;
- ``Lambda`` layers and ``__lambda__`` values (Keras stores Python bytecode for them) are refused,
  as are arrays, slices and type specs inside configs;
- a functional model's ``layers`` (with ``inbound_nodes`` holding ``__keras_tensor__`` references
  ``keras_history: [layer, node, tensor]``), ``input_layers`` and ``output_layers`` become kfunc's
  tensor references; a Sequential's leading ``InputLayer`` (or ``build_input_shape``) becomes its
  ``input_layer``; nested models nest;
- Keras's config keys that kfunc's class does not take are dropped when they hold a disabled
  value (``None``, ``False``, ``0``, empty) or depend on an option that is off (``renorm_momentum``
  without ``renorm``), and refused otherwise, naming the key; initializer
  options (``seed``) are dropped, since a loaded model's weights come from the file;
- call arguments Keras records on its own (``training=False``, ``mask=None``) are dropped.
"""

from __future__ import annotations

import functools
import inspect

from kfunc import activations, constraints, initializers, regularizers
from kfunc.saving import registry
from kfunc.saving.config_values import TAG
from kfunc.saving.errors import KerasFileError, ModelFileError
from kfunc.saving.registry import shown
from kfunc.saving.structure import snake_case

MAX_DEPTH = 200
_KERAS_MODULES = ("keras", "keras.layers", "keras.models", "keras.initializers", "keras.regularizers",
                  "keras.constraints", "keras.activations", "keras.losses", "keras.metrics")
# Keras options that only matter while another option is on (BatchNormalization's renorm settings).
_ENABLED_BY = {"renorm_momentum": "renorm", "renorm_clipping": "renorm"}
_REFUSED_VALUES = {
    "__lambda__": "a lambda function (Keras stores its Python bytecode)",
    "__numpy__": "an array",
    "__tensor__": "an array",
    "__typespec__": "a TensorFlow type spec",
    "__bytes__": "a bytes value",
    "__slice__": "a slice",
    "__ellipsis__": "an Ellipsis",
}


def is_keras_module(module) -> bool:
    return isinstance(module, str) and (module in _KERAS_MODULES or module.startswith("keras.src."))


def _is_disabled(value) -> bool:
    return value is None or value is False or value == 0 or value in ([], {}, "")


@functools.cache
def _accepted_keys(cls: type) -> frozenset | None:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` up the class hierarchy;
    ``None`` when a class takes any keyword at all."""
    from kfunc.layers.base import Layer

    forwarded = getattr(cls, "forwarded_arguments", None)
    names: set[str] = set(forwarded()) if callable(forwarded) else set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names.update(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        # Layer's own **kwargs only exists to name unknown arguments in its error.
        if klass is Layer or not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return frozenset(names - {"self"})
    return None


class KerasConfigTranslator:
    """Translates one Keras config; ``resolver`` finds registered and ``custom_objects`` names.

    ``source`` names the file (``"'model.keras'"``); ``subject`` and ``error`` say what is read
    when it is not a Keras file (``Model.from_config``'s config raises ``ConfigError``)."""

    def __init__(self, resolver: registry.Resolver, source: str = "", *, subject: str | None = None,
                 error: type[ModelFileError] = KerasFileError):
        self.resolver = resolver
        self.source = source
        self.subject = f"The Keras file {source}" if subject is None else subject
        self.error = error

    def fail(self, context: str, message: str) -> ModelFileError:
        return self.error(f"{self.subject}, {context}: {message}")

    # ------------------------------------------------------------------ layers and models
    def layer_spec(self, data, context: str, depth: int = 0) -> dict:
        """A kfunc layer spec ``{"class_name", "config"}`` from a serialized Keras layer."""
        if depth > MAX_DEPTH:
            raise self.fail(context, f"layers are nested more than {MAX_DEPTH} levels deep.")
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            raise self.fail(context, f"a layer must be an object with a config, found {shown(data)}.")
        class_name = self._class_name(data, context, kind="layer")
        context = f"{context} > {shown(data['config'].get('name', class_name), 60)}"
        if class_name == "Functional":
            return {"class_name": "Functional", "config": self.functional(data["config"], context, depth)}
        if class_name == "Sequential":
            return {"class_name": "Sequential", "config": self.sequential(data["config"], context, depth)}
        cls = self.resolver.layer_class(class_name, context=f"{self.subject}, {context}")
        config = {key: value for key, value in data["config"].items() if key != "dtype"}
        config = self._kwargs(cls, self.value(config, context, depth + 1), context)
        dtype = self._dtype(data["config"].get("dtype"), context)
        if dtype is not None:
            config["dtype"] = dtype
        return {"class_name": class_name, "config": config}

    def _class_name(self, data: dict, context: str, *, kind: str) -> str:
        module, class_name = data.get("module"), data.get("class_name")
        if not isinstance(class_name, str):
            raise self.fail(context, f"a {kind} without a class name: {shown(data)}.")
        if is_keras_module(module):
            if class_name == "Lambda":
                raise self.fail(
                    context,
                    "the model holds a Lambda layer, whose function Keras stores as Python bytecode; kfunc never "
                    "runs code from a file. Rebuild the model in kfunc (with the function in a kfunc Lambda or a "
                    "registered layer) and load the weights with model.load_weights.",
                )
            return class_name
        name = data.get("registered_name") or class_name
        known = isinstance(name, str) and (name in self.resolver.custom or registry.registered_object(name) is not None)
        if not known:
            raise self.fail(
                context,
                f"the {kind} {shown(class_name)} of module {shown(module)} is not part of Keras, and "
                f"{shown(name)} is neither registered with kfunc.saving.register nor given in custom_objects; "
                "kfunc never imports or runs code named by a file or config.",
            )
        return name

    def _dtype(self, value, context: str):
        """Keras's ``DTypePolicy`` objects become policy names (``"float32"``, ``"mixed_float16"``)."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict) and value.get("class_name") == "DTypePolicy" and is_keras_module(value.get("module")):
            name = (value.get("config") or {}).get("name")
            if isinstance(name, str):
                return name
        raise self.fail(context, f"the dtype {shown(value)} is not a plain dtype policy.")

    def _kwargs(self, cls: type, config: dict, context: str) -> dict:
        accepted = _accepted_keys(cls)
        if accepted is None:
            return config
        kept = {}
        for key, value in config.items():
            if key in accepted:
                kept[key] = value
            elif not _is_disabled(value) and not (key in _ENABLED_BY and _is_disabled(config.get(_ENABLED_BY[key]))):
                raise self.fail(
                    context,
                    f"Keras's {cls.__name__} option {key}={shown(value, 60)} has no kfunc equivalent; kfunc's "
                    f"{cls.__name__} takes {sorted(accepted)}.",
                )
        return kept

    def functional(self, config: dict, context: str, depth: int = 0) -> dict:
        """kfunc's functional spec config from a Keras functional model's config."""
        if not isinstance(config, dict):
            raise self.fail(context, f"a model config must be an object, found {shown(config)}.")
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise self.fail(context, "a functional model config needs a list of layers.")
        functional = {
            entry.get("name") for entry in layers if isinstance(entry, dict) and entry.get("class_name") == "Functional"
        }
        specs = []
        for entry in layers:
            spec = self.layer_spec(entry, context, depth + 1)
            nodes = entry.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise self.fail(context, f"inbound_nodes of {shown(entry.get('name'))} is not a list.")
            spec["inbound_nodes"] = [self._node(node, context, depth) for node in nodes]
            specs.append(spec)

        def structure(refs, level: int = 0):
            # Keras counts the node a nested functional model makes of itself in input/output references.
            if level > MAX_DEPTH:
                raise self.fail(context, "the model's inputs or outputs are nested too deeply.")
            if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
                index = refs[1] - 1 if refs[0] in functional and type(refs[1]) is int else refs[1]
                return {TAG: "tensor", "ref": [refs[0], index, refs[2]]}
            if isinstance(refs, list):
                return [structure(item, level + 1) for item in refs]
            if isinstance(refs, dict):
                return {key: structure(item, level + 1) for key, item in refs.items()}
            raise self.fail(context, f"a model input or output reference {shown(refs)} is not [layer, node, tensor].")

        return {
            "name": config.get("name"),
            "trainable": config.get("trainable", True),
            "layers": specs,
            "inputs": structure(config.get("input_layers")),
            "outputs": structure(config.get("output_layers")),
        }

    def _node(self, node, context: str, depth: int) -> dict:
        if not isinstance(node, dict):
            raise self.fail(context, f"an inbound node is not an object: {shown(node)}.")
        kwargs = node.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise self.fail(context, "an inbound node's kwargs is not an object.")
        # Keras records these defaults on every call; passing them on would pin inference mode.
        kwargs = {k: v for k, v in kwargs.items() if not ((k == "training" and v is False) or (k == "mask" and v is None))}
        args = node.get("args", [])
        args = list(args) if isinstance(args, tuple) else args  # a get_config() not yet through JSON
        return {"args": self.value(args, context, depth + 1), "kwargs": self.value(kwargs, context, depth + 1)}

    def sequential(self, config: dict, context: str, depth: int = 0) -> dict:
        """kfunc's Sequential spec config from a Keras Sequential's config."""
        if not isinstance(config, dict):
            raise self.fail(context, f"a model config must be an object, found {shown(config)}.")
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise self.fail(context, "a Sequential config needs a list of layers.")
        input_layer = None
        if layers and isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer":
            input_layer, layers = self.layer_spec(layers[0], context, depth + 1), layers[1:]
        elif isinstance(config.get("build_input_shape"), list):
            shape = {TAG: "tuple", "items": config["build_input_shape"]}
            input_layer = {"class_name": "InputLayer", "config": {"batch_shape": shape}}
        return {
            "name": config.get("name"),
            "trainable": config.get("trainable", True),
            "input_layer": input_layer,
            "layers": [self.layer_spec(entry, context, depth + 1) for entry in layers],
        }

    # ------------------------------------------------------------------ values
    def value(self, data, context: str, depth: int):
        """A config value in kfunc's encoding (``kfunc.saving.config_values``)."""
        if depth > MAX_DEPTH:
            raise self.fail(context, f"the configuration is nested more than {MAX_DEPTH} levels deep.")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.value(item, context, depth + 1) for item in data]
        if isinstance(data, tuple):  # a get_config() value not yet through JSON
            return {TAG: "tuple", "items": [self.value(item, context, depth + 1) for item in data]}
        if not isinstance(data, dict):
            raise self.fail(context, f"unexpected value {shown(data)}.")
        if TAG in data:
            raise self.fail(context, f"the key {TAG!r} is reserved; the file is not a Keras config.")
        class_name = data.get("class_name")
        if not isinstance(class_name, str) or "config" not in data:
            return {key: self.value(item, context, depth + 1) for key, item in data.items()}
        config = data["config"]
        if class_name in _REFUSED_VALUES:
            raise self.fail(
                context, f"the config holds {_REFUSED_VALUES[class_name]}, which kfunc does not load from files."
            )
        if class_name == "__tuple__":
            items = config.get("value") if isinstance(config, dict) else None
            if not isinstance(items, list):
                raise self.fail(context, "a tuple without a list of values.")
            return {TAG: "tuple", "items": [self.value(item, context, depth + 1) for item in items]}
        if class_name == "__keras_tensor__":
            history = config.get("keras_history") if isinstance(config, dict) else None
            if not (isinstance(history, list) and len(history) == 3):
                raise self.fail(context, f"a tensor reference without keras_history [layer, node, tensor]: {shown(data)}.")
            return {TAG: "tensor", "ref": list(history)}
        return self._object(data, class_name, config, context, depth)

    def _object(self, data: dict, class_name: str, config, context: str, depth: int):
        module = data.get("module")
        if module == "builtins" and class_name == "function":
            # How Keras 3 writes one of its own functions (an activation), by name.
            if isinstance(config, str) and config in activations.ACTIVATIONS:
                return config
            if isinstance(config, str) and (config in self.resolver.custom or registry.registered_object(config) is not None):
                return {TAG: "object", "name": config}
            raise self.fail(context, f"the function {shown(config)} is neither one of kfunc's activations nor registered.")
        if not is_keras_module(module):
            name = self._class_name(data, context, kind="object")
            if class_name == "function":
                return {TAG: "object", "name": name}
            if not isinstance(config, dict):
                raise self.fail(context, f"the config of {shown(name)} is not an object.")
            return {TAG: "object", "name": name, "config": self.value(config, context, depth + 1)}
        if class_name == "function":
            if not isinstance(config, str) or config not in activations.ACTIVATIONS:
                raise self.fail(context, f"the function {shown(config)} is not one of kfunc's activations.")
            return config
        if not isinstance(config, dict):
            raise self.fail(context, f"the config of {shown(class_name)} is not an object.")
        if "initializers" in module.split("."):
            name = snake_case(class_name)
            cls = initializers.INITIALIZERS.get(name)
            if cls is None:
                raise self.fail(context, f"the initializer {shown(class_name)} is not one of kfunc's {sorted(initializers.INITIALIZERS)}.")
            accepted = _accepted_keys(cls) or frozenset()
            kept = {key: value for key, value in config.items() if key in accepted}
            return {TAG: "initializer", "name": name, "config": self.value(kept, context, depth + 1)}
        for tag, table in (("regularizer", regularizers.REGULARIZERS), ("constraint", constraints.CONSTRAINTS)):
            if f"{tag}s" in module.split("."):
                if class_name not in table:
                    raise self.fail(context, f"the {tag} {shown(class_name)} is not one of kfunc's {sorted(table)}.")
                kept = self._kwargs(table[class_name], self.value(config, context, depth + 1), context)
                return {TAG: tag, "name": class_name, "config": kept}
        if "losses" in module.split("."):
            if class_name not in registry.builtin_loss_classes():
                raise self.fail(context, f"the loss {shown(class_name)} is not one of kfunc's {sorted(registry.builtin_loss_classes())}.")
            # Keras's default reduction is what kfunc's losses do; the option itself is not kfunc's.
            config = {k: v for k, v in config.items() if not (k == "reduction" and v == "sum_over_batch_size")}
            cls = registry.builtin_loss_classes()[class_name]
            return {TAG: "loss", "name": class_name, "config": self._kwargs(cls, self.value(config, context, depth + 1), context)}
        if "metrics" in module.split("."):
            metric_classes = registry.builtin_metric_classes()
            if class_name not in metric_classes:
                raise self.fail(context, f"the metric {shown(class_name)} is not one of kfunc's {sorted(metric_classes)}.")
            kept = self._kwargs(metric_classes[class_name], self.value(config, context, depth + 1), context)
            return {TAG: "metric", "name": class_name, "config": kept}
        if "layers" in module.split(".") or "models" in module.split("."):
            return {TAG: "layer", **self.layer_spec(data, context, depth + 1)}
        raise self.fail(context, f"the Keras object {shown(class_name)} of module {shown(module)} has no kfunc equivalent.")
