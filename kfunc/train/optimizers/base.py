"""The ``Optimizer`` base class: Keras's common arguments, built as one optax transformation.

``compile(optimizer=...)`` takes a string (``'rmsprop'``), a ``kfunc.optimizers`` object
(``Adam(learning_rate=1e-4, clipnorm=1.0)``) or any ``optax.GradientTransformation`` as is.
The learning rate is an ``optax.inject_hyperparams`` hyperparameter kept in the optimizer
state, so callbacks can change it between steps without recompiling; it may also be a schedule
(a function of the step count, e.g. ``kfunc.optimizers.schedules.ExponentialDecay``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from kfunc.errors import TrainingConfigError

# Keras 3 optimizer arguments kfunc has no counterpart for, with the values that make them no-ops:
# a Keras config holding these values reads fine, any other value is refused (see ``from_config``).
KERAS_ONLY_DEFAULTS = {
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class Optimizer:
    """Base: a subclass gives ``scale(self) -> optax transformation`` (the direction, before the
    learning rate), or, when its rule uses the learning rate inside (Ftrl, Adafactor) or reads the
    weights after decay (Lamb), overrides ``rate_transformation(learning_rate)``.

    Common Keras arguments: ``clipnorm`` (per weight), ``clipvalue``, ``global_clipnorm``,
    ``weight_decay`` (decoupled: ``w -= learning_rate * weight_decay * w``).
    """

    default_learning_rate = 0.001

    def __init__(self, learning_rate=None, *, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, name=None):
        self._trainer = None
        learning_rate = self.default_learning_rate if learning_rate is None else learning_rate
        if not callable(learning_rate) and not (isinstance(learning_rate, (int, float)) and learning_rate >= 0):
            raise TrainingConfigError(
                f"{type(self).__name__}: learning_rate must be a non-negative number or an optax schedule, "
                f"received {learning_rate!r}."
            )
        self._learning_rate = learning_rate
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.name = name or type(self).__name__.lower()

    def _attach(self, trainer) -> None:
        """Once compiled, ``learning_rate`` reads and writes the live value in the optimizer state."""
        self._trainer = trainer

    def _live_hyperparams(self):
        trainer = self._trainer
        return None if trainer is None or trainer.opt_state is None else trainer.hyperparams()

    @property
    def learning_rate(self):
        """The current learning rate (after training started: the value in the optimizer state)."""
        live = self._live_hyperparams()
        return float(live["learning_rate"]) if live is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(self._learning_rate):
            raise TrainingConfigError(
                f"{type(self).__name__}: the learning rate follows a schedule and cannot be set directly."
            )
        live = self._live_hyperparams()
        if live is None:
            self._learning_rate = float(value)
            return
        # A new optimizer state, never an edit of the old one: a failed fit's rollback snapshot
        # holds the old state, and with it the old learning rate.
        old = jnp.asarray(live["learning_rate"])
        trainer = self._trainer
        new = jnp.asarray(value, old.dtype)
        if old.committed:  # placed by a distribution: keep the placement, or the step recompiles
            new = jax.device_put(new, old.sharding)
        trainer.opt_state = optax.tree_utils.tree_set(trainer.opt_state, learning_rate=new)

    @property
    def iterations(self) -> int:
        return 0 if self._trainer is None else int(self._trainer.step)

    def scale(self) -> optax.GradientTransformation:
        raise NotImplementedError(
            f"{type(self).__name__} must define scale() (its direction) or rate_transformation(learning_rate)."
        )

    def rate_transformation(self, learning_rate) -> optax.GradientTransformation:
        """Everything after clipping, for one value of the learning rate (a float32 scalar, traced).

        Default: the direction (``scale()``), decoupled weight decay, then the rate. This runs
        inside ``optax.inject_hyperparams``, so the rate stays a value of the optimizer state."""
        steps = [self.scale()]
        if self.weight_decay:
            steps.append(optax.add_decayed_weights(self.weight_decay))
        steps.append(optax.scale_by_learning_rate(learning_rate))
        return optax.chain(*steps)

    def transformation(self) -> optax.GradientTransformation:
        """Clipping, then ``rate_transformation`` with the learning rate as an injected hyperparameter."""
        clipping = []
        if self.clipvalue is not None:
            clipping.append(optax.clip(self.clipvalue))
        if self.clipnorm is not None:
            clipping.append(_clip_each_by_norm(self.clipnorm))
        if self.global_clipnorm is not None:
            clipping.append(optax.clip_by_global_norm(self.global_clipnorm))

        def with_rate(learning_rate):
            return self.rate_transformation(learning_rate)

        return optax.chain(*clipping, optax.inject_hyperparams(with_rate)(learning_rate=self._learning_rate))

    def get_config(self) -> dict:
        """The constructor arguments. A schedule object (with ``get_config``) appears as Keras 3's
        serialized dict of it; a plain function of the step (an optax schedule) as itself."""
        config = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        if callable(self._learning_rate):
            from kfunc.train.optimizers.schedule_config import serialize_schedule

            schedule = self._learning_rate
            described = callable(getattr(schedule, "get_config", None))
            return config | {"learning_rate": serialize_schedule(schedule, type(self).__name__) if described else schedule}
        return config | {"learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """An optimizer from ``get_config()`` or from a Keras 3 optimizer config: the learning rate
        may be a schedule or its serialized dict; Keras-only arguments are accepted at their no-op
        defaults (``use_ema=False`` ...) and refused otherwise."""
        from kfunc.train.optimizers.schedule_config import deserialize_schedule

        config = dict(config)
        for argument, default in KERAS_ONLY_DEFAULTS.items():
            if argument in config and config.pop(argument) != default:
                raise TrainingConfigError(
                    f"{cls.__name__}: kfunc does not support the Keras argument {argument}; the config holds a "
                    f"value other than its default {default!r}; remove it from the config."
                )
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize_schedule(config["learning_rate"], custom_objects, cls.__name__)
        return cls(**config)


def _clip_each_by_norm(max_norm: float) -> optax.GradientTransformation:
    """Keras's ``clipnorm``: each gradient tensor clipped to ``max_norm`` separately."""

    def update(updates, state, params=None):
        def clip(g):
            norm = jnp.sqrt(jnp.sum(jnp.square(g)))
            return jnp.where(norm > max_norm, g * (max_norm / jnp.maximum(norm, 1e-12)), g)

        return jax.tree_util.tree_map(clip, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def decayed(params, learning_rate, weight_decay):
    """Keras's decoupled weight decay, applied before the update rule reads the weights:
    ``w - w * weight_decay * learning_rate`` (``params`` unchanged without decay)."""
    if not weight_decay:
        return params
    return jax.tree_util.tree_map(lambda w: w - w * (weight_decay * learning_rate).astype(w.dtype), params)


def check_non_negative(owner: str, **values) -> None:
    """Refuse a negative value for each named argument (Keras's checks, kfunc's message)."""
    for argument, value in values.items():
        if value < 0:
            raise TrainingConfigError(
                f"{owner}: {argument} must be zero or positive, received {value!r}; pass a value >= 0."
            )


def leafwise(fn, outputs: int, params, *trees) -> tuple:
    """``fn(weight, *values)`` for each weight, where ``values`` are that weight's entries of
    ``trees`` (each shaped like ``params``, or with one subtree per weight); ``fn`` returns a tuple
    of ``outputs`` values, gathered into ``outputs`` trees shaped like ``params``."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    columns = [treedef.flatten_up_to(tree) for tree in trees]
    results = [fn(w, *values) for w, *values in zip(leaves, *columns, strict=True)]
    if not results:
        return tuple(treedef.unflatten([]) for _ in range(outputs))
    return tuple(treedef.unflatten(list(column)) for column in zip(*results, strict=True))


def require_params(params, owner: str) -> None:
    if params is None:
        raise TrainingConfigError(
            f"{owner}: the update rule reads the weights; call update(grads, state, params) with the weights."
        )
