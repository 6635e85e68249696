"""The log key of each compiled metric, named as Keras 3's ``compile`` names them.

A metric of output ``out`` in a multi-output model logs as ``out_<name>``; a second metric with
the same key gets ``_1``, ``_2`` ...; a weighted metric whose key is taken logs as
``weighted_<name>`` (``out_weighted_<name>``). Metrics come first, then weighted metrics.
"""

from __future__ import annotations

from typing import NamedTuple

from kfunc.train.metrics.metric import Metric


class MetricEntry(NamedTuple):
    """One compiled metric: its log ``key``, its ``output`` index, and whether it is ``weighted``."""

    key: str
    output: int
    metric: Metric
    weighted: bool


def metric_entries(output_names: list[str] | None, outputs: list[int], metrics: list[list],
                   weighted_metrics: list[list] | None) -> list[MetricEntry]:
    """``output_names``: the names to prefix keys with (None for a single-output model);
    ``outputs``: the indices of the outputs given labels; ``metrics`` / ``weighted_metrics``: the
    resolved metric objects per output index."""
    entries: list[MetricEntry] = []
    taken: dict[str, int] = {}

    def prefixed(i: int, name: str) -> str:
        return name if output_names is None else f"{output_names[i]}_{name}"

    def numbered(key: str) -> str:
        if key not in taken:
            taken[key] = 1
            return key
        index = taken[key]
        taken[key] += 1
        return f"{key}_{index}"

    for i in outputs:
        for metric in metrics[i]:
            entries.append(MetricEntry(numbered(prefixed(i, metric.name)), i, metric, False))
    for i in outputs:
        for metric in (weighted_metrics[i] if weighted_metrics else []):
            key = prefixed(i, metric.name)
            if key in taken:
                key = numbered(prefixed(i, f"weighted_{metric.name}"))
            else:
                taken[key] = 1
            entries.append(MetricEntry(key, i, metric, True))
    return entries


def resolve_output_metrics(config, model_outputs, label_shapes, resolve) -> tuple[list[list], list[list]]:
    """``(metrics, weighted_metrics)``: per output, the metric objects ``resolve`` makes from the
    compile config's ids (``[]`` for an output given no labels). ``model_outputs``: the model's
    output tensors; ``label_shapes``: per output, the label shape without the batch axis."""
    metrics, weighted = [], []
    for spec, tensor, shape in zip(config.outputs, model_outputs, label_shapes, strict=True):
        if shape is None:  # an output given no labels (no loss and no metrics)
            metrics.append([])
            weighted.append([])
            continue
        make = lambda m: resolve(m, loss=spec.loss, output_shape=tensor.shape[1:], label_shape=shape)  # noqa: B023, E731
        metrics.append([make(m) for m in spec.metric_ids])
        weighted.append([make(m) for m in getattr(spec, "weighted_metric_ids", ())])
    return metrics, weighted
