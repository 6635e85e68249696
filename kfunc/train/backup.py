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
during a save leaves the previous backup intact. With ``double_checkpoint=True`` the backup it
replaces is kept as ``backup.previous.npz`` (renamed, never rewritten), and a latest backup that
cannot be read (a damaged disk, a file cut short by a copy) gives way to it, with a warning.
``backend="orbax"`` keeps the same arrays and
JSON in an Orbax ``CheckpointManager`` under ``<backup_dir>/orbax`` instead (the ``orbax-checkpoint``
package: the JAX ecosystem's checkpointer, asynchronous-capable and made for sharded, multi-host
state).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
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
PREVIOUS_FILE_NAME = "backup.previous.npz"


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
    """Arrays and a JSON dict in one ``.npz`` file, replaced atomically; with ``keep_previous``,
    the file it replaces is first renamed to ``backup.previous.npz``. A version is a file path."""

    def __init__(self, directory: str, keep_previous: bool = False):
        self.path = os.path.join(directory, FILE_NAME)
        self.previous_path = os.path.join(directory, PREVIOUS_FILE_NAME)
        self.keep_previous = keep_previous

    def versions(self) -> list[str]:
        """The backups to try, newest first (the previous one only with ``keep_previous``).
        A crash between the rename and the new file's write leaves the previous one alone: it
        is then the newest."""
        paths = (self.path, self.previous_path) if self.keep_previous else (self.path,)
        return [path for path in paths if os.path.exists(path)]

    def write(self, arrays: dict, meta: dict) -> None:
        arrays = {name: np.asarray(value) for name, value in jax.device_get(arrays).items()}
        if self.keep_previous and os.path.exists(self.path):
            os.replace(self.path, self.previous_path)  # atomic: one complete backup exists at every moment
        with atomic_write(self.path) as stream:
            np.savez(stream, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))

    def read(self, like: dict, path: str) -> tuple[dict[str, np.ndarray], dict]:
        try:
            stored = read_weights_file(path)
        except WeightsFileError as error:
            raise BackupError(f"'{path}' is not a readable kfunc backup ({error}); delete it to start afresh.") from None
        meta = stored.pop("meta", None)
        if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
            raise BackupError(f"'{path}' is not a readable kfunc backup (no meta array of UTF-8 JSON bytes); "
                              "delete it to start afresh.")
        try:
            return stored, json.loads(meta.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise BackupError(f"'{path}' is not a readable kfunc backup (its meta is not JSON: "
                              f"{type(error).__name__}); delete it to start afresh.") from None

    def describe(self, path: str) -> str:
        return path

    def discard(self, path: str) -> None:
        """Remove a backup that could not be read, before a good one takes its place."""
        if path == self.path and os.path.exists(path):
            os.remove(path)

    def delete(self) -> None:
        for path in (self.path, self.previous_path):
            if os.path.exists(path):
                os.remove(path)


class _OrbaxStore:
    """The same arrays and JSON dict in an Orbax ``CheckpointManager`` keeping the latest one.
    Arrays go to Orbax as they are on the devices, sharded or not, and come back with the
    shardings of the run that restores them (each process writes and reads its own shards)."""

    def __init__(self, directory: str, keep_previous: bool = False):
        try:
            import orbax.checkpoint as ocp
        except ImportError:
            raise ImportError(
                "BackupAndRestore(backend='orbax') needs the orbax-checkpoint package: pip install 'kfunc[orbax]'."
            ) from None
        self.ocp = ocp
        self.path = os.path.join(os.path.abspath(directory), "orbax")
        self.keep_previous = keep_previous
        self._manager = None

    @property
    def manager(self):
        if self._manager is None:
            options = self.ocp.CheckpointManagerOptions(max_to_keep=2 if self.keep_previous else 1, create=True)
            self._manager = self.ocp.CheckpointManager(self.path, options=options)
        return self._manager

    def versions(self) -> list[int]:
        """The steps of the checkpoints to try, newest first."""
        if not os.path.isdir(self.path):
            return []
        steps = sorted(self.manager.all_steps(), reverse=True)
        return steps[:2] if self.keep_previous else steps[:1]

    def describe(self, step: int) -> str:
        return os.path.join(self.path, str(step))

    def discard(self, step: int) -> None:
        """Remove a checkpoint that could not be read (it would otherwise stay the newest by step)."""
        if step in self.manager.all_steps():
            self.manager.delete(step)

    def write(self, arrays: dict, meta: dict) -> None:
        # Orbax names files after the keys: store the arrays by position, their paths in the JSON.
        names = list(arrays)
        by_position = {f"a{i}": arrays[n] for i, n in enumerate(names)}
        args = self.ocp.args.Composite(arrays=self.ocp.args.StandardSave(by_position),
                                       meta=self.ocp.args.JsonSave({**meta, "names": names}))
        self.manager.save(int(arrays["step"]), args=args, force=True)
        self.manager.wait_until_finished()

    def read(self, like: dict, step: int) -> tuple[dict, dict]:
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
            raise BackupError(f"'{self.describe(step)}' is not a readable kfunc backup ({error}); delete it to start "
                              "afresh.") from None
        return arrays, meta

    def delete(self) -> None:
        self._manager = None
        shutil.rmtree(self.path, ignore_errors=True)


class BackupAndRestore(Callback):
    """Back up the training run to ``backup_dir`` and, when ``fit`` starts and a backup is there,
    continue from it (Keras's arguments).

    ``save_freq``: ``"epoch"`` (after each epoch) or an int ``n`` (every ``n`` training steps, counted
    over the whole run; ``fit`` then dispatches its steps in blocks that end on those steps, with no
    per-step host sync). ``double_checkpoint``: keep the backup before the latest too and, when the
    latest cannot be read, warn and restore the previous one (twice the disk space).
    ``delete_checkpoint``: remove the backup when ``fit`` completes. ``backend``: ``"npz"`` (one
    file) or ``"orbax"`` (an Orbax checkpoint folder).
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True, *,
                 backend="npz"):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"BackupAndRestore: backup_dir must be a folder path, received {backup_dir!r}.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive int, received {save_freq!r}.")
        if not isinstance(double_checkpoint, bool):
            raise ValueError(f"BackupAndRestore: double_checkpoint must be True or False, received {double_checkpoint!r}.")
        if backend not in ("npz", "orbax"):
            raise ValueError(f"BackupAndRestore: backend must be 'npz' or 'orbax', received {backend!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        store = _NpzStore if backend == "npz" else _OrbaxStore
        self.store = store(self.backup_dir, keep_previous=double_checkpoint)
        self._unreadable = None  # the latest backup, when it could not be read and the previous one was restored

    @property
    def every_steps(self) -> int | None:
        """The step interval of mid-epoch backups, or None for epoch-end backups only."""
        return None if self.save_freq == "epoch" else self.save_freq

    def save(self, point: ResumePoint) -> None:
        """Write ``point`` (fetching it from the device) over the previous backup, atomically (with
        ``double_checkpoint``, the backup it replaces is kept as the previous one, unless it was unreadable)."""
        arrays = _named_arrays(point.train, point.metrics)
        meta = {"format": FORMAT_VERSION, "epoch": point.epoch, "batch": point.batch,
                "shuffle_seed": list(point.shuffle_seed), "has_metrics": point.metrics is not None}
        if self._unreadable is not None:
            self.store.discard(self._unreadable)
            self._unreadable = None
        self.store.write(arrays, meta)

    def load(self, like: TrainState, metrics_like) -> ResumePoint | None:
        """The saved point, shaped like ``like`` (the run's current state), or None if there is none.
        With ``double_checkpoint``, a latest backup that cannot be restored gives way to the previous one."""
        self._unreadable = None
        versions = self.store.versions()
        failures = []
        for version in versions:
            try:
                point = self._load_version(version, like, metrics_like)
            except BackupError as error:
                failures.append(error)
                if len(failures) < len(versions):
                    warnings.warn(f"BackupAndRestore: the latest backup '{self.store.describe(version)}' cannot be "
                                  f"restored ({error}); restoring the previous one, "
                                  f"'{self.store.describe(versions[-1])}'.", stacklevel=2)
                continue
            self._unreadable = versions[0] if failures else None
            return point
        if len(failures) > 1:
            raise BackupError(
                f"BackupAndRestore: neither backup in '{self.backup_dir}' can be restored: the latest, "
                f"'{self.store.describe(versions[0])}' ({failures[0]}), nor the previous, "
                f"'{self.store.describe(versions[1])}' ({failures[1]}); delete the folder to start afresh or give "
                "BackupAndRestore another backup_dir."
            )
        if failures:
            raise failures[0]
        return None

    def _load_version(self, version, like: TrainState, metrics_like) -> ResumePoint:
        path = self.store.describe(version)
        stored, meta = self.store.read(_named_arrays(like, metrics_like), version)
        _check_meta(meta, path)
        where = self.backup_dir
        counters = [_stored_leaf(stored, name, leaf, path) for name, leaf in (("step", like.step), ("key", like.key))]
        sections = ("params", "state", "opt") + (("metrics",) if meta["has_metrics"] else ())
        stray = [name for name in stored if not name.startswith(sections)]
        if stray:
            raise BackupError(f"'{path}' is not a readable kfunc backup: it holds arrays {stray[:5]} that belong "
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
