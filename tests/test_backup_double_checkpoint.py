"""BackupAndRestore(double_checkpoint=True): the backup before the latest is kept, and a latest
backup that cannot be read gives way to it (Keras 3's argument), without ever losing a good one."""

import inspect
import os

import numpy as np
import pytest
from test_backup import StopAt

import kfunc
from kfunc.callbacks import BackupAndRestore, BackupError
from kfunc.layers import Dense, Dropout, Input
from kfunc.models import Model


def _model():
    kfunc.utils.set_random_seed(3)
    inputs = Input((4,))
    model = Model(inputs, Dense(1)(Dropout(0.25)(Dense(8, activation="relu")(inputs))))
    model.compile("rmsprop", "mse")
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(24, 4)).astype("float32"), rng.normal(size=(24, 1)).astype("float32")


EPOCHS = 4


@pytest.fixture(scope="module")
def reference_weights():
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0)
    return model.get_weights()


def _interrupted(folder):
    """A run stopped as epoch 3 begins: the latest backup is from after epoch 2 (index 1), the
    previous one from after epoch 1."""
    model = _model()
    x, y = _data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                  callbacks=[BackupAndRestore(folder, double_checkpoint=True), StopAt(2)])
    return model


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)


def test_a_truncated_latest_backup_resumes_exactly_from_the_previous_one(tmp_path, reference_weights):
    model, (x, y) = _interrupted(tmp_path), _data()
    assert (tmp_path / "backup.npz").exists() and (tmp_path / "backup.previous.npz").exists()
    _truncate(tmp_path / "backup.npz")
    backup = BackupAndRestore(tmp_path, double_checkpoint=True, delete_checkpoint=False)
    with pytest.warns(UserWarning, match=r"latest backup '.*backup\.npz' cannot be restored \(.*not a readable.*\); "
                                         r"restoring the previous one, '.*backup\.previous\.npz'"):
        history = model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0, callbacks=[backup])
    assert history.epoch == [1, 2, 3]  # from the previous backup, taken after epoch 1
    for ours, theirs in zip(model.get_weights(), reference_weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # The damaged file was replaced, never kept as "previous": both backups now read.
    for name in ("backup.npz", "backup.previous.npz"):
        with np.load(tmp_path / name) as stored:
            assert "meta" in stored.files


def test_a_crash_between_rename_and_write_leaves_the_previous_backup_to_resume_from(tmp_path, reference_weights):
    model, (x, y) = _interrupted(tmp_path), _data()
    os.remove(tmp_path / "backup.npz")  # what a crash right after the rename leaves
    history = model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                        callbacks=[BackupAndRestore(tmp_path, double_checkpoint=True)])
    assert history.epoch == [1, 2, 3]
    for ours, theirs in zip(model.get_weights(), reference_weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert not any(tmp_path.iterdir())  # delete_checkpoint removes both files


def test_both_backups_unreadable_is_a_backup_error_naming_both(tmp_path):
    model, (x, y) = _interrupted(tmp_path), _data()
    _truncate(tmp_path / "backup.npz")
    _truncate(tmp_path / "backup.previous.npz")
    before = model.get_weights()
    with pytest.warns(UserWarning, match="restoring the previous one"), pytest.raises(
            BackupError, match=r"neither backup in .* can be restored: the latest, '.*backup\.npz' \(.*\), nor the "
                               r"previous, '.*backup\.previous\.npz' \(.*\); delete the folder"):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path, double_checkpoint=True)])
    for ours, theirs in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert (tmp_path / "backup.previous.npz").exists()  # nothing deleted by a failed restore


def test_without_double_checkpoint_a_damaged_backup_stays_an_error(tmp_path):
    model, (x, y) = _interrupted(tmp_path), _data()
    _truncate(tmp_path / "backup.npz")
    with pytest.raises(BackupError, match=r"backup\.npz' is not a readable kfunc backup"):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0, callbacks=[BackupAndRestore(tmp_path)])


def test_arguments_as_keras_3_orders_them():
    keras = pytest.importorskip("keras")
    theirs = list(inspect.signature(keras.callbacks.BackupAndRestore).parameters)
    ours = inspect.signature(BackupAndRestore).parameters
    assert list(ours)[: len(theirs)] == theirs
    assert all(ours[name].default == inspect.signature(keras.callbacks.BackupAndRestore).parameters[name].default
               for name in theirs)
    assert BackupAndRestore("b", "epoch", True).double_checkpoint is True  # third positional, as in Keras
    with pytest.raises(ValueError, match="double_checkpoint must be True or False, received 'yes'"):
        BackupAndRestore("b", double_checkpoint="yes")


def test_orbax_keeps_two_checkpoints_and_falls_back_the_same_way(tmp_path, reference_weights):
    pytest.importorskip("orbax.checkpoint")
    model, (x, y) = _model(), _data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path, double_checkpoint=True, backend="orbax"), StopAt(2)])
    steps = sorted(int(name) for name in os.listdir(tmp_path / "orbax") if name.isdigit())
    assert steps == [3, 6]  # 3 steps per epoch: after epochs 1 and 2
    for path in (tmp_path / "orbax" / "6").rglob("*"):
        if path.is_file():
            path.write_bytes(b"")
    with pytest.warns(UserWarning, match=r"latest backup '.*orbax/6' cannot be restored .*previous one, '.*orbax/3'"):
        history = model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                            callbacks=[BackupAndRestore(tmp_path, double_checkpoint=True, backend="orbax",
                                                        delete_checkpoint=False)])
    assert history.epoch == [1, 2, 3]
    for ours, theirs in zip(model.get_weights(), reference_weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert sorted(int(name) for name in os.listdir(tmp_path / "orbax") if name.isdigit()) == [9, 12]
