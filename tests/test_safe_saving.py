"""Saving is safe: any valid file name can be saved (the temporary name is short), the next save
of a target removes the temporary files of killed saves (and only those), saved files get the
permissions of a plain write, and a save or backup killed by SIGKILL at any moment leaves one
whole, loadable version of the file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import flatbuffers  # noqa: E402,F401  (export needs it)
import numpy as np
import pytest
from test_hostile_files import ROOT, small_model

import kfunc
from kfunc.io import atomic
from kfunc.layers import Dense, Input
from kfunc.models import Model, load_model


# ---------------------------------------------------------------------- saving: names, litter, modes
WRITERS = {
    "model.save": (".kfunc", lambda model, path: model.save(path), lambda path: load_model(path)),
    "save_weights": (".npz", lambda model, path: model.save_weights(path), lambda path: small_model().load_weights(path)),
    "export": (".kfx", lambda model, path: model.export(path), lambda path: kfunc.export.load(path)),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_names_at_the_file_system_limit_can_be_saved(tmp_path, writer):
    suffix, save, load = WRITERS[writer]
    limit = min(255, os.pathconf(tmp_path, "PC_NAME_MAX"))
    model = small_model()
    for length in (244, limit):
        path = tmp_path / ("m" * (length - len(suffix)) + suffix)
        save(model, path)
        load(path)
        assert sorted(os.listdir(tmp_path))[-1] == path.name
    assert len(os.listdir(tmp_path)) == 2  # no temporary file left


@pytest.mark.parametrize("writer", list(WRITERS))
def test_the_next_save_removes_the_temporary_files_of_killed_saves_only(tmp_path, writer):
    suffix, save, _ = WRITERS[writer]
    target, other = tmp_path / f"model{suffix}", tmp_path / f"other{suffix}"
    stale = [tmp_path / f"{atomic.temporary_prefix(target)}{tag}.tmp" for tag in ("dead0001", "dead0002")]
    for path in stale:
        path.write_bytes(b"half a file")
    others = tmp_path / f"{atomic.temporary_prefix(other)}dead0003.tmp"
    others.write_bytes(b"another target's")
    live = tmp_path / f"{atomic.temporary_prefix(target)}live0004.tmp"
    fcntl = pytest.importorskip("fcntl")  # where there is no flock, the live writer's open file is the lock
    with open(live, "wb") as held:  # a save still running in another process holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        save(small_model(), target)
        assert sorted(os.listdir(tmp_path)) == sorted([target.name, others.name, live.name])
    save(small_model(), target)
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, others.name])
    assert len(atomic.temporary_prefix(target) + "12345678.tmp") == 28


@pytest.fixture
def umask():
    def set_umask(mask):
        previous = os.umask(mask)
        masks.append(previous)

    masks = []
    yield set_umask
    if masks:
        os.umask(masks[0])


@pytest.mark.parametrize("writer", list(WRITERS))
def test_saved_files_get_the_permissions_of_a_plain_write(tmp_path, writer, umask):
    suffix, save, _ = WRITERS[writer]
    model = small_model()
    for mask, mode in ((0o022, 0o644), (0o027, 0o640)):
        umask(mask)
        path = tmp_path / f"new{mask:o}{suffix}"
        save(model, path)
        assert stat.S_IMODE(path.stat().st_mode) == mode
    path.chmod(0o604)  # replacing a file keeps its mode, as writing into it would
    save(model, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o604


def test_backups_get_the_permissions_of_a_plain_write(tmp_path, umask):
    umask(0o022)
    folder = tmp_path / "backup"
    inputs = Input(shape=(6,))
    model = Model(inputs, Dense(1)(inputs))
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 6), np.float32), np.ones((4, 1), np.float32), epochs=1, verbose=0,
              callbacks=[kfunc.callbacks.BackupAndRestore(folder, delete_checkpoint=False)])
    assert stat.S_IMODE((folder / "backup.npz").stat().st_mode) == 0o644



# ---------------------------------------------------------------------- SIGKILL during saves
KILLED_CHILD = """
import os, sys
import numpy as np
import kfunc
from kfunc.layers import Dense, Input
from kfunc.models import Model

kind, target = sys.argv[1:3]
inputs = Input(shape=(128,), name="x")
model = Model(inputs, Dense(2048, name="wide")(inputs), name="wide_model")  # 1 MB of weights
if kind == "model":
    version = 0
    while True:  # every save holds one value everywhere: a mix of two saves would show
        version += 1
        model.set_weights([np.full(w.shape, version, w.dtype) for w in model.get_weights()])
        model.save(target)
        if version == 1:
            print("ready", flush=True)
else:
    class Announce(kfunc.callbacks.BackupAndRestore):
        def save(self, point):
            super().save(point)
            if not getattr(self, "announced", False):
                self.announced = True
                print("ready", flush=True)

    model.compile("sgd", "mse")
    x, y = np.ones((16, 128), np.float32), np.zeros((16, 2048), np.float32)
    model.fit(x, y, batch_size=4, epochs=10**6, verbose=0, callbacks=[Announce(target, save_freq=1, delete_checkpoint=False)])
"""


def wide_model():
    inputs = Input(shape=(128,), name="x")
    return Model(inputs, Dense(2048, name="wide")(inputs), name="wide_model")


def kill_during_saves(tmp_path, jobs) -> list[Path]:
    """Start one child per ``(kind, delay)`` in ``jobs``, each saving in a loop; SIGKILL each
    ``delay`` seconds after its first save. Returns each child's target."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "child.py"
    script.write_text(KILLED_CHILD)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT.parent)}
    children, targets = [], []
    for index, (kind, delay) in enumerate(jobs):
        folder = tmp_path / f"{kind}{index}"
        folder.mkdir()
        target = folder / ("model.kfunc" if kind == "model" else "backup")
        command = [sys.executable, str(script), kind, str(target)]
        children.append((subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True), delay))
        targets.append(target)
    for child, delay in children:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
    return targets


def check_killed_model_save(target: Path) -> None:
    loaded = load_model(target)  # one whole version: every weight holds the same value
    values = np.concatenate([np.ravel(w) for w in loaded.get_weights()])
    assert values[0] >= 1 and np.all(values == values[0])
    loaded.save(target)
    assert os.listdir(target.parent) == [target.name]


def check_killed_backup(folder: Path) -> None:
    backup = folder / "backup.npz"
    stored = kfunc.saving.weights.read_weights_file(backup)  # one whole version
    meta = json.loads(stored["meta"].tobytes())
    model = wide_model()
    model.compile("sgd", "mse")
    x, y = np.ones((16, 128), np.float32), np.zeros((16, 2048), np.float32)
    # One more whole epoch, so the resumed run saves even if the backup ended its epoch.
    history = model.fit(x, y, batch_size=4, epochs=meta["epoch"] + 2, verbose=0,
                        callbacks=[kfunc.callbacks.BackupAndRestore(folder, save_freq=1, delete_checkpoint=False)])
    assert history.epoch[0] == meta["epoch"] and history.epoch[-1] == meta["epoch"] + 1  # resumed from it
    assert os.listdir(folder) == ["backup.npz"]


@pytest.mark.parametrize("delays", [(0.013, 0.07), pytest.param((0.013, 0.031, 0.05, 0.11, 0.2), marks=pytest.mark.slow)])
def test_sigkill_during_saves_leaves_one_whole_version_and_no_litter_after_the_next_save(tmp_path, delays):
    jobs = [("model", d) for d in delays] + [("backup", d) for d in delays[::2]]
    for (kind, _), target in zip(jobs, kill_during_saves(tmp_path, jobs), strict=True):
        if kind == "model":
            check_killed_model_save(target)
        else:
            check_killed_backup(target)
