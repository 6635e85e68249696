"""ConfigObject: the base of small objects described by their arguments (regularizers,
constraints), so that a model file stores them as a name and a config dict and two of them with
the same config compare equal."""

from __future__ import annotations


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
