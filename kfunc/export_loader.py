"""Load and run a model written by ``kfunc.export.export``, with nothing but JAX and NumPy.

    from kfunc.export import load          # or: copy this one file next to your program
    forward = load("model.kfx")
    main, aux = forward({"main_input": ids, "aux_input": extra})   # any batch size

This module imports only the standard library, NumPy and JAX (whose export serialization needs
the ``flatbuffers`` package), never kfunc's layers or models, so the file runs on its own in a
program that does not install kfunc. Nothing in an export file can execute code: the function is
StableHLO (``jax.export``), the manifest JSON, and weights a ``.npz`` of ``.npy`` arrays whose
headers are checked against the bytes present before anything is allocated (never unpickled). Every
member is checked against the manifest (name, size, SHA-256) before it is used; a missing,
truncated, corrupt or hostile file raises ``ExportError``, whatever fails inside (zipfile, zlib,
JSON, flatbuffers, MLIR, memory, recursion).

A crafted file cannot make a call crash the process through a custom call: at load, the StableHLO is walked and every
custom call whose target ``jax.export`` would refuse to serialize is refused (the file's own list
of disabled checks counts for nothing), as are host callbacks, host transfers (infeed, outfeed,
send, recv) and ops of dialects outside StableHLO. Only regular files are opened (a FIFO would
block forever), and sizes are capped in proportion to the file: no member may expand more than
``MAX_EXPANSION`` times its compressed size plus ``SLACK_BYTES``, nor all of them together more
than that multiple of the file (the caps of ``kfunc.io.strict_zip``; this file keeps its own copy
so that it runs without kfunc).

File layout (a zip archive):

- ``manifest.json``: ``format``, ``format_version``, ``inputs`` / ``outputs`` (name, shape with
  ``null`` for the batch axis, dtype), ``input_structure`` / ``output_structure`` (``array``,
  ``list`` or ``dict``), ``params`` (``baked`` or ``argument``), ``weights`` (name, shape, dtype;
  ``argument`` only), ``platforms``, and ``members`` (size and SHA-256 of the two others).
- ``function.jaxexport``: ``jax.export.Exported.serialize()`` of
  ``forward(weights: tuple, inputs: tuple) -> tuple of outputs``.
- ``weights.npz``: one array per entry of ``weights`` (``argument`` only).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

if __name__.startswith("kfunc."):
    from kfunc.errors import ExportError
else:  # this file copied on its own, without kfunc

    class ExportError(ValueError):
        """An export file is missing, truncated or corrupt, or was called with inputs it cannot take."""


FORMAT = "kfunc-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FUNCTION = "function.jaxexport"
WEIGHTS = "weights.npz"
STRUCTURES = ("array", "list", "dict")
PARAMS_MODES = ("baked", "argument")
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64")
MAX_MANIFEST_BYTES = 1 << 20
MAX_EXPANSION = 64  # uncompressed bytes per byte of the file, as kfunc.io.strict_zip
SLACK_BYTES = 1 << 20
_DIALECTS = ("builtin", "func", "stablehlo", "chlo", "sdy", "mhlo")
_HOST_OPERATIONS = ("stablehlo.infeed", "stablehlo.outfeed", "stablehlo.send", "stablehlo.recv")
# Canonical platform names of jax.export, for the backends jax.default_backend() reports.
_BACKEND_PLATFORMS = {"gpu": ("cuda", "rocm"), "cuda": ("cuda",), "rocm": ("rocm",), "cpu": ("cpu",), "tpu": ("tpu",)}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ExportedModel:
    """A loaded export: ``forward(inputs) -> outputs``.

    ``inputs``: one array ``(batch, ...)``, a list in ``input_names`` order, or a dict keyed by
    input name, with any batch size (the same for every input). Outputs come back as JAX arrays
    ``(batch, ...)`` in the model's output structure (one array, a list, or a dict by name).
    ``weights`` (``params="argument"`` only): a tuple of arrays in ``manifest["weights"]`` order,
    which a call may replace (``forward(x, weights=new)``) with arrays of the same shapes and dtypes.
    """

    def __init__(self, manifest: dict, exported, weights: tuple | None, source: str = "<memory>"):
        self.manifest = manifest
        self.exported = exported
        self.weights = weights
        self.source = source
        self._call = jax.jit(exported.call)

    @property
    def input_names(self) -> list[str]:
        return [spec["name"] for spec in self.manifest["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [spec["name"] for spec in self.manifest["outputs"]]

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(self.manifest["platforms"])

    def __call__(self, inputs, *, weights=None):
        values = self._match_inputs(inputs)
        if weights is None:
            weights = self.weights or ()
        elif self.manifest["params"] != "argument":
            raise ExportError(f"'{self.source}' has its weights baked in; it takes no weights= argument.")
        else:
            weights = self._check_weights(weights)
        self._check_platform()
        flat = self._call(tuple(weights), tuple(values))
        names = self.output_names
        structure = self.manifest["output_structure"]
        if structure == "array":
            return flat[0]
        if structure == "dict":
            return dict(zip(names, flat, strict=True))
        return list(flat)

    def _match_inputs(self, inputs) -> list:
        specs = self.manifest["inputs"]
        names = self.input_names
        if isinstance(inputs, dict):
            missing = [n for n in names if n not in inputs]
            unknown = [k for k in inputs if k not in names]
            if missing or unknown:
                raise ExportError(
                    f"'{self.source}' expects inputs named {names}; the dict given is missing {missing} and "
                    f"has unknown keys {unknown}."
                )
            values = [inputs[n] for n in names]
        else:
            values = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if len(values) != len(specs):
                raise ExportError(
                    f"'{self.source}' expects {len(specs)} input(s) {names}, but received {len(values)} value(s); "
                    "pass them as a list in this order or as a dict keyed by name."
                )
        checked = []
        batches = {}
        for index, (spec, value) in enumerate(zip(specs, values, strict=True)):
            if not isinstance(value, jax.Array):
                value = np.asarray(value)
            expected = spec["shape"]
            shape = tuple(value.shape)
            if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
                raise ExportError(
                    f"'{self.source}': input {index} ('{spec['name']}') must have shape {tuple(expected)} "
                    f"(None: any size), but received shape {shape}."
                )
            if expected and expected[0] is None:
                batches[spec["name"]] = shape[0]
            whole = np.issubdtype(np.dtype(spec["dtype"]), np.integer)
            if (whole and isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)
                    and not np.array_equal(value, np.round(value))):
                raise ExportError(
                    f"'{self.source}': input {index} ('{spec['name']}') is {spec['dtype']} (e.g. token ids), "
                    f"but received {value.dtype} values that are not whole numbers; pass integer data."
                )
            checked.append(value if value.dtype == spec["dtype"] else jnp.asarray(value, spec["dtype"]))
        if len(set(batches.values())) > 1 or any(b < 1 for b in batches.values()):
            raise ExportError(
                f"'{self.source}': every input needs the same batch size, at least 1; received {batches}."
            )
        return checked

    def _check_weights(self, weights) -> tuple:
        specs = self.manifest["weights"]
        weights = tuple(weights)
        shapes = [tuple(np.shape(w)) for w in weights]
        wanted = [tuple(s["shape"]) for s in specs]
        if shapes != wanted:
            raise ExportError(f"'{self.source}': weights must have shapes {wanted}, received {shapes}.")
        return tuple(jnp.asarray(w, s["dtype"]) for w, s in zip(weights, specs, strict=True))

    def _check_platform(self) -> None:
        backend = jax.default_backend()
        accepted = _BACKEND_PLATFORMS.get(backend, (backend,))
        if not set(accepted) & set(self.platforms):
            raise ExportError(
                f"'{self.source}' was exported for platforms {list(self.platforms)} and cannot run on the "
                f"current '{backend}' backend; export it again with platforms=(..., '{accepted[0]}')."
            )

    def __repr__(self):
        return (f"<ExportedModel {self.source!r} inputs={self.input_names} outputs={self.output_names} "
                f"params={self.manifest['params']!r} platforms={list(self.platforms)}>")


# ---------------------------------------------------------------------------------- reading
def load(path) -> ExportedModel:
    """The model exported to ``path``, as a callable ``forward(inputs) -> outputs``.

    Every failure to read the file, whatever raised it (zipfile, zlib, JSON, flatbuffers, MLIR,
    memory, recursion), is an ``ExportError``."""
    path = os.fspath(path)
    try:
        return _load(path)
    except ExportError:
        raise
    except Exception as error:  # noqa: BLE001 - a damaged file may fail anywhere; say so in one error
        raise ExportError(
            f"'{path}' is not a readable kfunc export file (truncated or corrupt?): {type(error).__name__}: "
            f"{str(error)[:300]}"
        ) from None


def _load(path: str) -> ExportedModel:
    with _open_regular_file(path) as handle, zipfile.ZipFile(handle) as archive:
        members = _checked_members(archive, os.fstat(handle.fileno()).st_size, path)
        manifest = _read_manifest(archive, members, path)
        function = _read_member(archive, members, manifest, FUNCTION, path)
        weights_bytes = (
            _read_member(archive, members, manifest, WEIGHTS, path) if manifest["params"] == "argument" else None
        )
    exported = _deserialize(function, manifest, path)
    weights = None if weights_bytes is None else _read_weights(weights_bytes, manifest, path)
    return ExportedModel(manifest, exported, weights, source=path)


def _open_regular_file(path: str):
    """``path`` opened for reading, refused unless it is a regular file (a FIFO would block the
    open forever, a device would stream forever); ``O_NONBLOCK`` and ``fstat`` make the check hold
    even if the path is swapped meanwhile."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ExportError(f"'{path}' is not a regular file (a directory, FIFO or device); it is not an export file.")
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ExportError(f"No export file at '{path}'.") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ExportError(f"'{path}' is not a regular file (a directory, FIFO or device); it is not an export file.")
    return os.fdopen(descriptor, "rb")


def _check_sizes(infos: list, container_size: int, path: str, where: str, methods: tuple) -> None:
    """Refuse encrypted members, other compression methods, and sizes over the caps in
    proportion to ``container_size`` (a small file never asks for gigabytes)."""
    total = compressed = 0
    for info in infos:
        if info.flag_bits & 0x1 or info.compress_type not in methods:
            raise ExportError(f"'{path}': {where} member {info.filename!r} is encrypted or uses an unsupported compression.")
        if (info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size) or (
            info.file_size > MAX_EXPANSION * info.compress_size + SLACK_BYTES
        ):
            raise ExportError(
                f"'{path}': {where} member {info.filename!r} declares {info.file_size} bytes from {info.compress_size} "
                f"compressed, more than the {MAX_EXPANSION}:1 this loader reads (corrupt, or a decompression bomb)."
            )
        total += info.file_size
        compressed += info.compress_size
    if compressed > container_size or total > MAX_EXPANSION * container_size + SLACK_BYTES:
        raise ExportError(
            f"'{path}': the members of {where} declare {total} bytes ({compressed} compressed) in {container_size} "
            "bytes; the file is corrupt or a decompression bomb."
        )


def _checked_members(archive: zipfile.ZipFile, file_size: int, path: str) -> dict:
    infos = archive.infolist()
    names = [info.filename for info in infos]
    for name in names:
        if (name.startswith(("/", "\\")) or "\\" in name or ":" in name
                or any(part in ("", ".", "..") for part in name.split("/"))):
            raise ExportError(f"'{path}' holds a member with an unsafe name {name!r}; refusing to read it.")
    if len(set(names)) != len(names):
        raise ExportError(f"'{path}' holds a member name twice ({names[:10]}); it is not a kfunc export file.")
    allowed = {MANIFEST, FUNCTION, WEIGHTS}
    unexpected = [n for n in names if n not in allowed]
    if unexpected or MANIFEST not in names or FUNCTION not in names:
        raise ExportError(
            f"'{path}' is not a kfunc export file: expected members {sorted(allowed)} (weights optional), "
            f"found {names[:10]}."
        )
    _check_sizes(infos, file_size, path, "the file's", (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))
    return {info.filename: info for info in infos}


def _read_manifest(archive: zipfile.ZipFile, members: dict, path: str) -> dict:
    info = members[MANIFEST]
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ExportError(f"'{path}': its manifest is {info.file_size} bytes, over the {MAX_MANIFEST_BYTES} allowed.")
    try:
        manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ExportError(f"'{path}': its manifest is not valid JSON ({type(error).__name__}: {str(error)[:200]}).") from None
    check_manifest(manifest, path)
    has_weights = WEIGHTS in members
    if has_weights != (manifest["params"] == "argument"):
        raise ExportError(
            f"'{path}': params mode {manifest['params']!r} "
            + ("does not store weights, but the file holds them." if has_weights else "needs weights.npz, which is missing.")
        )
    return manifest


def _read_member(archive: zipfile.ZipFile, members: dict, manifest: dict, name: str, path: str) -> bytes:
    declared = manifest["members"][name]
    if members[name].file_size != declared["size"]:
        raise ExportError(
            f"'{path}': member {name} is {members[name].file_size} bytes, but the manifest says {declared['size']}."
        )
    data = archive.read(name)  # at most the declared size, capped by _checked_members; CRC-32 checked
    if len(data) != declared["size"] or digest(data) != declared["sha256"]:
        raise ExportError(f"'{path}': member {name} does not match the size and SHA-256 in its manifest (corrupt).")
    return data


def _deserialize(data: bytes, manifest: dict, path: str):
    try:
        exported = jax.export.deserialize(bytearray(data))
    except ImportError as error:
        raise ExportError(f"Reading '{path}' needs the 'flatbuffers' package (pip install flatbuffers): {error}") from None
    except Exception as error:  # noqa: BLE001 - any failure to parse means a corrupt file
        raise ExportError(f"'{path}': the serialized function cannot be read (corrupt?): {error!r}") from None
    check_operations(exported, path)
    specs = manifest["weights"] + manifest["inputs"]
    avals = exported.in_avals
    if len(avals) != len(specs) or len(exported.out_avals) != len(manifest["outputs"]):
        raise ExportError(
            f"'{path}': the function takes {len(avals)} arrays and returns {len(exported.out_avals)}, but the "
            f"manifest lists {len(specs)} and {len(manifest['outputs'])}."
        )
    for spec, aval in zip(specs, avals, strict=True):
        fixed = [d if isinstance(d, int) else None for d in aval.shape]
        if str(aval.dtype) != spec["dtype"] or len(fixed) != len(spec["shape"]) or any(
            s is not None and f is not None and s != f for s, f in zip(spec["shape"], fixed)
        ):
            raise ExportError(
                f"'{path}': the function expects '{spec['name']}' as {aval.str_short()}, but the manifest says "
                f"{spec['dtype']}{spec['shape']}."
            )
    return exported


def _read_weights(data: bytes, manifest: dict, path: str) -> tuple:
    """The arrays of ``weights.npz`` (written by ``np.savez``: stored ``.npy`` members) in
    manifest order; each header is checked against the bytes present before anything is allocated."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ExportError(f"'{path}': weights.npz is not a readable .npz of plain arrays: {error}") from None
    with archive:
        infos = archive.infolist()
        _check_sizes(infos, len(data), path, "weights.npz", (zipfile.ZIP_STORED,))
        stored = {info.filename[: -len(".npy")]: _parse_npy(archive.read(info), info.filename, path) for info in infos}
    specs = manifest["weights"]
    if sorted(stored) != sorted(s["name"] for s in specs) or len(stored) != len(infos):
        raise ExportError(
            f"'{path}': weights.npz holds {sorted(stored)[:10]}, but the manifest lists {sorted(s['name'] for s in specs)[:10]}."
        )
    for spec in specs:
        array = stored[spec["name"]]
        if list(array.shape) != spec["shape"] or str(array.dtype) != spec["dtype"]:
            raise ExportError(
                f"'{path}': weight '{spec['name']}' is {array.dtype}{list(array.shape)}, but the manifest says "
                f"{spec['dtype']}{spec['shape']}."
            )
    return tuple(jnp.asarray(stored[s["name"]]) for s in specs)


def _parse_npy(raw: bytes, name: str, path: str) -> np.ndarray:
    """The array of one ``.npy`` member: plain dtypes only, and exactly the bytes its header declares."""

    def fail(detail: str):
        return ExportError(f"'{path}': weights.npz is not a readable .npz of plain arrays: {name!r} {detail}.")

    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        shape, fortran, dtype = read_header[version](stream)
    except (ValueError, KeyError, TypeError, SyntaxError) as error:
        raise fail(f"has no valid .npy header ({type(error).__name__}: {str(error)[:200]})") from None
    if not name.endswith(".npy") or dtype.hasobject or dtype.kind not in "biufc":
        raise fail(f"is not an .npy array of a plain numeric dtype (found {dtype}; objects are never unpickled)")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw) - stream.tell():
        raise fail(f"declares {shape} {dtype} ({count * dtype.itemsize} bytes) but holds {len(raw) - stream.tell()} bytes")
    return np.frombuffer(raw, dtype, count, stream.tell()).reshape(shape, order="F" if fortran else "C")


# ---------------------------------------------------------------------------------- operations
def _allowed_custom_call_targets() -> frozenset:
    """The custom-call targets ``jax.export`` serializes without disabled checks (those with a
    compatibility guarantee), less TensorFlow graphs; a jax without that list allows only the
    few that shape polymorphism and sharding emit."""
    try:
        from jax._src.export._export import _CUSTOM_CALL_TARGETS_GUARANTEED_STABLE as stable
    except ImportError:
        stable = {"shape_assertion", "Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape",
                  "annotate_device_placement", "AllocateBuffer"}
    return frozenset(t for t in stable if t != "tf.call_tf_function" and "callback" not in t.lower())


def check_operations(exported, path: str = "<memory>") -> None:
    """Raise ``ExportError`` if the function's StableHLO holds an operation a file may not carry:
    a custom call whose target ``jax.export`` would refuse to serialize (whatever checks the
    file says were disabled), a host callback (Python code of the exporting process, which no
    file carries: calling it would crash the process), an op that waits on the host (infeed,
    outfeed, send, recv), or an op of a dialect outside StableHLO and its companions."""
    from jax._src.interpreters import mlir as jax_mlir  # jax's own MLIR context and dialects
    from jax._src.lib.mlir import ir

    allowed = _allowed_custom_call_targets()
    refused = []
    with jax_mlir.make_ir_context():
        module = exported.mlir_module(serialized=False)
        pending = [module.operation]
        while pending:  # iterative: a deeply nested module cannot exhaust the Python stack
            operation = pending.pop()
            name = operation.name
            if name.split(".")[0] not in _DIALECTS or name in _HOST_OPERATIONS:
                refused.append(name)
            elif name.endswith("custom_call"):
                target = operation.attributes["call_target_name"] if "call_target_name" in operation.attributes else None
                target = ir.StringAttr(target).value if target is not None else "<no target>"
                if target not in allowed:
                    refused.append(f"custom call {target!r}")
            pending.extend(op.operation for region in operation.regions for block in region for op in block)
    if refused:
        raise ExportError(
            f"'{path}': the function holds operations an export file may not carry: {sorted(set(refused))[:10]} "
            "(custom calls without jax.export's compatibility guarantee, host callbacks or host transfers); "
            "refusing to load it."
        )


# ---------------------------------------------------------------------------------- manifest
def check_manifest(manifest, path: str) -> None:
    """Raise ``ExportError`` unless ``manifest`` has every field of this format, well typed."""

    def fail(detail: str):
        raise ExportError(f"'{path}': invalid manifest: {detail}.")

    if not isinstance(manifest, dict):
        fail(f"expected a JSON object, found {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        fail(f"format must be {FORMAT!r}, found {manifest.get('format')!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fail(f"format_version must be a positive integer, found {version!r}")
    if version > FORMAT_VERSION:
        fail(f"format_version {version} is newer than this loader reads ({FORMAT_VERSION}); upgrade kfunc")
    for key, choices in (("input_structure", STRUCTURES), ("output_structure", STRUCTURES), ("params", PARAMS_MODES)):
        if manifest.get(key) not in choices:
            fail(f"{key} must be one of {list(choices)}, found {manifest.get(key)!r}")
    for key, batch_free in (("inputs", True), ("outputs", True), ("weights", False)):
        _check_specs(manifest.get(key), key, batch_free, fail)
    if not manifest["inputs"] or not manifest["outputs"]:
        fail("inputs and outputs must not be empty")
    if manifest["params"] == "baked" and manifest["weights"]:
        fail("params 'baked' lists no weights")
    if manifest["input_structure"] == "array" and len(manifest["inputs"]) != 1:
        fail("input_structure 'array' needs exactly one input")
    if manifest["output_structure"] == "array" and len(manifest["outputs"]) != 1:
        fail("output_structure 'array' needs exactly one output")
    platforms = manifest.get("platforms")
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, str) for p in platforms):
        fail(f"platforms must be a non-empty list of names, found {platforms!r}")
    members = manifest.get("members")
    needed = [FUNCTION] + ([WEIGHTS] if manifest["params"] == "argument" else [])
    if not isinstance(members, dict) or sorted(members) != sorted(needed):
        fail(f"members must describe {needed}, found {members!r}")
    for name in needed:
        entry = members[name]
        if (not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or entry["size"] < 0
                or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64):
            fail(f"members[{name!r}] must be {{'size': int, 'sha256': hex}}, found {entry!r}")


def _check_specs(specs, key: str, batch_free: bool, fail) -> None:
    if not isinstance(specs, list):
        fail(f"{key} must be a list, found {type(specs).__name__}")
    names = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
            fail(f"each of {key} needs a non-empty name, found {spec!r}")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            (isinstance(d, int) and not isinstance(d, bool) and d >= 0) or (batch_free and d is None) for d in shape
        ):
            fail(f"{key} '{spec['name']}' has an invalid shape {shape!r}")
        if spec.get("dtype") not in DTYPES:
            fail(f"{key} '{spec['name']}' has an unsupported dtype {spec.get('dtype')!r}")
        names.append(spec["name"])
    if len(set(names)) != len(names):
        fail(f"{key} names repeat: {names}")
