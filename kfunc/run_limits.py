"""Debugging caps on how long ``fit`` / ``evaluate`` / ``predict`` run (Keras 3's
``keras.config.set_max_epochs`` and ``set_max_steps_per_epoch``): a script runs quickly end to end
without editing it. Set from code or, as in Keras, by the ``KERAS_MAX_EPOCHS`` and
``KERAS_MAX_STEPS_PER_EPOCH`` environment variables read at import."""

from __future__ import annotations

import os
import warnings

from kfunc.errors import ArgumentError


def _limit(value, name: str):
    """``value`` as a positive int, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ArgumentError(f"{name} expects a positive integer or None (no limit), received {value!r}.")
    return value


def _from_environment(variable: str):
    text = os.environ.get(variable)
    if text is None:
        return None
    try:
        return _limit(int(text), variable)
    except ValueError:
        raise ArgumentError(f"The environment variable {variable} must be a positive integer, received {text!r}.") from None


_max_epochs = _from_environment("KERAS_MAX_EPOCHS")
_max_steps_per_epoch = _from_environment("KERAS_MAX_STEPS_PER_EPOCH")


def set_max_epochs(max_epochs) -> None:
    """Cap the number of epochs of every ``fit`` (None: no cap)."""
    global _max_epochs
    _max_epochs = _limit(max_epochs, "set_max_epochs")


def max_epochs():
    """The cap on ``fit``'s epochs, or None."""
    return _max_epochs


def set_max_steps_per_epoch(max_steps_per_epoch) -> None:
    """Cap the steps of each epoch of ``fit`` and of each ``evaluate`` / ``predict`` (None: no cap)."""
    global _max_steps_per_epoch
    _max_steps_per_epoch = _limit(max_steps_per_epoch, "set_max_steps_per_epoch")


def max_steps_per_epoch():
    """The cap on steps per epoch, or None."""
    return _max_steps_per_epoch


def capped_epochs(epochs):
    """``epochs`` under the cap, with Keras's warning when the cap applies."""
    if _max_epochs is not None and _max_epochs < epochs:
        warnings.warn(f"Limiting epochs to {_max_epochs}", stacklevel=3)
        return _max_epochs
    return epochs


def capped_steps(steps):
    """``steps`` (None: the whole data) under the cap, with Keras's warning when the cap applies."""
    if _max_steps_per_epoch is not None and (steps is None or _max_steps_per_epoch < steps):
        warnings.warn(f"Limiting steps_per_epoch to {_max_steps_per_epoch}", stacklevel=3)
        return _max_steps_per_epoch
    return steps
