"""Keras 3's config API: ``serialize_keras_object`` / ``deserialize_keras_object``,
``Model.from_config``, ``to_json`` / ``model_from_json``, ``layers.serialize`` / ``deserialize``.

Configs are written in Keras 3's format (``kfunc.saving.keras_format``) and read the way a
Keras file is read: ``KerasConfigTranslator`` turns names into kfunc's own spec, resolving each
class or function only through kfunc's tables, the registry, ``custom_objects`` and the open
``custom_object_scope`` blocks, then ``ModelBuilder`` builds it. So a config made by Keras 3
builds in kfunc too, and a config can never name code outside those tables: ``"os.system"``,
a module path or a ``Lambda``'s bytecode is refused with ``ConfigError`` (or
``UnknownObjectError`` for a name nothing registers), never imported or run.
"""

from __future__ import annotations

import json

from kfunc import activations
from kfunc.registry import add_builtins
from kfunc.saving import registry
from kfunc.saving.errors import ConfigError, ModelFileError, UnknownObjectError
from kfunc.saving.keras_config import KerasConfigTranslator
from kfunc.saving.keras_format import layer_config, value_config
from kfunc.saving.model_config import ModelBuilder
from kfunc.saving.registry import shown

MAX_JSON_BYTES = 64 << 20


class _Reader:
    """The translator and builder of one read, sharing one resolver."""

    def __init__(self, custom_objects, subject: str):
        self.subject = subject
        resolver = registry.Resolver(custom_objects)
        self.translator = KerasConfigTranslator(resolver, subject=subject, error=ConfigError)
        self.builder = ModelBuilder(resolver)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        # The builder's messages are ModelFileError's (it also reads model files); what is wrong
        # with a config is a ConfigError, named the same way.
        if kind is not None and issubclass(kind, ModelFileError) and not issubclass(kind, (ConfigError, UnknownObjectError)):
            raise ConfigError(str(error)) from None
        return False


def serialize_keras_object(obj):
    """The Keras 3 config of ``obj`` (a layer, model, initializer, regularizer, constraint, loss,
    registered class instance or function, or a plain value), as a JSON-able dict."""
    from kfunc.layers.base import Layer

    if isinstance(obj, Layer):
        return layer_config(obj)
    return value_config(obj)


def _with_module(config):
    """``{"class_name": "Dense", "config": {...}}`` without a module (older Keras configs) names a
    built-in layer when its class name is one."""
    if (isinstance(config, dict) and "module" not in config and config.get("class_name") in registry.builtin_layers()
            and isinstance(config.get("config"), dict)):
        return {"module": "keras.layers", **config}
    return config


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, **kwargs):
    """The object a Keras 3 config describes, built only from kfunc's tables, the registry and
    ``custom_objects``. ``safe_mode`` is accepted for Keras compatibility; kfunc is always safe
    (a config holding code, such as a ``lambda``, is refused either way)."""
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        found = registry.Resolver(custom_objects).custom.get(config, registry.registered_object(config))
        return config if found is None else found
    if isinstance(config, (list, tuple)):
        return type(config)(deserialize_keras_object(item, custom_objects) for item in config)
    if not isinstance(config, dict):
        raise ConfigError(f"deserialize_keras_object expects a config dict, received {type(config).__name__} {config!r:.60}.")
    config = _with_module(config)
    with _Reader(custom_objects, "The config given to deserialize_keras_object") as reader:
        value = reader.translator.value(config, "config", 0)
        built = reader.builder.decoder.value(value, reader.subject)
    if config.get("class_name") == "function" and isinstance(built, str):
        return activations.get(built)
    return built


def deserialize_layer(config, custom_objects=None):
    """``layers.deserialize``: the layer (or model) a Keras 3 layer config describes."""
    from kfunc.layers.base import Layer

    with _Reader(custom_objects, "The config given to layers.deserialize") as reader:
        spec = reader.translator.layer_spec(_with_module(config), "config")
        layer = reader.builder.layer(spec, reader.subject)
    if not isinstance(layer, Layer):
        raise ConfigError(f"layers.deserialize: the config describes {type(layer).__name__}, not a layer.")
    return layer


def model_from_config(cls: type, config, custom_objects=None):
    """``cls.from_config(config)`` for ``Model`` and ``Sequential`` (and their subclasses): the
    model the graph config describes, with new, freshly initialised weights."""
    _, Sequential = registry.model_classes()
    subject = f"The config given to {cls.__name__}.from_config"
    if not isinstance(config, dict):
        raise ConfigError(f"{subject} must be a dict (model.get_config()), received {type(config).__name__}.")
    with _Reader(custom_objects, subject) as reader:
        if issubclass(cls, Sequential):
            spec = reader.translator.sequential(config, "the Sequential config")
            return reader.builder.sequential(cls, spec, subject, 0)
        if "input_layers" not in config:
            raise ConfigError(
                f"{subject} has no input_layers, so it does not describe a functional model (its keys are "
                f"{sorted(config)[:8]}); a Sequential's config goes to Sequential.from_config."
            )
        spec = reader.translator.functional(config, "the model config")
        return reader.builder.functional(cls, spec, subject, 0)


def model_to_json(model, **kwargs) -> str:
    """``model.to_json()``: the model's Keras 3 config (class, module and config) as JSON text;
    ``kwargs`` go to ``json.dumps``."""
    return json.dumps(layer_config(model), **kwargs)


def model_from_json(json_string, custom_objects=None):
    """The model a ``to_json`` text describes (Keras 3's ``models.model_from_json``)."""
    if not isinstance(json_string, (str, bytes)):
        raise ConfigError(f"model_from_json expects JSON text, received {type(json_string).__name__}.")
    if len(json_string) > MAX_JSON_BYTES:
        raise ConfigError(f"model_from_json: the text is {len(json_string):,} bytes, over the {MAX_JSON_BYTES:,} kfunc reads.")
    try:
        config = json.loads(json_string)
    except ValueError as error:
        raise ConfigError(f"model_from_json: the text is not valid JSON ({error}).") from None
    Model, _ = registry.model_classes()
    model = deserialize_layer(config, custom_objects)
    if not isinstance(model, Model):
        raise ConfigError(
            f"model_from_json: the JSON describes a {type(model).__name__} layer ({shown(model.name)}), not a model."
        )
    return model


add_builtins("config_api", {"serialize": serialize_keras_object, "deserialize": deserialize_layer})
