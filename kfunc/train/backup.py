"""``BackupAndRestore``: checkpoints that let an interrupted ``fit`` resume exactly.

A backup holds everything the next step depends on: the weights and layer state (BatchNorm
statistics), the optimizer state, the step count, the dropout key, and where the run was in its
data (epoch, batch within the epoch, and the seed of the epoch shuffles), plus the metric
accumulators of the unfinished epoch. Resuming from it in a new process and training to step k
gives, bitwise on CPU, what an uninterrupted run gives at step k (shuffle and dropout on): each
epoch's order is drawn from ``(shuffle seed, epoch)`` and step t's dropout key is
``fold_in(key, t)``, so nothing depends on how the run was cut.

The file is ``<backup_dir>/backup.npz``: plain arrays (read with ``allow_pickle=False``) and one
``meta`` array of UTF-8 JSON, written atomically, so a crash during a save leaves the previous
backup intact.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import jax
import numpy as np

from kfunc.errors import KfuncError
from kfunc.saving.atomic import atomic_write
from kfunc.saving.weights import WeightsFileError, read_weights_file
from kfunc.train.callbacks import Callback
from kfunc.train.step import TrainState

FORMAT_VERSION = 1
FILE_NAME = "backup.npz"


class BackupError(KfuncError, ValueError):
    """A backup cannot be restored into this model and training configuration."""


class ResumePoint(NamedTuple):
    """Where a run stands: its state, the next ``(epoch, batch)`` to train, the shuffle seed,
    and the metric accumulators of that epoch so far (``None`` at an epoch's start)."""

    train: TrainState
    epoch: int
    batch: int
    shuffle_seed: tuple[int, int]
    metrics: Any


def _flat(tree) -> dict[str, np.ndarray]:
    """``{"['dense']['kernel']": array, ...}``: every leaf under its path, in flatten order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def _unflat(stored: dict[str, np.ndarray], prefix: str, like, what: str, directory: str):
    """``like``'s structure with the stored leaves ``prefix + path``; every mismatch in one error."""
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    problems, values = [], []
    for path, leaf in paths_and_leaves:
        name = prefix + jax.tree_util.keystr(path)
        value = stored.get(name)
        if value is None:
            problems.append(f"{name} missing")
        elif value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            problems.append(f"{name}: expected {np.shape(leaf)} {np.asarray(leaf).dtype}, found {value.shape} {value.dtype}")
        values.append(value)
    expected = {prefix + jax.tree_util.keystr(p) for p, _ in paths_and_leaves}
    problems += [f"{n} unexpected" for n in stored if n.startswith(prefix) and n not in expected]
    if problems:
        raise BackupError(
            f"The backup in '{directory}' does not fit this model's {what}: {'; '.join(problems[:8])}"
            f"{' ...' if len(problems) > 8 else ''}. Delete the folder or give BackupAndRestore another backup_dir."
        )
    return jax.tree_util.tree_unflatten(treedef, values)


class BackupAndRestore(Callback):
    """Back up the training run to ``backup_dir`` and, when ``fit`` starts and a backup is there,
    continue from it (Keras's arguments).

    ``save_freq``: ``"epoch"`` (after each epoch) or an int ``n`` (every ``n`` training steps, counted
    over the whole run; ``fit`` then dispatches its steps in blocks that end on those steps, with no
    per-step host sync). ``delete_checkpoint``: remove the backup when ``fit`` completes.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"BackupAndRestore: backup_dir must be a folder path, received {backup_dir!r}.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive int, received {save_freq!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint

    @property
    def path(self) -> str:
        return os.path.join(self.backup_dir, FILE_NAME)

    @property
    def every_steps(self) -> int | None:
        """The step interval of mid-epoch backups, or None for epoch-end backups only."""
        return None if self.save_freq == "epoch" else self.save_freq

    def save(self, point: ResumePoint) -> None:
        """Write ``point`` (fetching it from the device) over the previous backup, atomically."""
        train = jax.device_get(point.train)
        arrays = {f"params{k}": v for k, v in _flat(train.params).items()}
        arrays |= {f"state{k}": v for k, v in _flat(train.state).items()}
        arrays |= {f"opt{k}": v for k, v in _flat(train.opt_state).items()}
        if point.metrics is not None:
            arrays |= {f"metrics{k}": v for k, v in _flat(jax.device_get(point.metrics)).items()}
        arrays |= {"step": np.asarray(train.step), "key": np.asarray(train.key)}
        meta = {"format": FORMAT_VERSION, "epoch": point.epoch, "batch": point.batch,
                "shuffle_seed": list(point.shuffle_seed), "has_metrics": point.metrics is not None}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with atomic_write(self.path) as stream:
            np.savez(stream, **arrays)

    def load(self, like: TrainState, metrics_like) -> ResumePoint | None:
        """The saved point, shaped like ``like`` (the run's current state), or None if there is none."""
        if not os.path.exists(self.path):
            return None
        try:
            stored = read_weights_file(self.path)
            meta = json.loads(bytes(stored.pop("meta")).decode())
            step, key = stored.pop("step"), stored.pop("key")
        except (WeightsFileError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BackupError(f"'{self.path}' is not a readable kfunc backup ({error}); delete it to start afresh.") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise BackupError(f"'{self.path}' has backup format {meta.get('format') if isinstance(meta, dict) else meta!r}; "
                              f"this kfunc reads format {FORMAT_VERSION}.")
        where = self.backup_dir
        train = TrainState(
            _unflat(stored, "params", like.params, "weights", where),
            _unflat(stored, "state", like.state, "layer state", where),
            _unflat(stored, "opt", like.opt_state, "optimizer state (compile it with the same optimizer)", where),
            step.astype(np.asarray(like.step).dtype),
            key.astype(np.asarray(like.key).dtype),
        )
        metrics = _unflat(stored, "metrics", metrics_like, "metrics (compile it with the same metrics)", where) \
            if meta["has_metrics"] else None
        return ResumePoint(train, int(meta["epoch"]), int(meta["batch"]), tuple(meta["shuffle_seed"]), metrics)

    def on_train_end(self, logs=None):
        """``fit`` completed (it is not called when ``fit`` raises): the backup is no longer needed."""
        if self.delete_checkpoint and os.path.exists(self.path):
            os.remove(self.path)
