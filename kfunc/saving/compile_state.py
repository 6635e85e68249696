"""What ``compile()`` was given and the optimizer's progress, in a model file.

Format of the ``"compile"`` entry of ``config.json`` (``null`` when the model was not compiled,
``include_optimizer=False``, or the optimizer cannot be named in a file)::

    {"optimizer": {"class_name": "Adam", "config": {...Optimizer.get_config()...}},
     "losses": [<per output: null, a loss name, or an encoded loss object>],
     "loss_weights": [<per output: float>],
     "metrics": {<output name>: [<metric name or encoded function>, ...]},
     "weighted_metrics": {<output name>: [...]}  (absent in older files: none),
     "steps_per_execution": "auto" | int,
     "state": null | {"leaves": <number of optimizer state arrays>, "step": int}}

with the arrays ``optimizer/<i>.npy`` (the leaves of the optax state in ``tree_flatten`` order,
learning rate included) and ``optimizer/dropout_key.npy`` when ``state`` is present. Only
objects serializable by name are saved: a raw ``optax.GradientTransformation``, a learning-rate
schedule that is not registered, or a loss that cannot be named leaves ``compile`` out with a
warning; a metric object that cannot be named is dropped with a warning.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.saving.bfloat16 import restored, storable
from kfunc.saving import registry
from kfunc.saving.config_values import Decoder, Encoder, construct
from kfunc.saving.errors import ModelFileError, SavedFileError, SavingError
from kfunc.saving.registry import shown


def _loss_entry(loss, encoder: Encoder, where: str):
    from kfunc.train.losses import LOSSES

    if loss is None:
        return None
    name = next((n for n, known in LOSSES.items() if known is loss), None)
    return name if name is not None else encoder.value(loss, where)


def _nameable_schedule(schedule) -> bool:
    """A file can name ``schedule``: a registered function, or an instance (with ``get_config``) of a
    built-in schedule class or of a registered class."""
    from kfunc.optimizers.schedules import BUILTIN_SCHEDULES

    if registry.registered_name(schedule) is not None:
        return True
    cls = type(schedule)
    builtin = BUILTIN_SCHEDULES.get(cls.__name__) is cls
    return callable(getattr(schedule, "get_config", None)) and (builtin or registry.registered_name(cls) is not None)


def compile_section(model, encoder: Encoder) -> tuple[dict | None, list[np.ndarray]]:
    """The ``compile`` entry and the optimizer arrays (leaves, then the dropout key)."""
    from kfunc.train.optimizers import Optimizer

    trainer = model._trainer
    if trainer is None:
        return None, []
    config = trainer.config
    optimizer = config.optimizer
    try:
        if not isinstance(optimizer, Optimizer) or registry.builtin_optimizers().get(type(optimizer).__name__) is not type(optimizer):
            raise SavingError(
                f"the optimizer {type(optimizer).__name__} is not a built-in kfunc optimizer (an optax "
                "transformation cannot be named in a file)"
            )
        # A LossScaleOptimizer's learning rate is its wrapped optimizer's, which its config holds
        # in Keras 3's serialized form (a schedule in it is found again by its registered name).
        rate_holder = getattr(optimizer, "inner_optimizer", optimizer)
        if registry.builtin_optimizers().get(type(rate_holder).__name__) is not type(rate_holder):
            raise SavingError(f"the wrapped optimizer {type(rate_holder).__name__} is not a built-in kfunc optimizer")
        if callable(rate_holder._learning_rate) and not _nameable_schedule(rate_holder._learning_rate):
            raise SavingError(
                "the learning-rate schedule is neither a kfunc.optimizers.schedules class nor registered with "
                "kfunc.saving.register"
            )
        optimizer_config = optimizer.get_config()
        if callable(optimizer._learning_rate):
            optimizer_config["learning_rate"] = optimizer._learning_rate
        section = {
            "optimizer": {
                "class_name": type(optimizer).__name__,
                "config": encoder.value(optimizer_config, "The optimizer"),
            },
            "losses": [_loss_entry(o.loss, encoder, f"The loss of output '{o.name}'") for o in config.outputs],
            "loss_weights": [o.loss_weight for o in config.outputs],
            "metrics": {o.name: _metric_entries(o, o.metric_ids, encoder) for o in config.outputs},
            "weighted_metrics": {o.name: _metric_entries(o, o.weighted_metric_ids, encoder) for o in config.outputs},
            "steps_per_execution": config.steps_per_execution,
            "state": None,
        }
    except SavingError as error:
        warnings.warn(
            f"Model '{model.name}' is saved without its compile() settings and optimizer state: {error}. "
            "Compile it again after loading.",
            stacklevel=3,
        )
        return None, []
    if trainer.opt_state is None:
        return section, []
    leaves = [storable(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(trainer.opt_state)]
    section["state"] = {"leaves": len(leaves), "step": int(trainer.step)}
    return section, leaves + [np.asarray(trainer.dropout_key)]


def _metric_entries(output, metric_ids, encoder: Encoder) -> list:
    entries = []
    for metric in metric_ids:
        if isinstance(metric, str):
            entries.append(metric)
            continue
        try:
            entries.append(encoder.value(metric, f"A metric of output '{output.name}'"))
        except SavingError as error:
            warnings.warn(f"The metric {metric!r:.60} is not saved: {error}", stacklevel=4)
    return entries


def restore_compile(model, section, decoder: Decoder, read_array) -> None:
    """``model.compile(...)`` as saved, then the optimizer state and step count, if saved.

    ``read_array(name)`` reads an array member of the model file."""
    context = "The compile() settings (load with compile=False to skip them)"
    if not isinstance(section, dict):
        raise ModelFileError(f"{context}: expected a JSON object.")
    optimizer_spec = section.get("optimizer")
    if not isinstance(optimizer_spec, dict):
        raise ModelFileError(f"{context}: no optimizer entry.")
    optimizer_class = registry.builtin_optimizers().get(optimizer_spec.get("class_name"))
    if optimizer_class is None:
        raise ModelFileError(f"{context}: {shown(optimizer_spec.get('class_name'))} is not a built-in optimizer.")
    optimizer_config = decoder.value(optimizer_spec.get("config", {}), context)
    optimizer = construct(optimizer_class, optimizer_config, context)
    losses = decoder.value(section.get("losses"), f"{context}, losses")
    weights = decoder.value(section.get("loss_weights"), context)
    metrics = decoder.value(section.get("metrics"), f"{context}, metrics")
    weighted_metrics = decoder.value(section.get("weighted_metrics"), f"{context}, weighted_metrics")
    steps = section.get("steps_per_execution", "auto")
    try:
        # The optimizer exactly as saved: a LossScaleOptimizer is in the file when one trained.
        model.compile(optimizer=optimizer, loss=losses, loss_weights=weights, metrics=metrics,
                      weighted_metrics=weighted_metrics, steps_per_execution=steps, auto_scale_loss=False)
    except SavedFileError:
        raise
    except Exception as error:
        raise ModelFileError(f"{context}: compile() refuses them ({type(error).__name__}: {str(error)[:300]}).") from error
    state = section.get("state")
    if state is not None:
        _restore_state(model, state, read_array, context)


def _restore_state(model, state, read_array, context: str) -> None:
    trainer = model._trainer
    valid = isinstance(state, dict) and type(state.get("leaves")) is int and type(state.get("step")) is int
    if not valid or not 0 <= state["step"] < 2**31 or state["leaves"] < 0:
        raise ModelFileError(f"{context}: the optimizer state entry is malformed.")
    trainer._prepare_optimizer(model.get_variables().params)
    like, treedef = jax.tree_util.tree_flatten(trainer.opt_state)
    if len(like) != state["leaves"]:
        raise ModelFileError(
            f"{context}: the file holds {state['leaves']} optimizer state arrays, the optimizer needs {len(like)}."
        )
    leaves = []
    for index, expected in enumerate(like):
        stored = restored(read_array(f"optimizer/{index}.npy"), np.dtype(expected.dtype).name)
        if stored.shape != expected.shape or stored.dtype != expected.dtype:
            raise ModelFileError(
                f"{context}: optimizer state array {index} is {stored.dtype}{list(stored.shape)}, the optimizer "
                f"needs {expected.dtype}{list(expected.shape)}."
            )
        leaves.append(jnp.asarray(stored))
    key = read_array("optimizer/dropout_key.npy")
    expected_key = np.asarray(trainer.dropout_key)
    if key.shape != expected_key.shape or key.dtype != expected_key.dtype:
        raise ModelFileError(f"{context}: the dropout key is {key.dtype}{list(key.shape)}, expected {expected_key.dtype}{list(expected_key.shape)}.")
    trainer.opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
    trainer.step = jnp.asarray(state["step"], jnp.int32)
    trainer.dropout_key = jnp.asarray(key)


def optimizer_members(section: dict | None) -> list[str]:
    """The array members the ``compile`` entry says the file holds."""
    state = section.get("state") if isinstance(section, dict) else None
    if not isinstance(state, dict) or type(state.get("leaves")) is not int or not 0 <= state["leaves"] <= 1_000_000:
        return []
    return [f"optimizer/{i}.npy" for i in range(state["leaves"])] + ["optimizer/dropout_key.npy"]
