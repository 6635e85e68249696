"""Hostile and damaged files: export files with forbidden operations, bit flips, truncation,
deep JSON and size lies; FIFOs and devices given to every loader; file names at the file
system's limit; temporary files of killed saves; permissions of saved files; caps in proportion
to the file; the one dtype rule of loading; and the layering of ``kfunc/io``."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import os
import random
import stat
import struct
import threading
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import jax
import numpy as np
import pytest

import kfunc
from kfunc.errors import ExportError, WeightsError
from kfunc.io import atomic, strict_zip
from kfunc.layers import Dense, Input
from kfunc.models import Model, load_model
from kfunc.saving import ModelFileError, WeightsFileError
from test_export import rewrite

import flatbuffers  # noqa: E402,F401  (export needs it)

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
    with open(live, "wb") as held:  # a save still running in another process holds its lock
        import fcntl

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


@pytest.mark.parametrize("delays", [(0.0, 0.07), pytest.param((0.013, 0.031, 0.05, 0.11, 0.2), marks=pytest.mark.slow)])
def test_sigkill_during_saves_leaves_one_whole_version_and_no_litter_after_the_next_save(tmp_path, delays):
    jobs = [("model", d) for d in delays] + [("backup", d) for d in delays[::2]]
    for (kind, _), target in zip(jobs, kill_during_saves(tmp_path, jobs), strict=True):
        if kind == "model":
            check_killed_model_save(target)
        else:
            check_killed_backup(target)
