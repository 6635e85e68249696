"""Weights matched by structure (Keras 3's weights layout), not by generated layer names; the
``.npz``, ``.safetensors`` and ``.weights.h5`` formats; mismatches, ``skip_mismatch``; whole-model
files in ``load_weights``; float16 and bfloat16 weights; unknown suffixes."""

import json
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc.errors import WeightsError
from kfunc.saving import SavingError, WeightsFileError
from kfunc.saving.safetensors_file import read_safetensors
from kfunc.saving.structure import structural_weights

FORMATS = ["w.weights.npz", "w.safetensors", "w.weights.h5"]
rng = np.random.default_rng(0)


def _model(units=4, dtype=None):
    inputs = kfunc.Input(shape=(3,))
    x = layers.Dense(units, activation="relu", dtype=dtype)(inputs)
    x = layers.BatchNormalization(dtype=dtype)(x)
    inner_in = kfunc.Input(shape=(units,))
    inner = kfunc.Model(inner_in, layers.Dense(2, dtype=dtype)(inner_in))
    return kfunc.Model(inputs, inner(x))


def _randomize(model):
    model.set_weights([(rng.random(w.shape) + 0.5).astype(w.dtype) for w in model.get_weights()])
    return model


def _assert_same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32))


def test_structural_paths_follow_keras_weights_layout():
    inputs = kfunc.Input(shape=(5, 3))
    x = layers.LSTM(4, return_sequences=True)(inputs)
    x = layers.Bidirectional(layers.GRU(2))(x)
    model = kfunc.Model(inputs, layers.Dense(1)(layers.Dense(3)(x)))
    assert [entry.path for entry in structural_weights(model)] == [
        "layers/lstm/cell/vars/0", "layers/lstm/cell/vars/1", "layers/lstm/cell/vars/2",
        "layers/bidirectional/backward_layer/cell/vars/0", "layers/bidirectional/backward_layer/cell/vars/1",
        "layers/bidirectional/backward_layer/cell/vars/2",
        "layers/bidirectional/forward_layer/cell/vars/0", "layers/bidirectional/forward_layer/cell/vars/1",
        "layers/bidirectional/forward_layer/cell/vars/2",
        "layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0", "layers/dense_1/vars/1",
    ]
    nested = _model()
    assert [entry.path for entry in structural_weights(nested)][-2:] == [
        "layers/functional/layers/dense/vars/0", "layers/functional/layers/dense/vars/1"]


@pytest.mark.parametrize("name", FORMATS)
def test_same_architecture_built_again_loads_by_structure(name, tmp_path):
    saved = _randomize(_model())
    saved.save_weights(tmp_path / name)
    rebuilt = _model()  # the same process: its layers are dense_2, batch_normalization_1 ...
    assert {layer.name for layer in rebuilt.layers}.isdisjoint({layer.name for layer in saved.layers[1:]})
    rebuilt.load_weights(tmp_path / name)
    _assert_same_weights(saved, rebuilt)
    x = rng.random((4, 3)).astype("float32")
    np.testing.assert_allclose(rebuilt.predict(x), saved.predict(x), rtol=1e-6)


@pytest.mark.parametrize("name", FORMATS)
def test_mismatch_names_the_layer_and_both_shapes_and_changes_nothing(name, tmp_path):
    _randomize(_model(units=4)).save_weights(tmp_path / name)
    other = _model(units=5)
    before = other.get_weights()
    with pytest.raises(WeightsError, match=(
        r"do not fit model .*Layer 'dense_\d+' \(Dense\): weight 'kernel' \(layers/dense/vars/0\) has shape "
        r"\(3, 5\) in the model but \(3, 4\) in the file.*skip_mismatch=True"
    )):
        other.load_weights(tmp_path / name)
    _assert_same_weights_list(before, other.get_weights())


def _assert_same_weights_list(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_skip_mismatch_loads_the_layers_that_fit_and_warns_about_the_others(tmp_path):
    saved = _randomize(_model(units=4))
    saved.save_weights(tmp_path / "w.safetensors")
    other = _model(units=5)
    inner_before = other.layers[-1].get_weights()
    with pytest.warns(UserWarning, match=r"skip_mismatch=True\) skipped.*Layer 'dense_\d+' \(Dense\).*\(3, 5\).*\(3, 4\)"):
        other.load_weights(tmp_path / "w.safetensors", skip_mismatch=True)
    # Dense(4 -> 5 units) and the layers after it differ in shape; nothing of them is loaded.
    _assert_same_weights_list(inner_before, other.layers[-1].get_weights())
    smaller = kfunc.Sequential([kfunc.Input(shape=(3,)), layers.Dense(4)])
    with pytest.warns(UserWarning, match=r"does not have: \['layers/batch_normalization/vars/0'"):
        smaller.load_weights(tmp_path / "w.safetensors", skip_mismatch=True)
    _assert_same_weights_list(saved.layers[1].get_weights(), smaller.get_weights())


def test_load_weights_accepts_a_whole_model_file(tmp_path):
    saved = _randomize(_model())
    saved.save(tmp_path / "m.kfunc")
    rebuilt = _model()
    rebuilt.load_weights(tmp_path / "m.kfunc")
    _assert_same_weights(saved, rebuilt)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", FORMATS)
def test_half_precision_weights_round_trip_exactly(dtype, name, tmp_path):
    saved = _randomize(_model(dtype=dtype))
    assert saved.weights[0].dtype == jnp.dtype(dtype)
    saved.save_weights(tmp_path / name)
    rebuilt = _model(dtype=dtype)
    rebuilt.load_weights(tmp_path / name)
    _assert_same_weights(saved, rebuilt)


def test_float16_weights_in_model_files(tmp_path):
    saved = _randomize(_model(dtype="float16"))
    saved.save(tmp_path / "m.kfunc")
    _assert_same_weights(saved, kfunc.models.load_model(tmp_path / "m.kfunc"))


def test_bfloat16_npz_stores_raw_bits_with_a_dtype_tag(tmp_path):
    _randomize(_model(dtype="bfloat16")).save_weights(tmp_path / "w.npz")
    with zipfile.ZipFile(tmp_path / "w.npz") as archive:
        marker = json.loads(archive.read("kfunc_weights.json"))
        assert "layers/dense/vars/0.npy" in archive.namelist()
    assert marker["format"] == "kfunc.weights" and "layers/dense/vars/0" in marker["bfloat16"]


def test_safetensors_file_is_read_by_the_safetensors_package(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = _randomize(_model())
    model.save_weights(tmp_path / "w.safetensors")
    theirs = safetensors_numpy.load_file(str(tmp_path / "w.safetensors"))
    ours = {entry.path: entry.variable.numpy() for entry in structural_weights(model)}
    assert sorted(theirs) == sorted(ours)
    for key, value in ours.items():
        assert theirs[key].dtype == value.dtype
        np.testing.assert_array_equal(theirs[key], value)


def test_file_written_by_the_safetensors_package_loads(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = _model()
    arrays = {entry.path: rng.random(entry.variable.shape).astype("float32") for entry in structural_weights(model)}
    safetensors_numpy.save_file(arrays, str(tmp_path / "theirs.safetensors"))
    model.load_weights(tmp_path / "theirs.safetensors")
    for entry in structural_weights(model):
        np.testing.assert_array_equal(entry.variable.numpy(), arrays[entry.path])


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize(("header", "data", "message"), [
    ({"a": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 4 << 40]}}, b"\0" * 8, r"declares shape \[1099511627776\]"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, r"starts at byte 4 where 8 was expected"),
    ({"a": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, r"has dtype 'O'"),
])
def test_hostile_safetensors_is_refused(header, data, message, tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(_safetensors_bytes(header, data))
    with pytest.raises(WeightsFileError, match=message):
        read_safetensors(path)
    path.write_bytes((1 << 60).to_bytes(8, "little") + b"{}")
    with pytest.raises(WeightsFileError, match=r"declares a header of 1152921504606846976 bytes"):
        _model().load_weights(path)


def test_unknown_suffix_is_refused_listing_the_formats(tmp_path):
    model = _model()
    with pytest.raises(SavingError, match=r"save_weights cannot tell .*w\.pt'.*'\.npz'.*'\.safetensors'.*'\.h5'"):
        model.save_weights(tmp_path / "w.pt")
    with pytest.raises(WeightsFileError, match=r"load_weights cannot tell .*w\.bin'.*'\.safetensors'.*'\.kfunc' and '\.keras'"):
        model.load_weights(tmp_path / "w.bin")
    assert not (tmp_path / "w.pt").exists()


def test_weights_files_of_the_first_format_still_load(tmp_path):
    model = _model()
    arrays = {v.path: (rng.random(v.shape) + 1).astype("float32") for v in model.weights}
    np.savez(tmp_path / "old.npz", **arrays)
    model.load_weights(tmp_path / "old.npz")
    assert all(np.array_equal(v.numpy(), arrays[v.path]) for v in model.weights)


def test_overwrite_false_keeps_the_existing_file(tmp_path):
    model = _model()
    model.save_weights(tmp_path / "w.npz")
    with pytest.raises(SavingError, match=r"exists and overwrite=False"):
        model.save_weights(tmp_path / "w.npz", overwrite=False)
