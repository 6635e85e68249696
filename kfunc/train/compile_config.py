"""What ``compile()`` was asked for, resolved against the model's outputs.

Losses, loss weights and metrics may be given once for all outputs, as a list in output order,
or as a dict keyed by output name; every mismatch is reported at compile time with the expected
names. ``'accuracy'`` is resolved per output once the labels' shapes are known (at fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfunc.train import losses as losses_lib
from kfunc.train import metrics as metrics_lib
from kfunc.train import optimizers as optimizers_lib
from kfunc.train.losses import TrainingConfigError


@dataclass(frozen=True)
class OutputSpec:
    """Training spec of one output: its loss (or None: not trained), weight, metric ids and the
    ids of its weighted metrics (which see the sample and class weights)."""

    name: str
    loss: Any
    loss_weight: float
    metric_ids: tuple
    weighted_metric_ids: tuple = ()


@dataclass(frozen=True)
class CompileConfig:
    optimizer: Any
    outputs: tuple[OutputSpec, ...]
    steps_per_execution: Any
    arguments: dict

    @property
    def trained_outputs(self) -> list[int]:
        return [i for i, o in enumerate(self.outputs) if o.loss is not None]


def _per_output(value, names: list[str], role: str, *, allow_subset: bool) -> list:
    """One entry per output from a single value, a list in output order, or a dict by name."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise TrainingConfigError(
                f"compile: {role} has keys {unknown} that are not output names; the outputs are {names}."
            )
        missing = [n for n in names if n not in value]
        if missing and not allow_subset:
            raise TrainingConfigError(f"compile: {role} is missing outputs {missing}; the outputs are {names}.")
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise TrainingConfigError(
                f"compile: {role} has {len(value)} entries, but the model has {len(names)} outputs {names}; "
                "give one per output, in this order, or a dict keyed by output name."
            )
        return list(value)
    return [value] * len(names)


def _metric_lists(metrics, names: list[str], role: str) -> list[list]:
    """Per output, the metric ids of ``compile(metrics=...)`` or ``weighted_metrics=...``: a list
    (for every output) or a dict by output name (one id or a list each)."""
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, dict):
        per_output = _per_output(metrics, names, role, allow_subset=True)
        return [[] if m is None else (list(m) if isinstance(m, (list, tuple)) else [m]) for m in per_output]
    if isinstance(metrics, (list, tuple)):
        return [list(metrics) for _ in names]
    raise TrainingConfigError(
        f"compile: {role} must be a list (for every output) or a dict by output name, received {metrics!r:.80}."
    )


def make_config(model, optimizer, loss, loss_weights, metrics, steps_per_execution, arguments) -> CompileConfig:
    names = model.output_names
    if loss is None:
        raise TrainingConfigError("compile: a loss is needed to train, e.g. loss='mse'.")
    per_loss = [None if l is None else losses_lib.get(l) for l in _per_output(loss, names, "loss", allow_subset=True)]
    if all(l is None for l in per_loss):
        raise TrainingConfigError(f"compile: no output has a loss; the outputs are {names}.")
    weights = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", allow_subset=True)
    weights = [1.0 if w is None else w for w in weights]
    for name, w in zip(names, weights, strict=True):
        if not isinstance(w, (int, float)) or isinstance(w, bool):
            raise TrainingConfigError(f"compile: the loss weight of output '{name}' must be a number, received {w!r}.")
    per_metrics = _metric_lists(metrics, names, "metrics")
    per_weighted = _metric_lists(arguments.get("weighted_metrics"), names, "weighted_metrics")
    for ids in per_metrics + per_weighted:
        for identifier in ids:
            metrics_lib.check(identifier)
    for name, l in zip(names, per_loss, strict=True):
        losses_lib.check_trainable(l, name)
    if steps_per_execution != "auto" and (
        isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int) or steps_per_execution < 1
    ):
        raise TrainingConfigError(f"compile: steps_per_execution must be 'auto' or a positive int, received {steps_per_execution!r}.")
    outputs = tuple(
        OutputSpec(n, l, float(w), tuple(m), tuple(wm))
        for n, l, w, m, wm in zip(names, per_loss, weights, per_metrics, per_weighted, strict=True)
    )
    return CompileConfig(optimizers_lib.get(optimizer), outputs, steps_per_execution, arguments)

