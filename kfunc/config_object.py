"""ConfigObject: the base of small objects described by their arguments (regularizers,
constraints), so that a model file stores them as a name and a config dict and two of them with
the same config compare equal; and how a family of them is looked up (``get``), written
(``serialize``) and read (``deserialize``)."""

from __future__ import annotations

import inspect
from typing import NamedTuple

from kfunc import registry
from kfunc.errors import LayerConfigError


class ConfigObject:
    """Subclasses return their constructor arguments from ``get_config``."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self):
        return hash((type(self), repr(self)))


class Family(NamedTuple):
    """What ``get`` resolves: ``kind`` ("regularizer"), ``base`` (its base class name), ``module``
    ("regularizers"), ``signature`` (what a plain callable must be), ``table`` (built-in classes by
    name) and ``strings`` (short names -> factories)."""

    kind: str
    base: str
    module: str
    signature: str
    table: dict
    strings: dict


def serialize(obj) -> dict | None:
    """``{"class_name": ..., "config": {...}}`` for a config object (Keras's layout)."""
    if obj is None:
        return None
    name = registry.registered_name(type(obj)) or type(obj).__name__
    return {"class_name": name, "config": obj.get_config()}


def deserialize(identifier: dict, family: Family):
    """A built-in or registered class named by ``{"class_name", "config"}``; never imports a name."""
    name, config = identifier.get("class_name"), identifier.get("config", {})
    found = family.table.get(name) if isinstance(name, str) else None
    if found is None and isinstance(name, str):
        found = registry.registered_object(name)
    if found is None or not inspect.isclass(found) or not isinstance(config, dict):
        raise LayerConfigError(
            f"{family.module}.deserialize: {identifier!r:.100} names no {family.kind} class; expected "
            f'{{"class_name": one of {sorted(family.table)} or a name registered with kfunc.saving.register, '
            f'"config": {{...}}}}.'
        )
    return found.from_config(config) if hasattr(found, "from_config") else found(**config)


def get(identifier, family: Family):
    """``None``, a short name, a ``serialize`` dict, a class, an instance or any callable of the
    family's signature; returns a callable or ``None``."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        make = family.strings.get(identifier)
        if make is None:
            raise LayerConfigError(
                f"Unknown {family.kind} '{identifier}'; expected one of {sorted(family.strings)}, "
                f"a {family.base} or a callable {family.signature}."
            )
        return make()
    if isinstance(identifier, dict):
        return deserialize(identifier, family)
    if inspect.isclass(identifier):
        return identifier()
    if callable(identifier):
        return identifier
    raise LayerConfigError(
        f"A {family.kind} must be a name, a dict from {family.module}.serialize, a {family.base} or a "
        f"callable {family.signature}, received {type(identifier).__name__} {identifier!r:.60}."
    )
