"""BackupAndRestore: an interrupted fit resumes exactly, in the same process or a new one."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kfunc
from kfunc.callbacks import BackupAndRestore, BackupError, Callback
from kfunc.layers import Dense, Dropout, Input
from kfunc.models import Model
from kfunc.testing import count_compilations

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import kfunc
    from kfunc.layers import Dense, Dropout, Input
    from kfunc.models import Model

    class DieAfterSave(kfunc.callbacks.BackupAndRestore):
        # A preempted machine: the process ends right after the backup at step DIE_AT.
        def save(self, point):
            super().save(point)
            if int(point.train.step) >= int(os.environ["DIE_AT"]):
                os._exit(3)

    mode, out, backup_dir = sys.argv[1:4]
    kfunc.utils.set_random_seed(7)
    x = np.random.default_rng(0).normal(size=(100, 6)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    inputs = Input((6,))
    hidden = Dropout(0.3)(Dense(16, activation="relu")(inputs))
    model = Model(inputs, Dense(1, activation="sigmoid")(hidden))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    make = {"plain": None, "die": DieAfterSave, "resume": kfunc.callbacks.BackupAndRestore}[mode]
    callbacks = [make(backup_dir, save_freq=5, backend=os.environ["BACKEND"])] if make else []
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=callbacks)
    np.savez(out, *model.get_weights(), step=np.asarray(model._trainer.step),
             loss=np.asarray(history.history["loss"]), epochs=np.asarray(history.epoch))
    """
)


def _run(tmp_path, mode, out, **env):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode, str(tmp_path / out), str(tmp_path / "backup")],
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env}, capture_output=True, text=True, timeout=300,
    )


BACKENDS = ["npz", pytest.param("orbax", marks=pytest.mark.skipif(
    importlib.util.find_spec("orbax") is None, reason="orbax-checkpoint is not installed"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_process_resumes_bitwise_in_a_new_one(tmp_path, backend):
    # 100 samples at batch 16: 7 steps per epoch, 28 in all; the first process dies after the
    # backup at step 10 (epoch 1, batch 3), mid-epoch, with shuffle and dropout on.
    assert _run(tmp_path, "plain", "plain.npz", BACKEND=backend).returncode == 0
    died = _run(tmp_path, "die", "never.npz", DIE_AT="10", BACKEND=backend)
    assert died.returncode == 3, died.stderr
    assert any((tmp_path / "backup").iterdir()) and not (tmp_path / "never.npz").exists()
    resumed = _run(tmp_path, "resume", "resumed.npz", BACKEND=backend)
    assert resumed.returncode == 0, resumed.stderr
    plain, again = np.load(tmp_path / "plain.npz"), np.load(tmp_path / "resumed.npz")
    assert int(again["step"]) == int(plain["step"]) == 28
    for name in [n for n in plain.files if n.startswith("arr_")]:
        np.testing.assert_array_equal(again[name], plain[name])
    # The resumed run trains epochs 1-3; epoch 1's loss counts its first 3 batches from the backup.
    np.testing.assert_array_equal(again["epochs"], [1, 2, 3])
    np.testing.assert_array_equal(again["loss"], plain["loss"][1:])
    assert not any((tmp_path / "backup").iterdir())  # deleted once fit completed


def _model(seed=3, width=8):
    kfunc.utils.set_random_seed(seed)
    inputs = Input((4,))
    hidden = Dropout(0.25)(Dense(width, activation="relu")(inputs))
    model = Model(inputs, Dense(1)(hidden))
    model.compile("rmsprop", "mse")
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 1)).astype("float32")


class StopAt(Callback):
    """Raises when epoch ``epoch`` begins, as a crash between epochs would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("backend", BACKENDS)
def test_epoch_backups_resume_in_the_same_process(tmp_path, backend):
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=8, epochs=5, verbose=0)

    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=5, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path, backend=backend), StopAt(3)])
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[BackupAndRestore(tmp_path, backend=backend)])
    assert history.epoch == [3, 4]
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(model._trainer.step) == int(reference._trainer.step) == 25


def test_backups_in_blocks_compile_the_train_step_once(tmp_path):
    x, y = _data()
    model = _model()
    with count_compilations() as compiles:
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path, save_freq=2)])
    assert compiles.of("run_train_steps") == 1, compiles.names


def test_keep_the_backup_when_asked(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    assert (tmp_path / "backup.npz").exists()
    # A later fit with more epochs continues from the backup's epoch.
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    assert history.epoch == [1]


def test_iterable_data_resumes_by_skipping_the_batches_already_trained(tmp_path):
    x, y = _data()

    def batches():
        for start in range(0, 40, 8):
            yield x[start:start + 8], y[start:start + 8]

    class Batches:
        def __iter__(self):
            return batches()

    reference = _model()
    reference.fit(Batches(), epochs=2, verbose=0)
    model = _model()
    model.fit(Batches(), epochs=1, steps_per_epoch=3, verbose=0,
              callbacks=[BackupAndRestore(tmp_path, save_freq=3, delete_checkpoint=False)])
    model.fit(Batches(), epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path, save_freq=3)])
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_backup_from_another_model_is_refused_and_changes_nothing(tmp_path):
    x, y = _data()
    _model(width=8).fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    kfunc.utils.clear_session()  # the same layer names, other shapes
    other = _model(width=5)
    before = other.get_weights()
    with pytest.raises(BackupError, match=r"does not fit this model's weights: .*kernel.*expected \(4, 5\).*found \(4, 8\)"):
        other.fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    for a, b in zip(other.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a zip at all"])
def test_an_unreadable_backup_is_a_clear_error(tmp_path, content):
    (tmp_path / "backup.npz").write_bytes(content)
    x, y = _data()
    with pytest.raises(BackupError, match="is not a readable kfunc backup.*delete it"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    assert (tmp_path / "backup.npz").read_bytes() == content  # never overwritten by a failed restore


@pytest.mark.parametrize("kwargs, match", [
    ({"backup_dir": ""}, "backup_dir must be a folder path"),
    ({"backup_dir": "b", "save_freq": 0}, "save_freq must be 'epoch' or a positive int"),
    ({"backup_dir": "b", "save_freq": "batch"}, "save_freq must be 'epoch' or a positive int"),
    ({"backup_dir": "b", "backend": "pickle"}, "backend must be 'npz' or 'orbax'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BackupAndRestore(**kwargs)


# ---------------------------------------------------------------------- damaged fields
def _meta_bytes(meta) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode() if not isinstance(meta, bytes) else meta, np.uint8)


DAMAGES = {
    "no meta": lambda arrays, meta: arrays.pop("meta"),
    "meta not UTF-8": lambda arrays, meta: arrays.update(meta=_meta_bytes(b"\xff\xfe{")),
    "meta not JSON": lambda arrays, meta: arrays.update(meta=_meta_bytes(b"{'epoch': 1")),
    "meta deeply nested": lambda arrays, meta: arrays.update(meta=_meta_bytes(b"[" * 100_000 + b"]" * 100_000)),
    "meta of floats": lambda arrays, meta: arrays.update(meta=arrays["meta"].astype(np.float32)),
    "meta a list": lambda arrays, meta: arrays.update(meta=_meta_bytes([1, 2])),
    "meta without epoch": lambda arrays, meta: arrays.update(meta=_meta_bytes({k: v for k, v in meta.items() if k != "epoch"})),
    "epoch a string": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "epoch": "1"})),
    "epoch negative": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "epoch": -1})),
    "batch a float": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "batch": 1.5})),
    "seed of one int": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "shuffle_seed": [1]})),
    "seed a string": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "shuffle_seed": "ab"})),
    "seed negative": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "shuffle_seed": [1, -2]})),
    "has_metrics a string": lambda arrays, meta: arrays.update(meta=_meta_bytes({**meta, "has_metrics": "yes"})),
    "no step": lambda arrays, meta: arrays.pop("step"),
    "step a vector": lambda arrays, meta: arrays.update(step=np.zeros(3, arrays["step"].dtype)),
    "step a float": lambda arrays, meta: arrays.update(step=arrays["step"].astype(np.float64)),
    "key of another shape": lambda arrays, meta: arrays.update(key=np.zeros(5, arrays["key"].dtype)),
    "no key": lambda arrays, meta: arrays.pop("key"),
    "a stray array": lambda arrays, meta: arrays.update(payload=np.zeros(3)),
    "a weight of another dtype": lambda arrays, meta: arrays.update(
        {next(n for n in arrays if n.startswith("params")): np.zeros(1, np.complex64)}),
}


@pytest.fixture(scope="module")
def valid_backup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid_backup")
    x, y = _data()
    _model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[BackupAndRestore(folder, delete_checkpoint=False)])
    with np.load(folder / "backup.npz") as stored:
        arrays = {name: stored[name] for name in stored.files}
    return arrays, json.loads(arrays["meta"].tobytes())


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_every_damaged_field_of_a_backup_is_a_backup_error(tmp_path, valid_backup, damage):
    arrays, meta = valid_backup
    arrays = dict(arrays)
    DAMAGES[damage](arrays, meta)
    np.savez(tmp_path / "backup.npz", **arrays)
    x, y = _data()
    model = _model()
    before = model.get_weights()
    with pytest.raises(BackupError, match=r"backup.*delete it|does not fit this model"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
