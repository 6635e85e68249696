"""The registry: the only way a saved model file can name a class or a function.

A model file refers to layer classes, initializers, losses, optimizers and functions by name.
Loading turns a name into an object by looking in, in this order: the ``custom_objects`` given to
``load_model``, the objects registered with ``register``, and kfunc's built-in tables (every layer
class exported by ``kfunc.layers`` under its class name, ``Functional`` and ``Sequential``, the
initializer, loss and optimizer tables). Nothing is ever imported, and no attribute of a module is
looked up, by a name read from a file: a name found in none of these tables is an error
(``UnknownObjectError``), so ``"os.system"`` or ``"builtins.eval"`` names nothing.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import MutableMapping

from kfunc import registry
from kfunc.errors import ModelFileError, RegistrationError, UnknownObjectError
from kfunc.registry import _REGISTERED, register, registered_name, registered_object, unregister  # noqa: F401

# The objects of the ``custom_object_scope`` blocks open in this context, innermost last.
_SCOPES: contextvars.ContextVar[tuple] = contextvars.ContextVar("kfunc_custom_object_scopes", default=())


def register_keras_serializable(package: str = "Custom", name: str | None = None):
    """Keras 3's decorator: register a class or function under ``"package>name"`` (``name``
    defaults to its ``__name__``) in kfunc's one registry, the table ``kfunc.saving.register`` fills."""
    if not isinstance(package, str) or not package or ">" in package:
        raise RegistrationError(
            f"register_keras_serializable: package must be a non-empty string without '>', received {package!r}."
        )

    def decorate(obj):
        if isinstance(obj, type) and not callable(getattr(obj, "get_config", None)):
            raise RegistrationError(
                f"register_keras_serializable: the class {obj.__name__} has no get_config() method; a config "
                "can only rebuild classes that describe themselves."
            )
        key = f"{package}>{name if name is not None else getattr(obj, '__name__', '')}"
        return register(obj, name=key)

    return decorate


class custom_object_scope:  # noqa: N801 (Keras 3's public name)
    """``with custom_object_scope({"MyLayer": MyLayer}):`` makes those names resolvable by every
    ``from_config``, ``model_from_json``, ``deserialize`` and ``load_model`` inside the block (in
    this thread or task only), as ``custom_objects=`` would; nothing is registered for good."""

    def __init__(self, *objects: dict | None):
        merged: dict = {}
        for table in objects:
            merged.update(table or {})
        _check_custom_objects(merged)
        self.custom_objects = merged
        self._token = None

    def __enter__(self):
        self._token = _SCOPES.set(_SCOPES.get() + (self.custom_objects,))
        return self

    def __exit__(self, *exc_info):
        _SCOPES.reset(self._token)
        return False


CustomObjectScope = custom_object_scope


def get_registered_name(obj) -> str:
    """Keras 3's ``get_registered_name``: the name ``obj`` is registered under, else its ``__name__``."""
    return registered_name(obj) or obj.__name__


def get_registered_object(name: str, custom_objects=None):
    """Keras 3's ``get_registered_object``: ``name`` in ``custom_objects``, the open scopes or the registry, else None."""
    found = (scoped_custom_objects() | dict(custom_objects or {})).get(name)
    return found if found is not None else registered_object(name)


def scoped_custom_objects() -> dict:
    """The names of the open ``custom_object_scope`` blocks (inner ones win)."""
    merged: dict = {}
    for table in _SCOPES.get():
        merged.update(table)
    return merged


class _RegisteredObjects(MutableMapping):
    """A live view of kfunc's registry, as Keras's ``get_custom_objects()`` dict: setting a name
    registers the object (with ``register``'s checks), deleting one unregisters it."""

    def __getitem__(self, name):
        return _REGISTERED[name]

    def __setitem__(self, name, obj):
        register(obj, name=name)

    def __delitem__(self, name):
        if name not in _REGISTERED:
            raise KeyError(name)
        unregister(name)

    def __iter__(self):
        return iter(list(_REGISTERED))

    def __len__(self):
        return len(_REGISTERED)

    def __repr__(self):
        return f"get_custom_objects({dict(_REGISTERED)!r})"


def get_custom_objects() -> MutableMapping:
    """Keras 3's global custom-object table: here a live view of kfunc's registry (so
    ``get_custom_objects()["MyLayer"] = MyLayer`` registers it, ``.clear()`` forgets every
    registration). Objects of ``custom_object_scope`` blocks are not in it, as in Keras."""
    return _RegisteredObjects()


def _check_custom_objects(custom_objects: dict) -> None:
    for key, value in custom_objects.items():
        if not isinstance(key, str) or not callable(value):
            raise TypeError(
                f"custom_objects maps names to classes or functions, received {key!r}: {value!r:.60}."
            )


def builtin_layers() -> dict[str, type]:
    """Every layer class of ``kfunc.layers`` by class name, plus ``Functional`` and ``Sequential``
    (the tables those packages add to ``kfunc.registry`` when imported)."""
    return registry.builtins("layer")


def model_classes() -> tuple[type, type]:
    """``(Model, Sequential)``: the classes ``kfunc.models`` registered as ``"Functional"`` and
    ``"Sequential"`` (looked up so that saving never imports the models package above it)."""
    table = builtin_layers()
    return table["Functional"], table["Sequential"]


def builtin_layer_names() -> dict[type, str]:
    return {cls: name for name, cls in builtin_layers().items()}


@functools.cache
def builtin_loss_classes() -> dict[str, type]:
    from kfunc.train import losses

    return {
        cls.__name__: cls
        for cls in vars(losses).values()
        if isinstance(cls, type) and issubclass(cls, losses.Loss) and cls is not losses.Loss
    }


@functools.cache
def builtin_metric_classes() -> dict[str, type]:
    """Every built-in metric class of ``kfunc.metrics`` by class name."""
    from kfunc.train.metrics import METRIC_CLASSES, MeanMetricWrapper

    return {cls.__name__: cls for cls in (*METRIC_CLASSES, MeanMetricWrapper)}


@functools.cache
def builtin_optimizers() -> dict[str, type]:
    from kfunc.train.optimizers import OPTIMIZERS

    return {cls.__name__: cls for cls in OPTIMIZERS.values()}


def shown(text, limit: int = 80) -> str:
    """A file-provided value, quoted and cut short, for messages."""
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Resolver:
    """Name -> object for one load: ``custom_objects``, then registered, then built-in."""

    def __init__(self, custom_objects=None):
        custom_objects = dict(custom_objects or {})
        _check_custom_objects(custom_objects)
        # Given custom_objects win over an enclosing custom_object_scope, as in Keras.
        self.custom = scoped_custom_objects() | custom_objects

    def lookup(self, name, *, context: str):
        """The object registered (or given in ``custom_objects``) under ``name``."""
        if not isinstance(name, str):
            raise ModelFileError(f"{context}: expected a name (a string), the file holds {shown(name)}.")
        found = self.custom.get(name, _REGISTERED.get(name))
        if found is None:
            raise UnknownObjectError(
                f"{context}: the file names {shown(name)}, which is neither built into kfunc nor registered. "
                f"If it is your own class or function, decorate it with @kfunc.saving.register (name "
                f"{shown(name)}) or pass custom_objects={{{shown(name)}: ...}} to load_model or from_config "
                "(or open a custom_object_scope); kfunc never imports or looks up a name found in a file or config."
            )
        return found

    def layer_class(self, name, *, context: str) -> type:
        from kfunc.layers.base import Layer

        if not isinstance(name, str):
            raise ModelFileError(f"{context}: expected a class name, the file holds {shown(name)}.")
        if name in self.custom or name in _REGISTERED:
            found = self.lookup(name, context=context)
        else:
            found = builtin_layers().get(name)
            if found is None:
                self.lookup(name, context=context)  # raises UnknownObjectError with the advice
        if not (isinstance(found, type) and issubclass(found, Layer)):
            raise ModelFileError(f"{context}: {shown(name)} names {found!r:.60}, which is not a layer class.")
        return found
