"""Loading never runs code, never exhausts memory, never crashes: every bad file raises one
documented error (``ModelFileError`` for model files, ``WeightsFileError`` for weights files,
``UnknownObjectError`` for names found nowhere), and a fuzz of random and mutated files gets
nothing else."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kfunc
from kfunc import layers as L
from kfunc.models import Model, load_model
from kfunc.saving import ModelFileError, SavedFileError, UnknownObjectError, WeightsFileError, model_file
from kfunc.io import strict_zip as archive_lib
from kfunc.saving.weights import read_weights_file


def _model():
    inputs = kfunc.Input(shape=(4,))
    h = L.Dense(3, activation="relu", name="hidden")(inputs)
    return Model(inputs, L.Dense(2, name="out")(h), name="small")


@pytest.fixture
def saved(tmp_path):
    """A valid model file of a compiled and trained model."""
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4), "float32"), np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    path = tmp_path / "m.kfunc"
    model.save(path)
    return path


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _write_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _edit_config(path, edit):
    members = _members(path)
    document = json.loads(members["config.json"])
    edit(document)
    members["config.json"] = json.dumps(document).encode()
    return _write_zip(path, members)


def _layer_spec(document, name):
    return next(s for s in document["model"]["config"]["layers"] if s["config"]["name"] == name)


def _npy(header: str, payload: bytes) -> bytes:
    text = header.encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


class SideEffect:
    """Unpickling this creates ``path``: the payload a pickle-reading loader would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _pickled_npy(marker) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([SideEffect(marker)], dtype=object), allow_pickle=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------- unreadable files
def test_missing_path_names_it(tmp_path):
    with pytest.raises(ModelFileError, match=r"No kfunc model file at '.*nothing\.kfunc'"):
        load_model(tmp_path / "nothing.kfunc")
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)
    with pytest.raises(WeightsFileError, match=r"No weights file.*nothing\.npz"):
        read_weights_file(tmp_path / "nothing.npz")


def test_empty_file(tmp_path):
    (tmp_path / "empty.kfunc").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"is empty \(0 bytes\)"):
        load_model(tmp_path / "empty.kfunc")


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable zip archive"):
        load_model(saved)


def test_bit_flip_inside_a_member_fails_its_crc(saved):
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("weights/hidden/kernel.npy")
    data = bytearray(saved.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size - 3] ^= 0x10
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"'weights/hidden/kernel\.npy' is corrupt \(BadZipFile: Bad CRC-32"):
        load_model(saved)


def test_not_a_model_file(tmp_path):
    path = _write_zip(tmp_path / "other.kfunc", {"config.json": b'{"format": "something else"}'})
    with pytest.raises(ModelFileError, match="does not declare format 'kfunc.model'"):
        load_model(path)


# ---------------------------------------------------------------------- names that must not resolve
@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "MyUnregisteredLayer"])
def test_a_config_naming_an_unknown_class_never_imports_it(saved, name, monkeypatch):
    ran = []
    monkeypatch.setattr(os, "system", lambda *args: ran.append(args))
    _edit_config(saved, lambda d: _layer_spec(d, "hidden").update(class_name=name))
    with pytest.raises(UnknownObjectError, match=rf"'{name}'.*kfunc\.saving\.register"):
        load_model(saved)
    assert ran == []


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "eval", "__import__"])
def test_a_config_naming_an_unknown_function_never_resolves_it(saved, name):
    def edit(document):
        _layer_spec(document, "hidden")["config"]["activation"] = {"__kfunc__": "object", "name": name}

    _edit_config(saved, edit)
    with pytest.raises(UnknownObjectError, match=f"'{name}'"):
        load_model(saved)


def test_unknown_built_in_names_are_refused(saved):
    def edit(document):
        _layer_spec(document, "hidden")["config"]["kernel_initializer"] = {"__kfunc__": "initializer", "name": "os.system"}

    _edit_config(saved, edit)
    with pytest.raises(ModelFileError, match="'os.system' is not a built-in initializer"):
        load_model(saved)


def test_a_reference_cycle_is_an_error_not_a_hang(saved):
    def edit(document):
        spec = _layer_spec(document, "hidden")
        spec["inbound_nodes"][0]["args"] = [{"__kfunc__": "tensor", "ref": ["out", 0, 0]}]

    _edit_config(saved, edit)
    with pytest.raises(ModelFileError, match="never computed"):
        load_model(saved)


# ---------------------------------------------------------------------- pickles, names, bombs
def test_a_pickled_member_is_refused_without_unpickling(saved, tmp_path):
    probe = tmp_path / "probe"
    np.load(io.BytesIO(_pickled_npy(probe)), allow_pickle=True)  # the payload is live ...
    assert probe.exists()
    marker = tmp_path / "marker"
    members = _members(saved)
    members["weights/hidden/kernel.npy"] = _pickled_npy(marker)
    _write_zip(saved, members)
    with pytest.raises(ModelFileError, match="only plain numeric and boolean dtypes"):
        load_model(saved)
    npz = _write_zip(tmp_path / "w.npz", {"hidden/kernel.npy": _pickled_npy(marker)})
    with pytest.raises(WeightsFileError, match="never objects"):
        read_weights_file(npz)
    with pytest.raises(WeightsFileError):
        _model().load_weights(npz)
    assert not marker.exists()  # ... but was never run


@pytest.mark.parametrize("name", ["../evil.npy", "weights/../../evil.npy", "/etc/evil.npy", "C:/evil.npy", "a\\..\\b.npy"])
def test_unsafe_member_names_are_refused(saved, tmp_path, name):
    members = _members(saved)
    members[name] = members["weights/out/bias.npy"]
    _write_zip(saved, members)
    with pytest.raises(ModelFileError, match="is unsafe"):
        load_model(saved)
    npz = _write_zip(tmp_path / "w.npz", {name: members["weights/out/bias.npy"]})
    with pytest.raises(WeightsFileError, match="is unsafe"):
        read_weights_file(npz)


def test_a_shape_bomb_is_refused_before_allocating(saved, tmp_path):
    bomb = _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000000), }", b"\x00" * 16)
    members = _members(saved)
    members["weights/hidden/kernel.npy"] = bomb
    _write_zip(saved, members)
    with pytest.raises(ModelFileError, match=r"declares shape \(1000000, 1000000, 1000000\).*holds 16 bytes"):
        load_model(saved)
    with pytest.raises(WeightsFileError, match="declares shape"):
        read_weights_file(_write_zip(tmp_path / "w.npz", {"x.npy": bomb}))


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "__import__('os').system('echo hacked')",
    ],
)
def test_npy_headers_other_than_plain_arrays_are_refused(tmp_path, header):
    with pytest.raises(WeightsFileError, match=r"'x\.npy'"):
        read_weights_file(_write_zip(tmp_path / "w.npz", {"x.npy": _npy(header, b"\x00" * 4)}))


def test_a_huge_declared_size_is_refused_before_reading(saved, tmp_path):
    members = _members(saved)
    path = _write_zip(tmp_path / "bomb.kfunc", members, compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the first member's central directory entry
    data[central + 24 : central + 28] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="decompression bomb"):
        load_model(path)


def test_member_and_total_size_caps(saved, tmp_path, monkeypatch):
    # The absolute caps; the cap in proportion to the file is tested in test_hostile_files.py.
    monkeypatch.setattr(archive_lib, "MAX_EXPANSION", 1100)
    zeros = _npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4000000,), }", bytes(4_000_000))
    path = _write_zip(tmp_path / "w.npz", {"x.npy": zeros}, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000  # 4 MB that deflate to a few kB
    assert read_weights_file(path)["x"].shape == (4_000_000,)
    monkeypatch.setattr(archive_lib, "MAX_MEMBER_BYTES", 1_000_000)
    with pytest.raises(WeightsFileError, match="over the cap of 1000000"):
        read_weights_file(path)
    monkeypatch.setattr(archive_lib, "MAX_MEMBER_BYTES", 16 << 30)
    monkeypatch.setattr(archive_lib, "MAX_TOTAL_BYTES", 1_000_000)
    with pytest.raises(WeightsFileError, match="in all, over the cap"):
        read_weights_file(path)


def test_config_over_its_cap(saved, monkeypatch):
    monkeypatch.setattr(model_file, "MAX_CONFIG_BYTES", 200)
    with pytest.raises(ModelFileError, match=r"config\.json declares \d+ bytes, over the cap of 200"):
        load_model(saved)


def test_weights_that_do_not_fit_the_described_model(saved):
    members = _members(saved)
    members["weights/hidden/kernel.npy"] = members["weights/out/bias.npy"]
    _write_zip(saved, members)
    with pytest.raises(ModelFileError, match=r"weight 'hidden/kernel' is float32\[2\], the model needs float32\[4, 3\]"):
        load_model(saved)


# ---------------------------------------------------------------------- fuzz
_MUTATION = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "overwrite"]),
    st.floats(0, 1, exclude_max=True),
    st.binary(min_size=1, max_size=8),
    st.integers(0, 7),
)


def _mutate(data: bytes, mutation) -> bytes:
    kind, where, payload, bit = mutation
    at = int(where * len(data))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + payload + data[at:]
    return data[:at] + payload + data[at + len(payload) :]


PROBE = np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """The bytes of a valid model file and weights file, with what loading them must give back:
    the model file's members (config, weights, optimizer state), the weights by name, and the
    trained model's predictions on ``PROBE`` ``(3, 4)``."""
    folder = tmp_path_factory.mktemp("fuzz")
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4), "float32"), np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    model.save(folder / "m.kfunc")
    model.save_weights(folder / "w.npz")
    expected = {
        "members": _members(folder / "m.kfunc"),
        "weights": {v.path: np.asarray(v.value) for v in model.weights},
        "predictions": model.predict(PROBE, verbose=0),
    }
    return folder, (folder / "m.kfunc").read_bytes(), (folder / "w.npz").read_bytes(), expected


def _assert_same_arrays(got: dict, expected: dict):
    assert list(got) == list(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        np.testing.assert_array_equal(got[name], array, err_msg=name)


_FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@_FUZZ
@given(st.one_of(st.binary(max_size=512).map(lambda b: ("raw", b)), st.lists(_MUTATION, min_size=1, max_size=3).map(lambda m: ("mutated", m))))
def test_fuzz_load_model_only_succeeds_or_raises_model_file_error(valid_files, case):
    folder, model_bytes, _, expected = valid_files
    kind, value = case
    data = value if kind == "raw" else model_bytes
    if kind == "mutated":
        for mutation in value:
            data = _mutate(data, mutation) if data else data
    path = folder / "fuzzed.kfunc"
    path.write_bytes(data)
    try:
        loaded = load_model(path)
    except ModelFileError:
        return
    # A file that loads is the saved model (zip CRCs guard every member; a mutation that loads
    # touched only zip bookkeeping): saved again, it gives the very same members (config,
    # weights, compile settings, optimizer state), and it predicts what the trained model did.
    assert kind == "mutated", "512 random bytes loaded as a model"
    loaded.save(folder / "resaved.kfunc")
    assert _members(folder / "resaved.kfunc") == expected["members"]
    np.testing.assert_array_equal(loaded.predict(PROBE, verbose=0), expected["predictions"])


@_FUZZ
@given(st.lists(_MUTATION, min_size=1, max_size=3))
def test_fuzz_weights_reader_only_succeeds_or_raises_weights_file_error(valid_files, mutations):
    folder, _, weights_bytes, expected = valid_files
    data = weights_bytes
    for mutation in mutations:
        data = _mutate(data, mutation) if data else data
    path = folder / "fuzzed.npz"
    path.write_bytes(data)
    try:
        arrays = read_weights_file(path)
    except WeightsFileError:
        return
    # A file that reads holds exactly the saved weights, by name, dtype, shape and value.
    # Weights files name arrays by structural path (layers/dense/vars/0 ...): compare in order.
    _assert_same_arrays(dict(zip(expected["weights"], arrays.values(), strict=True)), expected["weights"])


def test_a_damaged_central_directory_entry_cannot_hide_members(valid_files):
    """A wrong comment length in the first central-directory entry makes zipfile read the entries
    after it as that comment: the archive would open with members missing (found by the fuzz test)."""
    folder, _, weights_bytes, expected = valid_files
    data = bytearray(weights_bytes)
    entry = data.index(b"PK\x01\x02")
    data[entry + 33] = 2  # the file comment length, now 512 (bytes 32-33 of a central-directory header)
    path = folder / "hidden.npz"
    path.write_bytes(bytes(data))
    count = len(expected["weights"]) + 1  # the arrays and the manifest
    with pytest.raises(WeightsFileError, match=rf"declares {count} members but \d+ could be read; the file is corrupt"):
        read_weights_file(path)


def test_the_error_family():
    assert issubclass(UnknownObjectError, ModelFileError)
    assert issubclass(ModelFileError, SavedFileError) and issubclass(WeightsFileError, SavedFileError)
    assert issubclass(SavedFileError, ValueError) and issubclass(SavedFileError, kfunc.errors.KfuncError)
