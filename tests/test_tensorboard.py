"""TensorBoard writes scalar summaries (loss, metrics, learning rate; train and validation runs
in Keras 3's layout) as event files; read back here record by record with the protobuf classes
of the writer package."""

import glob
import os
import struct
import sys

import numpy as np
import pytest

import kfunc

pytest.importorskip("tensorboardX")
from tensorboardX.proto.event_pb2 import Event  # noqa: E402

rng = np.random.default_rng(2)
X = rng.random((32, 4), dtype=np.float32)
Y = (X @ rng.random((4, 1), dtype=np.float32)).astype(np.float32)


def read_scalars(folder) -> dict:
    """``{tag: [(step, value), ...]}`` from the TFRecord event files in ``folder``: each record is
    a little-endian uint64 length, its CRC, the serialized ``Event`` and the data's CRC."""
    scalars = {}
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        data = open(path, "rb").read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("tb")
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    history = model.fit(X, Y, batch_size=8, epochs=3, verbose=0, validation_data=(X[:16], Y[:16]),
                        callbacks=[kfunc.callbacks.TensorBoard(log_dir, update_freq=2)])
    return log_dir, history.history


def test_epoch_scalars_match_the_history(logged):
    log_dir, history = logged
    train, validation = read_scalars(log_dir / "train"), read_scalars(log_dir / "validation")
    for name in ("loss", "mae"):
        assert [s for s, _ in train[f"epoch_{name}"]] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in train[f"epoch_{name}"]], history[name], rtol=1e-6)
        np.testing.assert_allclose([v for _, v in validation[f"epoch_{name}"]], history[f"val_{name}"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [0.05] * 3, rtol=1e-6)
    assert [s for s, _ in validation["evaluation_loss_vs_iterations"]] == [4, 8, 12]


def test_batch_scalars_every_update_freq_steps(logged):
    log_dir, _ = logged
    train = read_scalars(log_dir / "train")
    assert [s for s, _ in train["batch_loss"]] == [2, 4, 6, 8, 10, 12]
    assert all(np.isfinite(v) for _, v in train["batch_loss"])


def test_missing_writer_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'kfunc\[tensorboard\]'"):
        kfunc.callbacks.TensorBoard("logs")


def test_unsupported_arguments_are_refused():
    with pytest.raises(kfunc.errors.CallbackError, match=r"scalar summaries and weight histograms only, received "
                                                         r"profile_batch=\(2, 4\)"):
        kfunc.callbacks.TensorBoard("logs", profile_batch=(2, 4))
