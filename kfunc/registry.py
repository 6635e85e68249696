"""The registry: the one name table that saved configs may resolve through.

Two kinds of entries live here, at the bottom of the package (this module imports only
``kfunc.errors``):

- objects registered by users with ``register`` (``@kfunc.saving.register``, Keras's
  ``register_keras_serializable``): custom layers, functions, losses, initializers;
- kfunc's built-in tables, filled by the modules that define them when they are imported
  (``add_builtins("layer", {...})`` in ``kfunc.layers``, ``"model"`` in ``kfunc.models``, and so
  on), so that the code that reads a file can find ``"Dense"`` or ``"Functional"`` without
  importing anything by a name read from the file.

A name found in none of these tables names nothing: ``"os.system"`` resolves to no object.
"""

from __future__ import annotations

from kfunc.errors import RegistrationError

_BUILTINS: dict[str, list] = {}  # kind -> tables (dicts, or functions returning one when asked)
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
        if key in builtins("layer"):
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




def add_builtins(kind: str, table) -> None:
    """Add kfunc's own ``name -> object`` entries of a kind (``"layer"``, ``"loss"`` ...): a dict,
    or a function returning one, called at each look-up (so a package can list what it exports
    when asked, whatever is added to it later)."""
    _BUILTINS.setdefault(kind, []).append(table)


def builtins(kind: str) -> dict:
    """kfunc's own entries of ``kind``, by name (a fresh dict)."""
    found: dict = {}
    for table in _BUILTINS.get(kind, []):
        found.update(table() if callable(table) else table)
    return found
