"""Export: the inference function through a file equals ``predict`` at any batch size, the file
is checked on load, and the loader runs with kfunc's model code unimportable."""

import io
import json
import subprocess
import sys
import textwrap
import zipfile

import jax
import numpy as np
import pytest

import kfunc as keras
from kfunc.errors import ExportError
from kfunc.layers import LSTM, BatchNormalization, Dense, Embedding, Input
from kfunc.models import Model, Sequential
from test_guide import headline_model as guide_headline_model

import flatbuffers  # noqa: E402,F401  (the test extra installs it; export cannot work without it)

rng = np.random.default_rng(0)
BATCHES = (3, 17)
# Accelerators multiply float32 at reduced (TF32-like) precision by default, differently for the
# padded batches of predict and the exact batch of the exported function.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6} if jax.default_backend() == "cpu" else {"rtol": 5e-3, "atol": 2e-3}


def mlp():
    inputs = Input(shape=(8,))
    x = Dense(16, activation="relu")(inputs)
    return Model(inputs, Dense(3, activation="softmax")(x))


def headline_model():
    """The guide's two-input, two-output model, small."""
    return guide_headline_model(words=12, vocabulary=50, embedding=8, units=6, hidden=(16, 16))


def batchnorm_model():
    inputs = Input(shape=(6,))
    x = Dense(8)(inputs)
    x = BatchNormalization(name="bn")(x)
    model = Model(inputs, Dense(2)(x))
    gamma, beta = rng.random(8, dtype=np.float32) + 0.5, rng.random(8, dtype=np.float32)
    mean, variance = rng.normal(size=8).astype(np.float32), rng.random(8, dtype=np.float32) + 0.5
    model.get_layer("bn").set_weights([gamma, beta, mean, variance])
    return model


def mlp_data(n):
    return rng.random((n, 8), dtype=np.float32)


def headline_data(n):
    return [rng.integers(0, 50, (n, 12)).astype(np.int32), rng.random((n, 5), dtype=np.float32)]


def batchnorm_data(n):
    return rng.normal(size=(n, 6)).astype(np.float32)


CASES = {"mlp": (mlp, mlp_data), "headline": (headline_model, headline_data), "batchnorm": (batchnorm_model, batchnorm_data)}


def assert_same(got, expected):
    got_leaves, expected_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected)
    for g, e in zip(got_leaves, expected_leaves, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(np.asarray(g), e, **TOLERANCE)


@pytest.mark.parametrize("params", ["baked", "argument"])
@pytest.mark.parametrize("case", list(CASES))
def test_exported_file_equals_predict_at_two_batch_sizes(tmp_path, case, params):
    build, data = CASES[case]
    model = build()
    path = tmp_path / "model.kfx"
    in_memory = keras.export.export(model, path, params=params)
    forward = keras.export.load(path)
    assert forward.manifest == in_memory.manifest
    for n in BATCHES:
        x = data(n)
        expected = model.predict(x)
        assert_same(forward(x), expected)
        assert_same(in_memory(x), expected)
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    assert names == sorted(["manifest.json", "function.jaxexport"] + (["weights.npz"] if params == "argument" else []))


def test_multi_input_manifest_dtypes_and_dict_inputs(tmp_path):
    model = headline_model()
    forward = model.export(tmp_path / "headline.kfx", params="argument")
    manifest = forward.manifest
    assert [(s["name"], s["shape"], s["dtype"]) for s in manifest["inputs"]] == [
        ("main_input", [None, 12], "int32"), ("aux_input", [None, 5], "float32"),
    ]
    assert forward.output_names == ["main_output", "aux_output"]
    assert manifest["platforms"] == [jax.export.default_export_platform()]
    ids, extra = headline_data(4)
    by_list = forward([ids, extra])
    by_name = forward({"main_input": ids, "aux_input": extra})
    assert_same(by_name, by_list)
    # Token ids given as whole floats are cast to the Input's int32, as predict does.
    assert_same(forward([ids.astype(np.float32), extra]), by_list)


def test_dict_outputs_and_replaced_weights(tmp_path):
    inputs = Input(shape=(4,), name="x")
    model = Model({"x": inputs}, {"score": Dense(1, name="score")(inputs), "logits": Dense(3, name="logits")(inputs)})
    forward = model.export(tmp_path / "dict.kfx", params="argument")
    x = rng.random((5, 4), dtype=np.float32)
    got = forward({"x": x})
    assert list(got) == ["logits", "score"]  # a dict's outputs in Keras 3's flattening order: keys sorted
    assert_same(got, model.predict({"x": x}))
    doubled = tuple(2 * np.asarray(w) for w in forward.weights)
    twice = forward({"x": x}, weights=doubled)
    model.set_weights([2 * w for w in model.get_weights()])
    assert_same(twice, model.predict({"x": x}))


def test_batchnorm_export_uses_moving_statistics(tmp_path):
    model = batchnorm_model()
    forward = keras.export.load(model.export(tmp_path / "bn.kfx").source)
    x = batchnorm_data(17)
    training_outputs, _ = model.apply(*model.get_variables(), x, training=True)
    assert not np.allclose(np.asarray(forward(x)), np.asarray(training_outputs), atol=1e-3)
    assert_same(forward(x), model.predict(x))


def test_example_inputs_fix_free_axes_and_build_sequential(tmp_path):
    ids = Input(shape=(None,), dtype="int32", name="ids")
    model = Model(ids, Dense(2)(LSTM(4)(Embedding(20, 3)(ids))))
    forward = model.export(tmp_path / "seq.kfx", example_inputs=jax.ShapeDtypeStruct((1, 7), np.int32))
    assert forward.manifest["inputs"][0]["shape"] == [None, 7]
    x = rng.integers(0, 20, (3, 7)).astype(np.int32)
    assert_same(forward(x), model.predict(x))

    sequential = Sequential([Dense(5, activation="relu"), Dense(1)])
    x = rng.random((3, 4), dtype=np.float32)
    forward = sequential.export(tmp_path / "sequential.kfx", example_inputs=x)
    assert_same(forward(x), sequential.predict(x))


def test_multi_platform_lowering(tmp_path):
    model = mlp()
    forward = model.export(tmp_path / "multi.kfx", platforms=("cpu", "cuda"))
    assert forward.platforms == ("cpu", "cuda")
    x = mlp_data(3)
    if jax.default_backend() in ("cpu", "gpu"):
        assert_same(keras.export.load(tmp_path / "multi.kfx")(x), model.predict(x))


# ---------------------------------------------------------------------------------- errors
def rewrite(path, *, replace=None, extra=None, manifest_edit=None, fix_hashes=True):
    """Write ``path`` again with some members replaced or added, the manifest edited."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update(replace or {})
    manifest = json.loads(members["manifest.json"])
    if fix_hashes:
        from kfunc.export_loader import digest

        for name in manifest["members"]:
            manifest["members"][name] = {"size": len(members[name]), "sha256": digest(members[name])}
    if manifest_edit:
        manifest_edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    members.update(extra or {})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def exported_file(tmp_path):
    path = tmp_path / "model.kfx"
    mlp().export(path, params="argument")
    return path


def test_missing_truncated_and_garbage_files_raise(tmp_path, exported_file):
    with pytest.raises(ExportError, match="No export file at"):
        keras.export.load(tmp_path / "absent.kfx")
    data = exported_file.read_bytes()
    truncated = tmp_path / "truncated.kfx"
    for size in (len(data) // 2, len(data) - 10, 30):
        truncated.write_bytes(data[:size])
        with pytest.raises(ExportError, match="not a readable kfunc export file"):
            keras.export.load(truncated)
    truncated.write_bytes(b"not a zip archive at all")
    with pytest.raises(ExportError, match="not a readable kfunc export file"):
        keras.export.load(truncated)
    assert issubclass(ExportError, ValueError) and issubclass(ExportError, keras.errors.KfuncError)


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil", "a/../../evil", "C:\\evil"])
def test_unsafe_member_names_are_refused(exported_file, name):
    rewrite(exported_file, extra={name: b"x"})
    with pytest.raises(ExportError, match="unsafe name"):
        keras.export.load(exported_file)


def test_unexpected_member_is_refused(exported_file):
    rewrite(exported_file, extra={"payload.pkl": b"x"})
    with pytest.raises(ExportError, match="is not a kfunc export file: expected members"):
        keras.export.load(exported_file)


def test_tampered_function_fails_the_checksum(exported_file):
    with zipfile.ZipFile(exported_file) as archive:
        function = bytearray(archive.read("function.jaxexport"))
    function[len(function) // 2] ^= 0xFF
    rewrite(exported_file, replace={"function.jaxexport": bytes(function)}, fix_hashes=False)
    with pytest.raises(ExportError, match="does not match the size and SHA-256"):
        keras.export.load(exported_file)


def test_corrupt_function_with_matching_checksum_raises(exported_file):
    rewrite(exported_file, replace={"function.jaxexport": b"\x00" * 64})
    with pytest.raises(ExportError, match="serialized function cannot be read"):
        keras.export.load(exported_file)


def test_pickled_weights_are_refused(exported_file):
    buffer = io.BytesIO()
    np.savez(buffer, **{"params/dense/kernel": np.array([{"a": 1}], dtype=object)})
    rewrite(exported_file, replace={"weights.npz": buffer.getvalue()})
    with pytest.raises(ExportError, match="not a readable .npz of plain arrays"):
        keras.export.load(exported_file)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=99), "newer than this loader reads"),
        (lambda m: m.update(format="other"), "format must be 'kfunc-export'"),
        (lambda m: m["inputs"][0].update(dtype="object"), "unsupported dtype"),
        (lambda m: m["weights"][0].update(shape=[None, 3]), "invalid shape"),
        (lambda m: m["weights"][0].update(shape=[2, 2]), "the function expects"),
        (lambda m: m.update(params="baked"), "params 'baked' lists no weights"),
    ],
)
def test_invalid_manifest_raises(exported_file, edit, message):
    rewrite(exported_file, manifest_edit=edit)
    with pytest.raises(ExportError, match=message):
        keras.export.load(exported_file)


def test_bad_call_inputs_and_export_arguments_raise(tmp_path, exported_file):
    forward = keras.export.load(exported_file)
    with pytest.raises(ExportError, match=r"input 0 \('input_layer'\) must have shape \(None, 8\)"):
        forward(np.zeros((3, 7), np.float32))
    with pytest.raises(ExportError, match=r"expects 1 input\(s\)"):
        forward([np.zeros((3, 8), np.float32)] * 2)
    headline = headline_model().export(tmp_path / "headline.kfx")
    with pytest.raises(ExportError, match="every input needs the same batch size"):
        headline([np.zeros((3, 12), np.int32), np.zeros((4, 5), np.float32)])
    with pytest.raises(ExportError, match="not whole numbers"):
        headline([np.full((3, 12), 0.5, np.float32), np.zeros((3, 5), np.float32)])
    with pytest.raises(ExportError, match="dict given is missing"):
        headline({"main_input": np.zeros((3, 12), np.int32)})
    with pytest.raises(ExportError, match="params must be one of"):
        mlp().export(tmp_path / "x.kfx", params="constants")
    with pytest.raises(ExportError, match="platforms must be distinct names"):
        mlp().export(tmp_path / "x.kfx", platforms=("gpu",))
    assert not (tmp_path / "x.kfx").exists()


# ---------------------------------------------------------------------------------- jax only
LOADER_SCRIPT = """
import importlib.abc, importlib.util, json, sys
import numpy as np

class BlockKfunc(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("kfunc", "optax", "keras"):
            raise ImportError(f"blocked import of {name}")
        return None

sys.meta_path.insert(0, BlockKfunc())
loader_path, model_path, data_path, out_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("standalone_export_loader", loader_path)
loader = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loader)
forward = loader.load(model_path)
with np.load(data_path) as data:
    ids, extra = data["ids"], data["extra"]
outputs = [np.asarray(o) for o in forward([ids, extra])]
try:
    forward([ids])
except loader.ExportError as error:
    message = str(error)
np.savez(out_path, *outputs)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("kfunc", "optax", "keras"))
print(json.dumps({"leaked": leaked, "message": message}))
"""


def test_loader_runs_with_kfunc_unimportable(tmp_path):
    import kfunc.export_loader

    model = headline_model()
    model.export(tmp_path / "headline.kfx", params="argument")
    ids, extra = headline_data(17)
    np.savez(tmp_path / "data.npz", ids=ids, extra=extra)
    script = tmp_path / "run_loader.py"
    script.write_text(textwrap.dedent(LOADER_SCRIPT))
    result = subprocess.run(
        [sys.executable, str(script), kfunc.export_loader.__file__, str(tmp_path / "headline.kfx"),
         str(tmp_path / "data.npz"), str(tmp_path / "out.npz")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["leaked"] == []
    assert "expects 2 input(s)" in report["message"]
    with np.load(tmp_path / "out.npz") as out:
        got = [out["arr_0"], out["arr_1"]]
    assert_same(got, model.predict([ids, extra]))
