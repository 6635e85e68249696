"""What a layer's own ``call`` and ``build`` accept, read from their signatures (cached per class):
which keyword arguments reach ``call``, and which ``build`` parameters take the shapes of which
``call`` arguments (Keras 3's ``<argument>_shape`` convention)."""

from __future__ import annotations

import inspect

_PARAMETER_CACHE: dict[type, tuple[frozenset, bool]] = {}


def call_parameters(cls: type) -> tuple[frozenset, bool]:
    """Names ``cls.call`` accepts as keywords, and whether it takes ``**kwargs``."""
    cached = _PARAMETER_CACHE.get(cls)
    if cached is None:
        parameters = list(inspect.signature(cls.call).parameters.values())[2:]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        names = frozenset(
            p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        cached = _PARAMETER_CACHE[cls] = (names, takes_any)
    return cached


def build_shape_parameters(cls: type) -> tuple[str, ...]:
    """``build``'s parameters after ``input_shape`` whose names end in ``_shape``."""
    parameters = list(inspect.signature(cls.build).parameters.values())[2:]
    return tuple(p.name for p in parameters if p.name.endswith("_shape"))


def call_argument_names(cls: type) -> list[str]:
    """``call``'s parameter names, ``self`` left out, in order."""
    return list(inspect.signature(cls.call).parameters)[1:]


def accepted_parameters(function) -> frozenset | None:
    """The keyword names ``function`` accepts, or None when it takes ``**kwargs``."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
