"""The errors kfunc raises.

Every error is one sentence (or two) that names the layer or model (name and class), the input
index, what was expected, what was received, and how to fix it. Each class also derives from the
builtin a Keras user would catch (``ValueError`` or ``TypeError``).
"""


class KfuncError(Exception):
    """Base class of every error raised by kfunc on purpose."""


class GraphError(KfuncError, ValueError):
    """A model's graph is malformed: disconnected, an input listed twice or unused, duplicate names."""


class LayerInputError(KfuncError, ValueError):
    """A layer was called on inputs whose shape, dtype or structure it cannot take."""


class LayerInputTypeError(KfuncError, TypeError):
    """A layer was called on something that is not a tensor or an array."""


class LayerConfigError(KfuncError, ValueError):
    """A layer was constructed with an invalid argument."""


class SymbolicTensorError(KfuncError, TypeError):
    """A symbolic tensor was used where a concrete value is needed."""


class WeightsError(KfuncError, ValueError):
    """Weights given to ``set_weights`` / ``set_variables`` do not fit the model."""


class ExportError(KfuncError, ValueError):
    """An export file (``kfunc.export``) cannot be written, is missing, truncated or corrupt, or was
    called with inputs it cannot take."""


class ArgumentError(KfuncError, ValueError):
    """A function outside any layer (``kfunc.utils``, ``kfunc.config``, ``kfunc.random``, a learning
    rate schedule) was called with an argument it cannot take."""


class SeedError(KfuncError, ValueError):
    """A random draw was given a seed it cannot use, or needs a key where none was given."""


class RefusedError(KfuncError, RuntimeError):
    """Something kfunc refuses on purpose (running code named by a file), with what to do instead."""


def describe_layer(layer) -> str:
    """``"Layer 'dense_1' (Dense)"``: how every message names a layer."""
    return f"Layer '{layer.name}' ({type(layer).__name__})"


def describe_value(value) -> str:
    """A short description of what a user passed: shape and dtype for arrays, type otherwise."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


class NodeAccessError(KfuncError, AttributeError):
    """``layer.output`` (or input, shapes) is ill-defined: the layer was called several times, or never."""
