"""Hostile and damaged files: export files with forbidden operations, bit flips, truncation,
deep JSON and size lies; FIFOs and devices given to every loader; caps in proportion to the
file; the one dtype rule of loading; and the layering of ``kfunc/io``. (Saving: test_safe_saving.py.)"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import os
import random
import struct
import threading
import tracemalloc
import zipfile
from pathlib import Path

import flatbuffers  # noqa: E402,F401  (export needs it)
import jax
import numpy as np
import pytest
from test_export import rewrite

import kfunc
from kfunc.errors import ExportError, WeightsError
from kfunc.io import strict_zip
from kfunc.layers import Dense, Input
from kfunc.models import Model, load_model
from kfunc.saving import ModelFileError, WeightsFileError

ROOT = Path(kfunc.__file__).resolve().parent


def small_model(name="small"):
    inputs = Input(shape=(6,), name="x")
    hidden = Dense(5, activation="relu", name="hidden")(inputs)
    return Model(inputs, Dense(2, name="out")(hidden), name=name)


@pytest.fixture
def exported(tmp_path):
    model = small_model()
    path = tmp_path / "model.kfx"
    model.export(path, params="argument")
    return model, path


def members_of(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# ---------------------------------------------------------------------- export: operations
def with_operation(path, operation: str, *, disabled_target: str | None = None) -> None:
    """Rewrite the export at ``path`` so its main function also runs ``operation`` (StableHLO
    text), with the manifest's hashes fixed: what a crafted file can do."""
    from jax._src.export import _export
    from jax._src.interpreters import mlir as jax_mlir
    from jax._src.lib.mlir import ir

    function = jax.export.deserialize(bytearray(members_of(path)["function.jaxexport"]))
    lines = function.mlir_module().split("\n")
    lines.insert(next(i for i, line in enumerate(lines) if line.startswith("    return")), "    " + operation)
    with jax_mlir.make_ir_context():
        module = ir.Module.parse("\n".join(lines))
        serialized = _export._module_to_bytecode(module)
    checks = function.disabled_safety_checks
    if disabled_target:  # the file claims the check for this target was disabled on export
        checks = (*checks, jax.export.DisabledSafetyCheck.custom_call(disabled_target))
    crafted = dataclasses.replace(function, mlir_module_serialized=serialized, disabled_safety_checks=checks)
    rewrite(path, replace={"function.jaxexport": bytes(crafted.serialize())})


CALLBACK = ("stablehlo.custom_call @{}() {{api_version = 4 : i32, has_side_effect = true, "
            "backend_config = {{index = 123456 : ui64}}}} : () -> ()")


@pytest.mark.parametrize(
    ("target", "disabled"),
    [
        ("xla_ffi_python_cpu_callback", None),  # a host callback with a bogus index: segfaults when called
        ("xla_python_cpu_callback", None),
        ("xla_ffi_python_gpu_callback", None),
        ("my_unregistered_native_kernel", None),  # loads today, fails only when called
        ("my_unregistered_native_kernel", "my_unregistered_native_kernel"),  # the file's own waiver counts for nothing
    ],
)
def test_custom_calls_jax_export_would_refuse_are_refused_at_load(exported, target, disabled):
    _, path = exported
    with_operation(path, CALLBACK.format(target), disabled_target=disabled)
    with pytest.raises(ExportError, match=rf"may not carry: \[\"custom call '{target}'\"\]"):
        kfunc.export.load(path)


def test_host_transfer_operations_are_refused(exported):
    _, path = exported
    with_operation(path, "%token = stablehlo.create_token : !stablehlo.token\n"
                         "    %sent = \"stablehlo.outfeed\"(%token) {outfeed_config = \"\"} : (!stablehlo.token) -> !stablehlo.token")
    with pytest.raises(ExportError, match=r"may not carry: \['stablehlo.outfeed'\]"):
        kfunc.export.load(path)


def test_custom_calls_with_jax_exports_guarantee_still_load(exported):
    _, path = exported
    with_operation(path, 'stablehlo.custom_call @annotate_device_placement() {has_side_effect = true} : () -> ()')
    forward = kfunc.export.load(path)  # allowed at load (this crafted call has no operand to run on)
    assert "@annotate_device_placement" in forward.exported.mlir_module()


# ---------------------------------------------------------------------- export: damaged files
def outcome(path, model, x) -> str:
    """``"error"`` for an ExportError, ``"loaded"`` for a load that predicts what ``model`` does;
    any other exception fails the test."""
    try:
        forward = kfunc.export.load(path)
    except ExportError:
        return "error"
    np.testing.assert_allclose(np.asarray(forward(x)), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    return "loaded"


def flipped_positions(size: int, count: int, seed: int) -> list[int]:
    """``count`` positions spread over every part of a ``size``-byte file, drawn by ``seed``."""
    return sorted(random.Random(seed).sample(range(size), min(count, size)))


@pytest.mark.parametrize("count", [120, pytest.param(2000, marks=pytest.mark.slow)])
def test_bit_flips_across_the_whole_file_load_correctly_or_raise_export_error(exported, tmp_path, count):
    model, path = exported
    data = path.read_bytes()
    x = np.random.default_rng(1).random((4, 6), dtype=np.float32)
    damaged = tmp_path / "damaged.kfx"
    outcomes = []
    for position in flipped_positions(len(data), count, seed=count):
        flipped = bytearray(data)
        flipped[position] ^= 1 << (position % 8)
        damaged.write_bytes(bytes(flipped))
        outcomes.append(outcome(damaged, model, x))
    assert outcomes.count("error") > len(outcomes) // 2  # most flips break a checked field


def test_truncation_at_every_length_raises_export_error(exported, tmp_path):
    model, path = exported
    data = path.read_bytes()
    damaged = tmp_path / "damaged.kfx"
    for size in range(0, len(data), max(1, len(data) // 60)):
        damaged.write_bytes(data[:size])
        with pytest.raises(ExportError, match="kfunc export file|'.*damaged.kfx'"):
            kfunc.export.load(damaged)


def test_a_deep_manifest_raises_export_error(exported):
    _, path = exported
    members = members_of(path)
    members["manifest.json"] = b"[" * 200_000 + b"]" * 200_000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ExportError, match="manifest is not valid JSON.*RecursionError"):
        kfunc.export.load(path)


def npy_bytes(header: str, payload: bytes) -> bytes:
    text = header.encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def test_a_weights_header_declaring_10_to_the_15_elements_allocates_nothing(exported):
    _, path = exported
    inner = members_of(path)["weights.npz"]
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        arrays = {info.filename: archive.read(info) for info in archive.infolist()}
    name = next(n for n in arrays if n.endswith("hidden/kernel.npy"))
    arrays[name] = npy_bytes(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({10**15},), }}", b"\x00" * 16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in arrays.items():
            archive.writestr(member, data)
    rewrite(path, replace={"weights.npz": buffer.getvalue()})
    with pytest.raises(ExportError, match=rf"declares \({10**15},\) float32 .* but holds 16 bytes"):
        kfunc.export.load(path)


def test_a_small_export_file_cannot_ask_for_much_memory(exported):
    _, path = exported
    bomb = bytes(50 << 20)  # 50 MB of zeros: about 50 kB deflated
    members = members_of(path)
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["function.jaxexport"] = {"size": len(bomb), "sha256": kfunc.export_loader.digest(bomb)}
    members.update({"manifest.json": json.dumps(manifest).encode(), "function.jaxexport": bomb})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ExportError, match="decompression bomb"):
            kfunc.export.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 << 20


def test_an_export_whose_weights_compress_well_is_written_within_the_cap(tmp_path):
    inputs = Input(shape=(64,))
    model = Model(inputs, Dense(512, kernel_initializer="zeros")(inputs))  # weights.npz deflates ~500:1
    model.export(tmp_path / "zeros.kfx", params="argument")
    x = np.ones((2, 64), np.float32)
    np.testing.assert_array_equal(kfunc.export.load(tmp_path / "zeros.kfx")(x), np.zeros((2, 512), np.float32))
    assert kfunc.export_loader.MAX_EXPANSION == strict_zip.MAX_EXPANSION
    assert kfunc.export_loader.SLACK_BYTES == strict_zip.SLACK_BYTES


# ---------------------------------------------------------------------- not a regular file
class Unblock:
    """Opens ``fifo`` for writing after ``seconds`` if a reader is stuck on it, so a loader that
    hangs fails the test instead of hanging it."""

    def __init__(self, fifo, seconds=5.0):
        self.fifo, self.seconds, self.stop = fifo, seconds, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        if not self.stop.wait(self.seconds):
            try:
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def fit_with_backup(folder):
    inputs = Input(shape=(6,))
    model = Model(inputs, Dense(1)(inputs))
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 6), np.float32), np.ones((4, 1), np.float32), epochs=1, verbose=0,
              callbacks=[kfunc.callbacks.BackupAndRestore(folder)])


LOADERS = {
    "load_model": (lambda path: load_model(path), ModelFileError),
    "load_weights": (lambda path: small_model().load_weights(path), WeightsFileError),
    "export.load": (lambda path: kfunc.export.load(path), ExportError),
    "backup": (lambda path: fit_with_backup(path.parent), kfunc.callbacks.BackupError),
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_loader_refuses_a_fifo_without_blocking(tmp_path, loader):
    load, error = LOADERS[loader]
    fifo = tmp_path / "backup.npz"
    os.mkfifo(fifo)
    with Unblock(fifo), pytest.raises(error, match="FIFO"):
        load(fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("loader", ["load_model", "load_weights", "export.load"])
def test_every_loader_refuses_a_device(loader):
    load, error = LOADERS[loader]
    with pytest.raises(error, match="character device|not a regular file"):
        load(Path("/dev/zero"))


# ---------------------------------------------------------------------- caps in proportion to the file
def test_a_small_weights_file_cannot_ask_for_much_memory(tmp_path):
    zeros = npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (8000000,), }", bytes(8_000_000))
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", zeros)
    assert path.stat().st_size < 50_000
    tracemalloc.start()
    try:
        with pytest.raises(WeightsFileError, match="more than the 64:1 kfunc reads"):
            kfunc.saving.weights.read_weights_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20


def test_write_member_stores_what_would_expand_past_the_cap():
    buffer = io.BytesIO()
    text = json.dumps({"layers": [{"class_name": "Dense", "units": i} for i in range(200)]}).encode()
    with zipfile.ZipFile(buffer, "w") as archive:
        strict_zip.write_member(archive, "zeros.bin", bytes(1 << 20))
        strict_zip.write_member(archive, "config.json", text)
    with zipfile.ZipFile(buffer) as archive:
        methods = {info.filename: info.compress_type for info in archive.infolist()}
    assert methods == {"zeros.bin": zipfile.ZIP_STORED, "config.json": zipfile.ZIP_DEFLATED}


# ---------------------------------------------------------------------- the dtype rule of loading
@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        ("float64", r"hidden/kernel: model float32, file float64"),
        ("float16", r"model float32, file float16"),
        ("complex64", r"file complex64 \(complex: the imaginary part would be lost\)"),
        ("int8", r"model float32, file int8"),
        ("bool", r"model float32, file bool"),
    ],
)
@pytest.mark.parametrize("keys", ["by path", "in order"])
def test_load_weights_casts_nothing(tmp_path, dtype, message, keys):
    source, target = small_model(), small_model()
    weights = {v.path: np.asarray(v.numpy()) for v in source.weights}
    weights["hidden/kernel"] = weights["hidden/kernel"].astype(dtype)
    if keys == "in order":  # another build of the architecture: loaded by position
        weights = {f"other_{i}": value for i, value in enumerate(weights.values())}
    np.savez(tmp_path / "w.npz", **weights)
    before = target.get_weights()
    with pytest.raises(WeightsError, match=rf"dtype mismatches .*{message}.*casts nothing on load"):
        target.load_weights(tmp_path / "w.npz")
    for a, b in zip(target.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_model_follows_the_same_dtype_rule(tmp_path):
    path = tmp_path / "m.kfunc"
    small_model().save(path)
    members = members_of(path)
    document = json.loads(members["config.json"])
    entry = next(e for e in document["weights"] if e["path"] == "hidden/kernel")
    entry["dtype"] = "float64"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(entry["shape"], "float64"))
    members.update({"config.json": json.dumps(document).encode(), "weights/hidden/kernel.npy": buffer.getvalue()})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="dtype mismatch hidden/kernel: model float32, file float64; kfunc casts nothing"):
        load_model(path)


# ---------------------------------------------------------------------- layering
def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
    return found


def test_kfunc_io_stands_on_the_bottom_floor():
    for path in sorted((ROOT / "io").glob("*.py")):
        kfunc_imports = {m for m in imported_modules(path) if m.split(".")[0] == "kfunc"}
        assert all(m == "kfunc.errors" or m.startswith("kfunc.io") for m in kfunc_imports), (path.name, kfunc_imports)
        third_party = {m.split(".")[0] for m in imported_modules(path)} - {"kfunc", "numpy", "__future__"}
        assert all(name in __import__("sys").stdlib_module_names for name in third_party), (path.name, third_party)
    assert {m for m in imported_modules(ROOT / "export_loader.py") if m.startswith("kfunc")} == {"kfunc.errors"}
