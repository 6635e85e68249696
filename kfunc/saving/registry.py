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

from kfunc import registry
from kfunc.errors import ModelFileError, UnknownObjectError
from kfunc.registry import _REGISTERED, register, registered_name, registered_object, unregister  # noqa: F401


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
