"""ModelCheckpoint: whole models or weights, by epoch or every n batches (file names as Keras 3
makes them), best-only with a threshold, and its errors; TerminateOnNaN(raise_error=True)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kfunc  # noqa: E402
from kfunc.callbacks import ModelCheckpoint, TerminateOnNaN  # noqa: E402
from kfunc.errors import CallbackError, NonFiniteLossError  # noqa: E402

rng = np.random.default_rng(7)
X = rng.random((48, 4), dtype=np.float32)
Y = (X @ rng.random((4, 1), dtype=np.float32)).astype(np.float32)


def fitted(lib, callbacks, epochs=2, **fit_kwargs):
    model = lib.Sequential([lib.layers.Input(shape=(4,)), lib.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, Y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False, **fit_kwargs)
    return model


def test_whole_model_per_epoch_with_formatted_names(tmp_path):
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.kfunc")
    model = fitted(kfunc, [ModelCheckpoint(pattern)], validation_data=(X, Y))
    names = sorted(os.listdir(tmp_path))
    assert [n[:8] for n in names] == ["ckpt-01-", "ckpt-02-"] and all(n.endswith(".kfunc") for n in names)
    loaded = kfunc.models.load_model(tmp_path / names[-1])
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)


def test_save_freq_counts_batches_as_keras(tmp_path):
    made = {}
    for name, lib in (("ours", kfunc), ("theirs", keras)):
        folder = tmp_path / name
        pattern = str(folder / "w-{epoch}-{batch}.weights.h5")
        fitted(lib, [lib.callbacks.ModelCheckpoint(pattern, save_weights_only=True, save_freq=2)])
        made[name] = sorted(os.listdir(folder))
    assert made["ours"] == made["theirs"] == ["w-1-2.weights.h5", "w-2-1.weights.h5", "w-2-3.weights.h5"]


def test_best_only_with_threshold_and_weights_file(tmp_path):
    path = tmp_path / "best.weights.npz"
    callback = ModelCheckpoint(str(path), monitor="loss", save_best_only=True, save_weights_only=True,
                               initial_value_threshold=0.0)
    fitted(kfunc, [callback])
    assert not path.exists()  # no loss is below the threshold 0
    callback = ModelCheckpoint(str(path), monitor="loss", save_best_only=True, save_weights_only=True)
    model = fitted(kfunc, [callback])
    restored = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    restored.load_weights(path)
    np.testing.assert_array_equal(restored.get_weights()[0], model.get_weights()[0])


def test_missing_monitored_value_warns_and_saves(tmp_path):
    path = tmp_path / "m.kfunc"
    with pytest.warns(UserWarning, match="can save the best model only when 'val_loss' is logged"):
        fitted(kfunc, [ModelCheckpoint(str(path), save_best_only=True)], epochs=1)
    assert path.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"filepath": "m.keras"}, r"files ending in '.kfunc' \(kfunc reads Keras's '.keras' files but writes whole "
                              r"models as '.kfunc'\), received filepath='m.keras'"),
    ({"filepath": "m.kfunc", "save_weights_only": True}, r"must end in a weights suffix .*received filepath='m.kfunc'"),
    ({"filepath": "m.kfunc", "save_freq": "batch"}, r"save_freq must be 'epoch' or a positive int \(batches\), "
                                                    r"received save_freq='batch'"),
])
def test_checkpoint_argument_errors(kwargs, message):
    with pytest.raises(CallbackError, match=message):
        ModelCheckpoint(**kwargs)


def test_unknown_name_in_the_pattern_is_a_clear_error(tmp_path):
    with pytest.raises(CallbackError, match=r"cannot format filepath .* it names 'val_acc', which is not among "
                                            r"\['epoch', 'loss'\]"):
        fitted(kfunc, [ModelCheckpoint(str(tmp_path / "{val_acc}.kfunc"))], epochs=1)


def test_terminate_on_nan_raise_error_raises_and_rolls_back():
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=3e38), loss="mse")
    before = model.get_weights()
    with pytest.raises(NonFiniteLossError, match=r"TerminateOnNaN\(raise_error=True\): batch 0 of epoch 1 had a "
                                                 "non-finite loss"):
        model.fit(X, Y * 100, batch_size=16, epochs=2, verbose=0, callbacks=[TerminateOnNaN(raise_error=True)])
    np.testing.assert_array_equal(model.get_weights()[0], before[0])
