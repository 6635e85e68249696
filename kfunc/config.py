"""``kfunc.config``: Keras 3's global settings, for code written against ``keras.config``.

- ``floatx()`` / ``set_floatx(dtype)``: the default float dtype. It is the dtype policy of layers
  created without ``dtype=`` while no global policy is set (``set_dtype_policy`` wins), and the
  default dtype of ``kfunc.random`` draws: one setting, kept in ``kfunc.mixed_precision``.
- ``epsilon()`` / ``set_epsilon(value)``: the fuzz factor custom code reads (``1e-7``). kfunc's
  built-in losses and constraints clip with Keras's default ``1e-7`` and do not read it.
- ``image_data_format()`` / ``set_image_data_format(fmt)``: ``"channels_last"`` or
  ``"channels_first"``, the ``data_format`` of convolution, pooling and reshaping layers created
  without one.
- ``backend()``: always ``"jax"``.
- ``enable_interactive_logging()`` / ``disable_interactive_logging()`` /
  ``is_interactive_logging_enabled()``: progress bars and messages to standard output, or to the
  ``logging`` module (``kfunc/interactive_logging.py``).
- ``max_epochs()`` / ``set_max_epochs(n)``, ``max_steps_per_epoch()`` /
  ``set_max_steps_per_epoch(n)``: debugging caps on ``fit``'s epochs and on the steps of each
  epoch, ``evaluate`` and ``predict`` (also from ``KERAS_MAX_EPOCHS`` /
  ``KERAS_MAX_STEPS_PER_EPOCH``; ``kfunc/run_limits.py``).
- ``enable_unsafe_deserialization()``: refused; kfunc never runs code named by a file.
"""

from __future__ import annotations

from kfunc.errors import ArgumentError, RefusedError
from kfunc.interactive_logging import (
    disable_interactive_logging,
    enable_interactive_logging,
    is_interactive_logging_enabled,
)
from kfunc.mixed_precision import dtype_policy, floatx, set_dtype_policy, set_floatx
from kfunc.run_limits import max_epochs, max_steps_per_epoch, set_max_epochs, set_max_steps_per_epoch

_DATA_FORMATS = ("channels_last", "channels_first")
_epsilon = 1e-7
_image_data_format = "channels_last"


def epsilon() -> float:
    """The fuzz factor of numeric expressions (``1e-7`` unless set)."""
    return _epsilon


def set_epsilon(value) -> None:
    """Set the value ``epsilon()`` returns (a positive float)."""
    global _epsilon
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ArgumentError(f"set_epsilon expects a positive float such as 1e-7, received {value!r}.")
    _epsilon = float(value)


def image_data_format() -> str:
    """``"channels_last"`` (images ``(batch, height, width, channels)``) unless set to ``"channels_first"``."""
    return _image_data_format


def set_image_data_format(data_format) -> None:
    """The ``data_format`` of image layers created from now on without one."""
    global _image_data_format
    if data_format not in _DATA_FORMATS:
        raise ArgumentError(
            f"set_image_data_format expects one of {list(_DATA_FORMATS)}, received {data_format!r}."
        )
    _image_data_format = data_format


def backend() -> str:
    """The name of the backend: kfunc compiles to JAX, always."""
    return "jax"


def enable_unsafe_deserialization() -> None:
    """Refused: Keras uses it to let ``load_model`` run ``Lambda`` code stored in a file; kfunc never
    executes code from a file."""
    raise RefusedError(
        "kfunc.config.enable_unsafe_deserialization is refused: kfunc never runs code stored in a model file; "
        "register the function with kfunc.saving.register (or pass custom_objects=) and rebuild the Lambda layer "
        "from it instead."
    )


__all__ = [
    "backend",
    "disable_interactive_logging",
    "dtype_policy",
    "enable_interactive_logging",
    "enable_unsafe_deserialization",
    "epsilon",
    "floatx",
    "image_data_format",
    "is_interactive_logging_enabled",
    "max_epochs",
    "max_steps_per_epoch",
    "set_dtype_policy",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_max_epochs",
    "set_max_steps_per_epoch",
]
