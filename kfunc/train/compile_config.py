"""What ``compile()`` was asked for, resolved against the model's outputs.

Losses, loss weights and metrics may be given once for all outputs, as a list in output order,
or as a dict keyed by output name; every mismatch is reported at compile time with the expected
names. ``'accuracy'`` is resolved per output once the labels' shapes are known (at fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfunc.core import structures
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
    def jit(self) -> bool:
        """Whether the steps are compiled: ``run_eagerly=True`` or ``jit_compile=False`` run them op by op."""
        return not self.arguments.get("run_eagerly", False) and self.arguments.get("jit_compile", "auto") is not False

    @property
    def trained_outputs(self) -> list[int]:
        """The outputs that have a loss."""
        return [i for i, o in enumerate(self.outputs) if o.loss is not None]

    @property
    def labelled_outputs(self) -> list[int]:
        """The outputs that need labels: those with a loss, metrics or weighted metrics."""
        return [i for i, o in enumerate(self.outputs) if o.loss is not None or o.metric_ids or o.weighted_metric_ids]


def _per_output(value, model, role: str, *, allow_subset: bool, is_entry=None) -> list:
    """One entry per flat output (``model.outputs`` order) from: a single entry for every output,
    the outputs' structure (lists, tuples and namedtuples interchangeable; with ``allow_subset``
    a dict may leave outputs out), a dict keyed by output name, or a flat list in output order.
    ``is_entry(v)``: whether ``v`` is one output's entry (default: anything but a container)."""
    names, paths = model.output_names, model.output_paths
    is_entry = is_entry or (lambda v: not structures.is_container(v))
    if is_entry(value):
        return [value] * len(names)
    if len(names) == 1 and isinstance(value, (list, tuple)) and len(value) == 1 and is_entry(value[0]):
        return [value[0]]
    matched = structures.matched_by_paths(value, paths, is_leaf=is_entry)
    if matched is not None:
        return matched
    if isinstance(value, dict):
        subset = structures.matched_by_subset_of_paths(value, paths, is_leaf=is_entry)
        if subset is not None and allow_subset:
            return subset
        unknown = [k for k in value if k not in names]
        if unknown:
            raise TrainingConfigError(
                f"compile: {role} has keys {unknown} that are not output names; the outputs are {names} "
                f"(model '{model.name}' returns {model.structure_text('outputs')})."
            )
        missing = [n for n in names if n not in value]
        if missing and not allow_subset:
            raise TrainingConfigError(
                f"compile: {role} is missing outputs {missing}; the outputs are {names} "
                f"(model '{model.name}' returns {model.structure_text('outputs')})."
            )
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)) and len(value) == len(names) and all(is_entry(v) for v in value):
        return list(value)
    entries = structures.leaves(value, is_leaf=is_entry)
    raise TrainingConfigError(
        f"compile: {role} has {len(entries)} entries, but the model has {len(names)} outputs {names} (model "
        f"'{model.name}' returns {model.structure_text('outputs')}); give one per output in that structure, as a "
        "flat list in this order, or as a dict keyed by output name."
    )


def _is_metric_entry(value) -> bool:
    """One output's metrics: a metric, or a list of metrics (not themselves lists)."""
    if value is None or not structures.is_container(value):
        return True
    return isinstance(value, (list, tuple)) and not hasattr(value, "_fields") and not any(
        structures.is_container(v) for v in value
    )


def _per_output_metrics(metrics, model, role: str = "metrics") -> list[list]:
    """Keras 3's rules: with one output every metric applies to it; with several, ``metrics``
    mirrors the outputs (a list with one entry per output, a dict by output name, or the outputs'
    nested structure). kfunc also accepts a flat list of metrics of another length, for every output."""
    names = model.output_names
    if metrics is None:
        return [[] for _ in names]
    if len(names) == 1 and isinstance(metrics, (list, tuple)):
        return [list(structures.leaves(metrics))]
    if isinstance(metrics, dict) or (isinstance(metrics, (list, tuple)) and (
            len(metrics) == len(names) or structures.matched_by_paths(metrics, model.output_paths,
                                                                      is_leaf=_is_metric_entry) is not None)):
        per_output = _per_output(metrics, model, role, allow_subset=True, is_entry=_is_metric_entry)
    elif isinstance(metrics, (list, tuple)) and _is_metric_entry(metrics):
        per_output = [list(metrics) for _ in names]
    else:
        raise TrainingConfigError(
            f"compile: {role} must be a list (for every output), a dict by output name or the outputs' structure "
            f"{model.structure_text('outputs')}, received {metrics!r}."
        )
    return [[] if m is None else (list(m) if isinstance(m, (list, tuple)) else [m]) for m in per_output]


def make_config(model, optimizer, loss, loss_weights, metrics, steps_per_execution, arguments) -> CompileConfig:
    names = model.output_names
    # Without a loss (Keras 3 allows it), fit trains on the losses the layers add; a model compiled
    # only to predict, evaluate metrics or save never needs one.
    per_loss = [None if l is None else losses_lib.get(l) for l in _per_output(loss, model, "loss", allow_subset=True)]
    weights = _per_output(1.0 if loss_weights is None else loss_weights, model, "loss_weights", allow_subset=True)
    weights = [1.0 if w is None else w for w in weights]
    for name, w in zip(names, weights, strict=True):
        if not isinstance(w, (int, float)) or isinstance(w, bool):
            raise TrainingConfigError(f"compile: the loss weight of output '{name}' must be a number, received {w!r}.")
    per_metrics = _per_output_metrics(metrics, model)
    per_weighted = _per_output_metrics(arguments.get("weighted_metrics"), model, "weighted_metrics")
    for ids in per_metrics + per_weighted:
        for identifier in ids:
            metrics_lib.check(identifier)
    for name, l in zip(names, per_loss, strict=True):
        losses_lib.check_trainable(l, name)
    jit_compile = arguments.get("jit_compile", "auto")
    if jit_compile not in ("auto", True, False) or not isinstance(arguments.get("run_eagerly", False), bool):
        raise TrainingConfigError(
            f"compile: jit_compile must be 'auto', True or False and run_eagerly a bool, received "
            f"jit_compile={jit_compile!r}, run_eagerly={arguments.get('run_eagerly', False)!r}."
        )
    if steps_per_execution != "auto" and (
        isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int) or steps_per_execution < 1
    ):
        raise TrainingConfigError(f"compile: steps_per_execution must be 'auto' or a positive int, received {steps_per_execution!r}.")
    outputs = tuple(
        OutputSpec(n, l, float(w), tuple(m), tuple(wm))
        for n, l, w, m, wm in zip(names, per_loss, weights, per_metrics, per_weighted, strict=True)
    )
    return CompileConfig(optimizers_lib.get(optimizer), outputs, steps_per_execution, arguments)

