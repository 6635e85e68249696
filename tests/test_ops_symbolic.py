"""Every op of the table (``op_cases.py``) on symbolic tensors: each array argument becomes an
``Input`` of the same shape and dtype. The recorded node's shape and dtype equal the eager
result's; one Model holding every case computes what the eager ops compute, and after
``save``/``load_model`` still does (its config round-trips unchanged)."""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from op_cases import CASES, F, one_case_per_op_module, op_of

import kfunc
from kfunc import ops
from kfunc.errors import SymbolicTensorError
from kfunc.graph.tensor import SymbolicTensor
from kfunc.saving.errors import ModelFileError
from kfunc.saving.model_config import model_spec

SYMBOLIC = [
    case for case in CASES
    if any(isinstance(leaf, np.ndarray) for leaf in jax.tree_util.tree_leaves((case.args, case.kwargs)))
]


def _symbolic_call(case, inputs: dict):
    """The case's op on symbolic tensors: each array (by identity) becomes one shared ``Input``."""

    def to_input(leaf):
        if not isinstance(leaf, np.ndarray):
            return leaf
        if id(leaf) not in inputs:
            inputs[id(leaf)] = (kfunc.Input(batch_shape=leaf.shape, dtype=leaf.dtype.name), leaf)
        return inputs[id(leaf)][0]

    args, kwargs = jax.tree_util.tree_map(to_input, (case.args, case.kwargs))
    return op_of(ops, case.name)(*args, **kwargs)


def _eager(case):
    return [jnp.asarray(leaf) for leaf in jax.tree_util.tree_leaves(op_of(ops, case.name)(*case.args, **case.kwargs))]


_DEFAULT_SYMBOLIC_IDS = one_case_per_op_module(SYMBOLIC, ops)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=() if c.id in _DEFAULT_SYMBOLIC_IDS else pytest.mark.slow) for c in SYMBOLIC],
)
def test_symbolic_shape_and_dtype_equal_eager(case):
    symbolic = jax.tree_util.tree_leaves(_symbolic_call(case, {}), is_leaf=lambda x: isinstance(x, SymbolicTensor))
    eager = _eager(case)
    assert all(isinstance(t, SymbolicTensor) for t in symbolic)
    assert [(t.shape, t.dtype) for t in symbolic] == [(e.shape, e.dtype) for e in eager]
    # convert_to_tensor of a symbolic tensor is the tensor, or its cast (as Keras 3).
    assert symbolic[0].layer.operation_name == ("cast" if case.name == "convert_to_tensor" else case.name)


@pytest.fixture(scope="module")
def every_op_model(tmp_path_factory):
    """One Model whose outputs are every symbolic case's outputs, saved and loaded once."""
    kfunc.utils.clear_session()
    inputs, outputs, expected = {}, [], []
    for case in SYMBOLIC:
        leaves = jax.tree_util.tree_leaves(_symbolic_call(case, inputs), is_leaf=lambda x: isinstance(x, SymbolicTensor))
        outputs.extend(leaves)
        expected.extend(_eager(case))
    tensors = [tensor for tensor, _ in inputs.values()]
    model = kfunc.Model(tensors, outputs)
    path = tmp_path_factory.mktemp("every_op") / "model.keras"
    model.save(path)
    loaded = kfunc.models.load_model(path)
    arrays = [array for _, array in inputs.values()]
    return model, loaded, arrays, expected


def _assert_close(results, expected):
    assert len(results) == len(expected)
    for index, (result, reference) in enumerate(zip(results, expected, strict=True)):
        result = jnp.asarray(result)
        assert result.dtype == reference.dtype, index
        np.testing.assert_allclose(np.asarray(result, np.float64) if result.dtype.kind != "c" else result,
                                   np.asarray(reference, np.float64) if reference.dtype.kind != "c" else reference,
                                   rtol=1e-5, atol=1e-6, err_msg=str(index))


def test_a_model_of_every_op_computes_the_eager_results(every_op_model):
    model, _, arrays, expected = every_op_model
    _assert_close(model(arrays), expected)


def test_a_model_of_every_op_saves_and_loads(every_op_model):
    model, loaded, arrays, expected = every_op_model
    _assert_close(loaded(arrays), expected)
    assert json.dumps(model_spec(loaded)) == json.dumps(model_spec(model))


def test_an_op_node_is_saved_by_its_public_name_and_static_arguments():
    x = kfunc.Input((4,), name="x")
    y = ops.concatenate([ops.relu(x), ops.mean(x, axis=-1, keepdims=True)], axis=-1)
    spec = model_spec(kfunc.Model(x, y))
    layers = {layer["config"]["name"]: layer for layer in spec["config"]["layers"]}
    concatenate = layers["concatenate"]
    assert concatenate["class_name"] == "OpLayer"
    config = concatenate["config"]
    assert (config["op"], config["args"], config["kwargs"], config["inputs"]) == ("concatenate", [[None, None]],
                                                                                   {"axis": -1}, [[0, 0, 0], [0, 0, 1]])
    assert layers["mean"]["config"]["kwargs"] == {"axis": -1, "keepdims": True}


def test_loading_refuses_an_op_name_kfunc_does_not_have(tmp_path):
    x = kfunc.Input((4,))
    model = kfunc.Model(x, ops.relu(x))
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["model"]["config"]["layers"]:
        if layer["class_name"] == "OpLayer":
            layer["config"]["op"] = "os.system"
    members["config.json"] = json.dumps(config).encode()
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"'os.system' is not an op of kfunc.ops"):
        kfunc.models.load_model(tampered)


def test_dtype_arguments_are_saved_as_names():
    x = kfunc.Input((3,))
    y = ops.cast(x, jnp.float16)
    z = ops.cast(x, np.dtype("int32"))
    spec = json.dumps(model_spec(kfunc.Model(x, [y, z])))
    assert '"float16"' in spec and '"int32"' in spec
    assert (y.dtype, z.dtype) == (jnp.float16, jnp.int32)


def test_a_model_mixing_layers_and_ops_fits_predicts_and_saves(tmp_path):
    x = kfunc.Input((4,))
    hidden = kfunc.layers.Dense(8)(x)
    features = ops.concatenate([ops.relu(hidden), ops.mean(hidden, axis=-1, keepdims=True)], axis=-1)
    outputs = kfunc.layers.Dense(1)(features * 0.5 + ops.sum(x, axis=-1, keepdims=True))
    model = kfunc.Model(x, outputs)
    model.compile(optimizer="adam", loss="mse")
    data = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    history = model.fit(data, data.sum(1, keepdims=True), epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "mixed.keras")
    loaded = kfunc.models.load_model(tmp_path / "mixed.keras")
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-5)


def test_control_flow_on_symbolic_tensors_records_a_node():
    x = kfunc.Input((3,))
    doubled = ops.fori_loop(0, 3, lambda i, value: value * 2, x)
    # Branches receive the operands' values when the model runs (a closure over a symbolic
    # tensor would hold no values).
    branch = ops.cast(ops.sum(x) > 0, "int32")
    total = ops.switch(branch, [lambda value: -ops.sum(value), lambda value: ops.sum(value)], doubled)
    model = kfunc.Model(x, [doubled, total])
    out, chosen = model(F)
    np.testing.assert_allclose(out, F * 8, rtol=1e-6)
    assert chosen.shape == () and np.isclose(chosen, abs(F.sum() * 8), rtol=1e-5)


def test_a_weight_among_symbolic_arguments_is_refused():
    layer = kfunc.layers.Dense(2)
    layer(np.ones((1, 3), "float32"))
    x = kfunc.Input((3,))
    with pytest.raises(SymbolicTensorError, match=r"ops.matmul received weight 'dense/kernel'.*inside a layer's call"):
        ops.matmul(x, layer.kernel)
