"""Optimizers by name: the table ``compile("adam")`` reads, and ``get``."""

from __future__ import annotations

import optax

from kfunc import registry
from kfunc.errors import TrainingConfigError
from kfunc.train.optimizers.adafactor import Adafactor
from kfunc.train.optimizers.base import Optimizer
from kfunc.train.optimizers.ftrl import Ftrl
from kfunc.train.optimizers.lamb import Lamb
from kfunc.train.optimizers.loss_scale import LossScaleOptimizer
from kfunc.train.optimizers.muon import Muon
from kfunc.train.optimizers.serialization import deserialize
from kfunc.train.optimizers.standard import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lion, Nadam, RMSprop

# Every built-in optimizer class by Keras's lower-case name (what saving names them by, too).
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": Nadam,
    "adamax": Adamax,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "lion": Lion,
    "lamb": Lamb,
    "adafactor": Adafactor,
    "ftrl": Ftrl,
    "muon": Muon,
    "loss_scale_optimizer": LossScaleOptimizer,
}

registry.add_builtins("optimizer", OPTIMIZERS | {cls.__name__: cls for cls in OPTIMIZERS.values()})


def get(identifier) -> Optimizer | optax.GradientTransformation:
    """A name (``"adam"``), a Keras 3 config dict (``serialize``'s form), an ``Optimizer``, or an
    optax transformation (used as is)."""
    if isinstance(identifier, str):
        cls = OPTIMIZERS.get(identifier.lower())
        if cls is None:
            raise TrainingConfigError(
                f"Unknown optimizer '{identifier}'; expected one of {sorted(OPTIMIZERS)}, a "
                "kfunc.optimizers object or an optax.GradientTransformation."
            )
        if cls is LossScaleOptimizer:
            raise TrainingConfigError(
                f"The optimizer '{identifier}' wraps another optimizer and cannot be made from its name; pass "
                "kfunc.optimizers.LossScaleOptimizer(kfunc.optimizers.Adam()) instead."
            )
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, (Optimizer, optax.GradientTransformation)):
        return identifier
    raise TrainingConfigError(
        f"An optimizer must be a name, a config dict, a kfunc.optimizers object or an optax.GradientTransformation, "
        f"received {type(identifier).__name__} {identifier!r}."
    )


def transformation_of(optimizer) -> optax.GradientTransformation:
    return optimizer.transformation() if isinstance(optimizer, Optimizer) else optimizer


def with_loss_scaling(optimizer, dtype_policy) -> Optimizer | optax.GradientTransformation:
    """What ``compile(auto_scale_loss=True)`` trains with: ``optimizer`` (resolved by ``get``) wrapped
    in a ``LossScaleOptimizer`` when the model computes in ``"mixed_float16"`` (Keras 3's rule); a
    raw optax transformation and an optimizer already scaling the loss are left as they are."""
    optimizer = get(optimizer)
    if (getattr(dtype_policy, "name", None) == "mixed_float16" and isinstance(optimizer, Optimizer)
            and not isinstance(optimizer, LossScaleOptimizer)):
        return LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
    return optimizer
