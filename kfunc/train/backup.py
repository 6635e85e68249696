"""``BackupAndRestore``: checkpoints that let an interrupted ``fit`` resume exactly.

A backup holds everything the next step depends on: the weights and layer state (BatchNorm
statistics), the optimizer state, the step count, the dropout key, and where the run was in its
data (epoch, batch within the epoch, and the seed of the epoch shuffles), plus the metric
accumulators of the unfinished epoch. Resuming from it in a new process and training to step k
gives, bitwise on CPU, what an uninterrupted run gives at step k (shuffle and dropout on): each
epoch's order is drawn from ``(shuffle seed, epoch)`` and step t's dropout key is
``fold_in(key, t)``, so nothing depends on how the run was cut.

The default store is one file, ``<backup_dir>/backup.npz``: plain arrays (read with
``allow_pickle=False``) and one ``meta`` array of UTF-8 JSON, written atomically, so a crash
during a save leaves the previous backup intact. ``backend="orbax"`` keeps the same arrays and
JSON in an Orbax ``CheckpointManager`` under ``<backup_dir>/orbax`` instead (the ``orbax-checkpoint``
package: the JAX ecosystem's checkpointer, asynchronous-capable and made for sharded, multi-host
state).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, NamedTuple

import jax
import numpy as np

from kfunc.io.atomic import atomic_write
from kfunc.saving.weights import WeightsFileError, read_weights_file
from kfunc.train.callbacks import Callback
from kfunc.train.step import TrainState
from kfunc.errors import BackupError  # noqa: F401 (re-exported)

FORMAT_VERSION = 1
FILE_NAME = "backup.npz"


class ResumePoint(NamedTuple):
    """Where a run stands: its state, the next ``(epoch, batch)`` to train, the shuffle seed,
    and the metric accumulators of that epoch so far (``None`` at an epoch's start)."""

    train: TrainState
    epoch: int
    batch: int
    shuffle_seed: tuple[int, int]
    metrics: Any


def _flat(tree) -> dict:
    """``{"['dense']['kernel']": leaf, ...}``: every leaf under its path, in flatten order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def _named_arrays(train: TrainState, metrics) -> dict:
    """Every array of a resume point under its name in the backup (``params['dense']['kernel']``)."""
    arrays = {f"params{k}": v for k, v in _flat(train.params).items()}
    arrays |= {f"state{k}": v for k, v in _flat(train.state).items()}
    arrays |= {f"opt{k}": v for k, v in _flat(train.opt_state).items()}
    if metrics is not None:
        arrays |= {f"metrics{k}": v for k, v in _flat(metrics).items()}
    return arrays | {"step": train.step, "key": train.key}


def _dtype(leaf) -> np.dtype:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def _unflat(stored: dict[str, np.ndarray], prefix: str, like, what: str, directory: str):
    """``like``'s structure with the stored leaves ``prefix + path``; every mismatch in one error."""
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    problems, values = [], []
    for path, leaf in paths_and_leaves:
        name = prefix + jax.tree_util.keystr(path)
        value = stored.get(name)
        if value is None:
            problems.append(f"{name} missing")
        elif value.shape != np.shape(leaf) or value.dtype != _dtype(leaf):
            problems.append(f"{name}: expected {np.shape(leaf)} {_dtype(leaf)}, found {value.shape} {value.dtype}")
        values.append(value)
    expected = {prefix + jax.tree_util.keystr(p) for p, _ in paths_and_leaves}
    problems += [f"{n} unexpected" for n in stored if n.startswith(prefix) and n not in expected]
    if problems:
        raise BackupError(
            f"The backup in '{directory}' does not fit this model's {what}: {'; '.join(problems[:8])}"
            f"{' ...' if len(problems) > 8 else ''}. Delete the folder or give BackupAndRestore another backup_dir."
        )
    return jax.tree_util.tree_unflatten(treedef, values)


_META_FIELDS = ("batch", "epoch", "format", "has_metrics", "shuffle_seed")


def _check_meta(meta, path: str) -> None:
    """Raise ``BackupError`` unless ``meta`` is the JSON object ``save`` writes, every field well typed."""

    def fail(detail: str):
        raise BackupError(f"'{path}' is not a readable kfunc backup: {detail}; delete it to start afresh.")

    if not isinstance(meta, dict):
        fail(f"its meta is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT_VERSION:
        fail(f"it has backup format {str(meta.get('format'))[:40]!r}, this kfunc reads format {FORMAT_VERSION}")
    if sorted(meta) != list(_META_FIELDS):
        fail(f"its meta has the fields {sorted(meta)[:10]}, expected {list(_META_FIELDS)}")
    for field in ("epoch", "batch"):
        if type(meta[field]) is not int or not 0 <= meta[field] < 2**31:
            fail(f"its {field} is {str(meta[field])[:40]!r}, not an integer in [0, 2**31)")
    seed = meta["shuffle_seed"]
    if not isinstance(seed, list) or len(seed) != 2 or not all(type(s) is int and 0 <= s < 2**64 for s in seed):
        fail(f"its shuffle_seed is {str(seed)[:40]!r}, not two integers in [0, 2**64)")
    if type(meta["has_metrics"]) is not bool:
        fail(f"its has_metrics is {str(meta['has_metrics'])[:40]!r}, not true or false")


def _stored_leaf(stored: dict, name: str, like, path: str):
    """The array ``name`` of the backup, removed from ``stored``; it must have ``like``'s shape and dtype."""
    value = stored.pop(name, None)
    if value is None or value.shape != np.shape(like) or value.dtype != _dtype(like):
        found = "nothing" if value is None else f"{value.shape} {value.dtype}"
        raise BackupError(f"'{path}' is not a readable kfunc backup: its {name} must be {np.shape(like)} {_dtype(like)}, "
                          f"found {found}; delete it to start afresh.")
    return value


class _NpzStore:
    """Arrays and a JSON dict in one ``.npz`` file, replaced atomically."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, FILE_NAME)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def write(self, arrays: dict, meta: dict) -> None:
        arrays = {name: np.asarray(value) for name, value in jax.device_get(arrays).items()}
        with atomic_write(self.path) as stream:
            np.savez(stream, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))

    def read(self, like: dict) -> tuple[dict[str, np.ndarray], dict]:
        try:
            stored = read_weights_file(self.path)
        except WeightsFileError as error:
            raise BackupError(f"'{self.path}' is not a readable kfunc backup ({error}); delete it to start afresh.") from None
        meta = stored.pop("meta", None)
        if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
            raise BackupError(f"'{self.path}' is not a readable kfunc backup (no meta array of UTF-8 JSON bytes); "
                              "delete it to start afresh.")
        try:
            return stored, json.loads(meta.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise BackupError(f"'{self.path}' is not a readable kfunc backup (its meta is not JSON: "
                              f"{type(error).__name__}); delete it to start afresh.") from None

    def delete(self) -> None:
        if self.exists():
            os.remove(self.path)


class _OrbaxStore:
    """The same arrays and JSON dict in an Orbax ``CheckpointManager`` keeping the latest one.
    Arrays go to Orbax as they are on the devices, sharded or not, and come back with the
    shardings of the run that restores them (each process writes and reads its own shards)."""

    def __init__(self, directory: str):
        try:
            import orbax.checkpoint as ocp
        except ImportError:
            raise ImportError(
                "BackupAndRestore(backend='orbax') needs the orbax-checkpoint package: pip install 'kfunc[orbax]'."
            ) from None
        self.ocp = ocp
        self.path = os.path.join(os.path.abspath(directory), "orbax")
        self._manager = None

    @property
    def manager(self):
        if self._manager is None:
            options = self.ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
            self._manager = self.ocp.CheckpointManager(self.path, options=options)
        return self._manager

    def exists(self) -> bool:
        return os.path.isdir(self.path) and self.manager.latest_step() is not None

    def write(self, arrays: dict, meta: dict) -> None:
        # Orbax names files after the keys: store the arrays by position, their paths in the JSON.
        names = list(arrays)
        by_position = {f"a{i}": arrays[n] for i, n in enumerate(names)}
        args = self.ocp.args.Composite(arrays=self.ocp.args.StandardSave(by_position),
                                       meta=self.ocp.args.JsonSave({**meta, "names": names}))
        self.manager.save(int(arrays["step"]), args=args, force=True)
        self.manager.wait_until_finished()

    def read(self, like: dict) -> tuple[dict, dict]:
        step = self.manager.latest_step()
        try:
            meta = dict(self.manager.restore(step, args=self.ocp.args.Composite(meta=self.ocp.args.JsonRestore()))["meta"])
            names = meta.pop("names")
            target = {}
            for i, name in enumerate(names):
                leaf = like.get(name)
                if leaf is not None:
                    target[f"a{i}"] = jax.ShapeDtypeStruct(np.shape(leaf), _dtype(leaf),
                                                           sharding=getattr(leaf, "sharding", None))
            if len(target) != len(names):  # the backup's names differ from this run's: restore as stored
                target = None
            args = self.ocp.args.Composite(arrays=self.ocp.args.StandardRestore(target))
            restored = self.manager.restore(step, args=args)["arrays"]
            arrays = {n: restored[f"a{i}"] for i, n in enumerate(names)}
        except Exception as error:  # orbax raises many types for a damaged checkpoint
            raise BackupError(f"'{self.path}' is not a readable kfunc backup ({error}); delete it to start afresh.") from None
        return arrays, meta

    def delete(self) -> None:
        self._manager = None
        shutil.rmtree(self.path, ignore_errors=True)


class BackupAndRestore(Callback):
    """Back up the training run to ``backup_dir`` and, when ``fit`` starts and a backup is there,
    continue from it (Keras's arguments).

    ``save_freq``: ``"epoch"`` (after each epoch) or an int ``n`` (every ``n`` training steps, counted
    over the whole run; ``fit`` then dispatches its steps in blocks that end on those steps, with no
    per-step host sync). ``delete_checkpoint``: remove the backup when ``fit`` completes.
    ``backend``: ``"npz"`` (one file) or ``"orbax"`` (an Orbax checkpoint folder).
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, *, backend="npz"):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"BackupAndRestore: backup_dir must be a folder path, received {backup_dir!r}.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive int, received {save_freq!r}.")
        if backend not in ("npz", "orbax"):
            raise ValueError(f"BackupAndRestore: backend must be 'npz' or 'orbax', received {backend!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.store = _NpzStore(self.backup_dir) if backend == "npz" else _OrbaxStore(self.backup_dir)

    @property
    def every_steps(self) -> int | None:
        """The step interval of mid-epoch backups, or None for epoch-end backups only."""
        return None if self.save_freq == "epoch" else self.save_freq

    def save(self, point: ResumePoint) -> None:
        """Write ``point`` (fetching it from the device) over the previous backup, atomically."""
        arrays = _named_arrays(point.train, point.metrics)
        meta = {"format": FORMAT_VERSION, "epoch": point.epoch, "batch": point.batch,
                "shuffle_seed": list(point.shuffle_seed), "has_metrics": point.metrics is not None}
        self.store.write(arrays, meta)

    def load(self, like: TrainState, metrics_like) -> ResumePoint | None:
        """The saved point, shaped like ``like`` (the run's current state), or None if there is none."""
        if not self.store.exists():
            return None
        stored, meta = self.store.read(_named_arrays(like, metrics_like))
        _check_meta(meta, self.store.path)
        where = self.backup_dir
        counters = [_stored_leaf(stored, name, leaf, self.store.path) for name, leaf in (("step", like.step), ("key", like.key))]
        sections = ("params", "state", "opt") + (("metrics",) if meta["has_metrics"] else ())
        stray = [name for name in stored if not name.startswith(sections)]
        if stray:
            raise BackupError(f"'{self.store.path}' is not a readable kfunc backup: it holds arrays {stray[:5]} that belong "
                              "to no part of a training run; delete it to start afresh.")
        train = TrainState(
            _unflat(stored, "params", like.params, "weights", where),
            _unflat(stored, "state", like.state, "layer state", where),
            _unflat(stored, "opt", like.opt_state, "optimizer state (compile it with the same optimizer)", where),
            *counters,
        )
        metrics = _unflat(stored, "metrics", metrics_like, "metrics (compile it with the same metrics)", where) \
            if meta["has_metrics"] else None
        return ResumePoint(train, meta["epoch"], meta["batch"], tuple(meta["shuffle_seed"]), metrics)

    def on_train_end(self, logs=None):
        """``fit`` completed (it is not called when ``fit`` raises): the backup is no longer needed."""
        if self.delete_checkpoint:
            self.store.delete()
