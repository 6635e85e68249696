"""Refusing Keras 3's ``train_step`` / ``test_step`` / ``predict_step`` overrides, clearly.

Keras users customise ``fit`` by overriding ``train_step(self, data)``: it runs the model, computes
the loss, applies gradients with ``self.optimizer`` and updates metric objects, all in place. kfunc's
``fit`` compiles one pure JAX step, ``(TrainState, batch) -> (TrainState, logs)``, from the model's
losses and metrics; a step method that mutates the model, its optimizer and its metrics has no such
pure form, and running it eagerly would silently train something else than ``fit`` describes. So
``compile`` / ``fit`` / ``evaluate`` / ``predict`` refuse a model whose class defines the step they
would run, and say what to write instead.
"""

from __future__ import annotations

import functools
import inspect

from kfunc.errors import TrainingConfigError

_ALTERNATIVES = {
    "train_step": (
        "put the loss in compile(loss=...) (a kfunc.losses.Loss subclass for a custom one), in self.add_loss(...) "
        "inside call, and metrics in compile(metrics=[...]) (kfunc.metrics.Metric subclasses), then remove "
        "train_step; or train with kfunc.lower(model) and a hand-written optax loop over its pure apply"
    ),
    "test_step": (
        "compute what it reports with compile(loss=..., metrics=[...]) (kfunc.metrics.Metric subclasses for "
        "custom ones) and remove test_step; or evaluate with kfunc.lower(model)'s pure apply in your own loop"
    ),
    "predict_step": (
        "do the post-processing in call (or after predict, on its arrays) and remove predict_step; or run "
        "kfunc.lower(model)'s pure apply in your own loop"
    ),
}


def defines_step(model, step: str) -> type | None:
    """The class (in the model's MRO) that defines ``step``, or None: kfunc's models define none."""
    for klass in type(model).__mro__:
        if step in klass.__dict__:
            return klass
    return None


def refuse_custom_step(model, step: str, method: str) -> None:
    """Raise ``TrainingConfigError`` if ``model``'s class defines ``step`` (which ``method`` would run)."""
    klass = defines_step(model, step)
    if klass is None:
        return
    raise TrainingConfigError(
        f"Model '{model.name}' ({type(model).__name__}) overrides {step}() in class {klass.__name__}, which "
        f"kfunc's {method}() cannot run: kfunc compiles one pure JAX step from the model's losses and metrics, "
        f"and a {step} that updates the model, optimizer or metrics in place has no pure form; instead, "
        f"{_ALTERNATIVES[step]}."
    )


def refusing_custom_steps(method, steps):
    """``method`` (a ``TrainingAPI`` method, its signature kept) that first refuses the step
    overrides ``steps(arguments)`` names, ``arguments`` the call's bound arguments by name."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments
        for step in steps(arguments):
            refuse_custom_step(self, step, method.__name__)
        return method(self, *args, **kwargs)

    return checked


def fit_steps(arguments: dict) -> tuple[str, ...]:
    """``fit`` runs ``train_step``, and ``test_step`` when it validates."""
    validates = arguments.get("validation_data") is not None or bool(arguments.get("validation_split"))
    return ("train_step", "test_step") if validates else ("train_step",)
