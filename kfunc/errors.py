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


class PolicyError(KfuncError, ValueError):
    """A dtype policy was asked for by a name, dtype or config that does not describe one."""

class SavedFileError(KfuncError, ValueError):
    """A saved file (weights or whole model) is missing, unreadable, corrupt, or holds something
    kfunc refuses to load (pickled objects, unsafe member names, sizes over the caps)."""

class WeightsFileError(SavedFileError):
    """A weights file is missing, unreadable, corrupt or holds something other than plain arrays."""

class ModelFileError(SavedFileError):
    """A model file (``model.save``) is missing, unreadable, corrupt or describes a model kfunc
    cannot rebuild."""

class UnknownObjectError(ModelFileError):
    """A model file names a class or function that is neither built in, registered with
    ``kfunc.saving.register``, nor given in ``custom_objects``; nothing is ever imported by name."""

class KerasFileError(ModelFileError):
    """A Keras 3 file (``.keras``) describes something kfunc refuses to load (a ``Lambda`` layer,
    a class or function outside Keras that is not registered, an option kfunc lacks) or cannot read."""


class ConfigError(ModelFileError):
    """A config given to ``Model.from_config``, ``model_from_json``, ``layers.deserialize`` or
    ``deserialize_keras_object`` describes something kfunc refuses to build (a class or function
    that is neither built in nor registered, a ``Lambda``'s bytecode, a malformed graph)."""


class SavingError(KfuncError, ValueError):
    """A model cannot be saved: it holds an object that cannot be named in a file (a ``lambda``
    that is not registered, an array among call arguments, a weight path that is not a safe name)."""

class RegistrationError(KfuncError, ValueError):
    """``kfunc.saving.register`` was given a name that is taken or not a non-empty string."""

class BackupError(KfuncError, ValueError):
    """A backup cannot be restored into this model and training configuration."""

class CallbackError(KfuncError, ValueError):
    """A callback was given arguments it cannot use, or cannot do its work with this model."""

class NonFiniteLossError(KfuncError, RuntimeError):
    """``TerminateOnNaN(raise_error=True)``: a training step's loss, gradient or update was not finite."""

class TrainingConfigError(KfuncError, ValueError):
    """compile() was given a loss, metric, optimizer or weights it cannot use."""

class DataError(KfuncError, ValueError):
    """Data passed to fit / evaluate / predict does not match the model."""

class DistributionError(KfuncError, ValueError):
    """A mesh, layout or batch size that the devices cannot take."""


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
