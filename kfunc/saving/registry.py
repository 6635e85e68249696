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

import functools

from kfunc.saving.errors import ModelFileError, RegistrationError, UnknownObjectError

_REGISTERED: dict[str, object] = {}
_NAMES: dict[int, str] = {}  # id(object) -> its registered name


def register(target=None, *, name: str | None = None):
    """Register a layer class, function (activation, loss, ``Lambda`` function), initializer or
    loss class so model files can name it: ``@register``, ``@register("pkg>MyLayer")`` or
    ``@register(name="pkg>my_loss")``. The default name is the object's ``__name__``; a ``lambda``
    needs an explicit name (``register("pkg>square")(lambda x: x * x)``). Returns the object.
    """
    if isinstance(target, str):
        if name is not None:
            raise RegistrationError("register: give the name once, positionally or as name=.")
        target, name = None, target

    def decorate(obj):
        if not callable(obj):
            raise RegistrationError(
                f"register expects a class or a function, received {type(obj).__name__} {obj!r:.60}."
            )
        key = name if name is not None else getattr(obj, "__name__", None)
        if not isinstance(key, str) or not key or "<" in key:
            raise RegistrationError(
                f"register: {obj!r:.60} has no usable name ({key!r}); give one, e.g. "
                "kfunc.saving.register('my_package>square')(function)."
            )
        if key in builtin_layers():
            raise RegistrationError(
                f"register: '{key}' is the name of a built-in kfunc layer; register yours under another "
                f"name, e.g. 'my_package>{key}'."
            )
        existing = _REGISTERED.get(key)
        if existing is not None and existing is not obj and not _same_definition(existing, obj):
            raise RegistrationError(
                f"register: the name '{key}' is already registered to {existing!r:.60}; choose another name."
            )
        if existing is not None:
            _NAMES.pop(id(existing), None)
        _REGISTERED[key] = obj
        _NAMES[id(obj)] = key
        return obj

    return decorate if target is None else decorate(target)


def _same_definition(a, b) -> bool:
    """A class or function defined again (a re-run notebook cell or reloaded module)."""
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    ) and getattr(a, "__qualname__", None) is not None


def registered_name(obj) -> str | None:
    """The name ``obj`` was registered under, or ``None``."""
    key = _NAMES.get(id(obj))
    return key if key is not None and _REGISTERED.get(key) is obj else None


def registered_object(name: str):
    """The object registered under ``name``, or ``None``."""
    return _REGISTERED.get(name)


def unregister(name: str) -> None:
    """Forget a registered name (tests use it)."""
    obj = _REGISTERED.pop(name, None)
    if obj is not None:
        _NAMES.pop(id(obj), None)


@functools.cache
def builtin_layers() -> dict[str, type]:
    """Every layer class of ``kfunc.layers`` by class name, plus ``Functional`` and ``Sequential``."""
    from kfunc import layers
    from kfunc.models import Model, Sequential

    table = {
        cls.__name__: cls
        for cls in vars(layers).values()
        if isinstance(cls, type) and issubclass(cls, layers.Layer) and cls is not layers.Layer
    }
    table["Functional"] = Model
    table["Sequential"] = Sequential
    return table


@functools.cache
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
        for key, value in custom_objects.items():
            if not isinstance(key, str) or not callable(value):
                raise TypeError(
                    f"custom_objects maps names to classes or functions, received {key!r}: {value!r:.60}."
                )
        self.custom = custom_objects

    def lookup(self, name, *, context: str):
        """The object registered (or given in ``custom_objects``) under ``name``."""
        if not isinstance(name, str):
            raise ModelFileError(f"{context}: expected a name (a string), the file holds {shown(name)}.")
        found = self.custom.get(name, _REGISTERED.get(name))
        if found is None:
            raise UnknownObjectError(
                f"{context}: the file names {shown(name)}, which is neither built into kfunc nor registered. "
                f"If it is your own class or function, decorate it with @kfunc.saving.register (name "
                f"{shown(name)}) or pass custom_objects={{{shown(name)}: ...}} to load_model; kfunc never "
                "imports or looks up a name found in a file."
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
