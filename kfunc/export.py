"""``export(model, path)``: the inference function as one file that runs without kfunc.

    kfunc.export.export(model, "model.kfx")                      # weights baked in as constants
    kfunc.export.export(model, "model.kfx", params="argument")   # weights stored beside, as .npz
    forward = kfunc.export.load("model.kfx")                     # jax + numpy only (export_loader.py)
    main, aux = forward([ids, extra])                             # any batch size

The file holds ``apply(params, state, inputs, training=False)`` lowered once by ``jax.export`` to
StableHLO with a symbolic batch dimension (every input's batch axis is the same symbol ``b``, so
one file serves every batch size), a JSON manifest, and, with ``params="argument"``, the weights.
The file format and the loader are in ``kfunc/export_loader.py``, which imports no kfunc model
code. Serializing needs the ``flatbuffers`` package (an optional dependency of ``jax.export``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import jax
import numpy as np
from jax import export as jax_export

from kfunc.errors import ExportError, KfuncError
from kfunc.export_loader import (
    FORMAT,
    FORMAT_VERSION,
    FUNCTION,
    MANIFEST,
    PARAMS_MODES,
    WEIGHTS,
    ExportedModel,
    check_manifest,
    digest,
    load,
)
from kfunc.io.atomic import atomic_write
from kfunc.io.strict_zip import write_member

__all__ = ["ExportError", "ExportedModel", "export", "load"]

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def export(model, path, *, example_inputs=None, params: str = "baked", platforms=None) -> ExportedModel:
    """Write ``model``'s inference function (``training=False``: dropout off, BatchNorm's moving
    statistics) to ``path``, atomically; returns it loaded, as ``kfunc.export.load`` would.

    ``example_inputs``: arrays or ``jax.ShapeDtypeStruct`` in the model's input structure (one, a
    list, or a dict by name); only needed to fix input axes the model leaves as ``None`` besides the
    batch axis (otherwise each such axis is its own symbol), or to build a ``Sequential`` that has
    no input shape yet. The batch axis always stays symbolic; dtypes always come from the model's
    ``Input`` layers. ``params``: ``"baked"`` (weights are constants of the function) or
    ``"argument"`` (the function takes them; the file stores them as ``weights.npz``).
    ``platforms``: names among ``cpu``, ``cuda``, ``rocm``, ``tpu``; default the current backend.
    """
    if params not in PARAMS_MODES:
        raise ExportError(f"export: params must be one of {list(PARAMS_MODES)}, received {params!r}.")
    platforms = _platforms(platforms)
    if example_inputs is not None:
        model._build_from_data(example_inputs)  # a Sequential without an input shape yet
    model._require_built("export()")
    input_specs = _input_specs(model, example_inputs)
    names = model.input_names
    output_names = model.output_names
    variables = model.get_variables()
    leaves, treedef = jax.tree_util.tree_flatten_with_path({"params": variables.params, "state": variables.state})
    weight_names = ["/".join(str(getattr(k, "key", k)) for k in key_path) for key_path, _ in leaves]
    weight_values = [leaf for _, leaf in leaves]
    baked = params == "baked"

    def forward(weights, inputs):
        tree = jax.tree_util.tree_unflatten(treedef, weight_values if baked else list(weights))
        outputs, _ = model.apply(tree["params"], tree["state"], dict(zip(names, inputs, strict=True)), training=False)
        if isinstance(outputs, dict):
            return tuple(outputs[n] for n in output_names)
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)

    weight_specs = () if baked else tuple(jax.ShapeDtypeStruct(np.shape(w), w.dtype) for w in weight_values)
    try:
        exported = jax_export.export(jax.jit(forward), platforms=platforms)(weight_specs, tuple(input_specs))
    except KfuncError:
        raise
    except Exception as error:  # say which model and what to try; keep the cause
        raise ExportError(
            f"Model '{model.name}' could not be exported with a symbolic batch dimension for platforms "
            f"{list(platforms)}: {type(error).__name__}: {error}. If an input axis besides the batch is None, "
            "pass example_inputs to fix its size."
        ) from error
    try:
        function = bytes(exported.serialize())
    except ImportError as error:
        raise ExportError(f"export needs the 'flatbuffers' package (pip install 'kfunc[export]'): {error}") from None

    weights_tuple = None
    members = {FUNCTION: function}
    if not baked:
        buffer = io.BytesIO()
        np.savez(buffer, **{n: np.asarray(w) for n, w in zip(weight_names, weight_values, strict=True)})
        members[WEIGHTS] = buffer.getvalue()
        weights_tuple = tuple(weight_values)

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model.name,
        "params": params,
        "platforms": list(exported.platforms),
        "input_structure": _structure_kind(model.input),
        "inputs": [
            {"name": n, "shape": _plain_shape(s.shape), "dtype": str(np.dtype(s.dtype))}
            for n, s in zip(names, input_specs, strict=True)
        ],
        "output_structure": _structure_kind(model.output),
        "outputs": [
            {"name": n, "shape": _plain_shape(a.shape), "dtype": str(np.dtype(a.dtype))}
            for n, a in zip(output_names, exported.out_avals, strict=True)
        ],
        "weights": [] if baked else [
            {"name": n, "shape": list(np.shape(w)), "dtype": str(np.dtype(w.dtype))}
            for n, w in zip(weight_names, weight_values, strict=True)
        ],
        "members": {name: {"size": len(data), "sha256": digest(data)} for name, data in members.items()},
    }
    check_manifest(manifest, os.fspath(path))
    with atomic_write(path) as stream, zipfile.ZipFile(stream, "w") as archive:
        write_member(archive, MANIFEST, json.dumps(manifest, indent=1).encode())
        for name, data in members.items():
            write_member(archive, name, data)  # deflated within the loader's cap on expansion
    return ExportedModel(manifest, exported, weights_tuple, source=os.fspath(path))


def _platforms(platforms) -> tuple[str, ...]:
    if platforms is None:
        return (jax_export.default_export_platform(),)
    chosen = (platforms,) if isinstance(platforms, str) else tuple(platforms)
    wrong = [p for p in chosen if p not in PLATFORMS]
    if not chosen or wrong or len(set(chosen)) != len(chosen):
        raise ExportError(
            f"export: platforms must be distinct names among {list(PLATFORMS)} (e.g. ('cpu', 'cuda')), "
            f"received {platforms!r}."
        )
    return chosen


def _input_specs(model, example_inputs) -> list:
    """One ``ShapeDtypeStruct`` per model input: batch axis the shared symbol ``b``; other ``None``
    axes from ``example_inputs`` or a symbol of their own."""
    examples = [None] * len(model.inputs) if example_inputs is None else model.match_inputs(example_inputs)
    scope = jax_export.SymbolicScope()
    specs = []
    for index, (tensor, example) in enumerate(zip(model.inputs, examples, strict=True)):
        wanted = tensor.shape
        given = None if example is None else tuple(np.shape(example) if not hasattr(example, "shape") else example.shape)
        if given is not None and (
            len(given) != len(wanted) or any(w is not None and g != w for g, w in zip(given, wanted))
        ):
            raise ExportError(
                f"export: example input {index} ('{tensor.name}') must have shape {wanted} (None: any size), "
                f"but received shape {given}."
            )
        dims = []
        for axis, size in enumerate(wanted):
            if size is not None:
                dims.append(str(size))
            elif axis == 0:
                dims.append("b")
            elif given is not None:
                dims.append(str(given[axis]))
            else:
                dims.append(f"d{index}_{axis}")
        shape = jax_export.symbolic_shape(", ".join(dims), scope=scope) if dims else ()
        specs.append(jax.ShapeDtypeStruct(shape, np.dtype(tensor.dtype)))
    return specs


def _plain_shape(shape) -> list:
    """Symbolic dimensions become ``None`` (any size)."""
    return [d if isinstance(d, int) else None for d in shape]


def _structure_kind(structure) -> str:
    if isinstance(structure, dict):
        return "dict"
    return "list" if isinstance(structure, (list, tuple)) else "array"
