"""Exact rollback of a failed ``fit`` / ``evaluate``: everything the call may change, put back.

A snapshot holds references, not copies: arrays are immutable, the optimizer state is only ever
replaced (``Optimizer.learning_rate`` builds a new state, never edits the old one) and the
model's weights are swapped for new arrays by each write-back, so keeping the old objects keeps
the old values. The optimizer state's containers are rebuilt once when the snapshot is taken,
so even code that edits a container of the live state in place cannot reach the snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax


class TrainerSnapshot(NamedTuple):
    """What a call may change: the model's weights and ``stop_training``, and the trainer's
    optimizer state, step, dropout key, optimizer configuration (which weights it trains, its
    transformation and the steps compiled for it) and reported metric names."""

    variables: Any  # what model.get_variables() returned: (params, state)
    stop_training: bool
    opt_state: Any
    step: Any
    dropout_key: Any
    labels: Any
    transformation: Any
    compiled: dict
    metrics_names: list | None

    @classmethod
    def take(cls, trainer) -> TrainerSnapshot:
        model = trainer.model
        return cls(
            model.get_variables(),
            model.stop_training,
            jax.tree_util.tree_map(lambda leaf: leaf, trainer.opt_state),
            trainer.step,
            trainer.dropout_key,
            trainer._labels,
            trainer._transformation,
            trainer._compiled,
            trainer.metrics_names,
        )

    def restore(self, trainer) -> None:
        model = trainer.model
        model.set_variables(self.variables)
        model.stop_training = self.stop_training
        trainer.opt_state, trainer.step, trainer.dropout_key = self.opt_state, self.step, self.dropout_key
        trainer._labels, trainer._transformation, trainer._compiled = self.labels, self.transformation, self.compiled
        trainer.metrics_names = self.metrics_names


@contextlib.contextmanager
def rolled_back_on_failure(trainer) -> Iterator[TrainerSnapshot]:
    """Inside the block, any exception (``KeyboardInterrupt`` included) puts the model and
    ``trainer`` back as they were when the block was entered, then propagates."""
    snapshot = TrainerSnapshot.take(trainer)
    try:
        yield snapshot
    except BaseException:
        snapshot.restore(trainer)
        raise
