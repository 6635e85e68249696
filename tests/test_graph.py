"""Graph building: ordering, checks with clear errors, deep chains, cut and nested models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc.errors import GraphError
from kfunc.layers import LSTM, Add, Dense, Input, TimeDistributed, concatenate
from kfunc.models import Model, Sequential

rng = np.random.default_rng(1)


def test_disconnected_graph_names_missing_input_and_first_layer():
    a = Input(shape=(3,), name="a")
    b = Input(shape=(3,), name="b")
    merged = Add(name="adder")([Dense(3)(a), b])
    out = Dense(1)(merged)
    with pytest.raises(GraphError, match=r"disconnected.*Input 'b'.*first needed by layer 'adder' \(Add\).*inputs \['a'\]"):
        Model(a, out)


def test_input_listed_twice():
    a = Input(shape=(3,), name="a")
    with pytest.raises(GraphError, match=r"input 'a' is listed twice.*positions 0 and 1"):
        Model([a, a], Dense(1)(a))


def test_input_not_used_by_any_output():
    a = Input(shape=(3,), name="a")
    b = Input(shape=(3,), name="b")
    with pytest.raises(GraphError, match=r"input\(s\) \['b'\] are not used by any output"):
        Model([a, b], Dense(1)(a))


def test_duplicate_layer_names():
    a = Input(shape=(3,))
    x = Dense(3, name="twin")(a)
    with pytest.raises(GraphError, match=r"the name 'twin' is used by two different layers \(Dense and Dense\)"):
        Model(a, Dense(1, name="twin")(x))


def test_outputs_must_be_symbolic_tensors():
    a = Input(shape=(3,))
    with pytest.raises(GraphError, match=r"outputs\[1\] must be a symbolic tensor.*ndarray of shape \(2,\)"):
        Model(a, [Dense(1)(a), np.zeros(2)])


def test_layer_order_and_weight_order_follow_keras_depth_order():
    a = Input(shape=(4,), name="a")
    b = Input(shape=(2,), name="b")
    x = Dense(5, name="deep")(a)
    x = Dense(5, name="deeper")(x)
    y = Dense(5, name="shallow")(b)
    out = concatenate([x, y], name="merge")
    model = Model([a, b], out)
    assert [layer.name for layer in model.layers] == ["a", "deep", "b", "deeper", "shallow", "merge"]
    assert [w.path for w in model.weights] == [
        "deep/kernel", "deep/bias", "deeper/kernel", "deeper/bias", "shallow/kernel", "shallow/bias",
    ]


# 2,000 layers are twice Python's recursion limit, so any recursive walk would fail; the README's
# 10,000 run in the slow job.
@pytest.mark.parametrize("depth", [2_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_a_chain_deeper_than_the_recursion_limit_builds_sorts_and_lowers(depth):
    x = inputs = Input(shape=(2,))
    for _ in range(depth):
        x = Dense(2, use_bias=False)(x)
    model = Model(inputs, x)
    assert len(model.layers) == depth + 1
    unrolled = kfunc.lower(model, fold_repeated_blocks=False)
    shapes = jax.eval_shape(unrolled.init, jax.random.key(0))
    jaxpr = jax.make_jaxpr(lambda p, v: unrolled.apply(p, {}, v)[0])(
        shapes.params, jax.ShapeDtypeStruct((1, 2), jnp.float32)
    )
    assert sum(e.primitive.name == "dot_general" for e in jaxpr.eqns) == depth
    folded = kfunc.lower(model)  # the same chain as one lax.scan over the stacked kernels
    jaxpr = jax.make_jaxpr(lambda p, v: folded.apply(p, {}, v)[0])(shapes.params, jax.ShapeDtypeStruct((1, 2), jnp.float32))
    assert [e.primitive.name for e in jaxpr.eqns].count("scan") == 1
    assert sum(e.primitive.name == "dot_general" for e in jaxpr.eqns) == 0


def test_model_cut_from_intermediate_tensors_shares_weights():
    inputs = Input(shape=(4,))
    hidden = Dense(8, activation="relu", name="encoder")(inputs)
    outputs = Dense(2, name="head")(hidden)
    full = Model(inputs, outputs)
    head_only = Model(hidden, outputs)
    assert [layer.name for layer in head_only.layers] == ["head"]
    x = rng.random((5, 4), dtype=np.float32)
    features = Model(inputs, hidden).predict(x)
    np.testing.assert_allclose(head_only.predict(features), full.predict(x), rtol=1e-6)
    full.get_layer("head").set_weights([np.ones((8, 2), np.float32), np.zeros(2, np.float32)])
    np.testing.assert_allclose(head_only.predict(features), features.sum(1, keepdims=True).repeat(2, 1), rtol=1e-5)


def test_nesting_models_to_depth_three_shares_weights():
    x = inner_in = Input(shape=(3,))
    inner = Model(inner_in, Dense(3, name="core")(x))
    middle_in = Input(shape=(3,))
    middle = Model(middle_in, inner(middle_in))
    outer_in = Input(shape=(3,))
    outer = Model(outer_in, middle(middle(outer_in)))
    params, _ = outer.get_variables()
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(
        {middle.name: {inner.name: {"core": {"bias": 0, "kernel": 0}}}}
    )
    data = rng.random((2, 3), dtype=np.float32)
    once = inner.predict(data)
    np.testing.assert_allclose(outer.predict(data), inner.predict(once), rtol=1e-6)


def test_layer_shared_across_nested_and_outer_model_is_stored_once():
    shared = Dense(3, name="shared")
    a = Input(shape=(3,))
    sub = Model(a, shared(a))
    b = Input(shape=(3,))
    top = Model(b, shared(sub(b)))
    params, _ = top.get_variables()
    # Stored once, at its first path in weights order (inside the nested model, which is deeper).
    assert params == {sub.name: {"shared": {"kernel": params[sub.name]["shared"]["kernel"], "bias": params[sub.name]["shared"]["bias"]}}}
    assert len(jax.tree_util.tree_leaves(params)) == 2 and len(top.weights) == 2
    out, _ = top.apply(params, {}, jnp.ones((1, 3)))
    kernel, bias = params[sub.name]["shared"]["kernel"], params[sub.name]["shared"]["bias"]
    expected = (jnp.ones((1, 3)) @ kernel + bias) @ kernel + bias
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_dict_inputs_and_outputs():
    a = Input(shape=(2,), name="left")
    b = Input(shape=(3,), name="right")
    model = Model({"left": a, "right": b}, {"sum": Dense(1)(concatenate([a, b]))})
    assert model.input_names == ["left", "right"]
    out = model.predict({"left": np.ones((4, 2)), "right": np.ones((4, 3))})
    assert set(out) == {"sum"} and out["sum"].shape == (4, 1)


def test_sequential_construction_forms_agree():
    def layers():
        return [Dense(4, activation="relu", input_shape=(3,)), Dense(2)]

    added = Sequential()
    for layer in layers():
        added.add(layer)
    listed = Sequential(layers())
    with_input = Sequential([Input(shape=(3,)), Dense(4, activation="relu"), Dense(2)])
    for model in (added, listed, with_input):
        assert model.output_shape == (None, 2)
        assert [w.shape for w in model.weights] == [(3, 4), (4,), (4, 2), (2,)]
        assert len(model.layers) == 2


def test_sequential_deferred_build_from_data_and_pop():
    model = Sequential([Dense(4), Dense(2)])
    out = model.predict(np.ones((3, 5), np.float32))
    assert out.shape == (3, 2) and model.input_shape == (None, 5)
    model.add(Dense(7))
    assert model.output_shape == (None, 7)
    popped = model.pop()
    assert popped.units == 7 and model.output_shape == (None, 2)


def test_sequential_callable_on_tensors_and_inside_time_distributed():
    model = Sequential([Dense(4, input_shape=(3,)), Dense(2)])
    sequence = Input(shape=(5, 3))
    per_step = TimeDistributed(model)(sequence)
    assert per_step.shape == (None, 5, 2)
    encoded = LSTM(6)(per_step)
    whole = Model(sequence, encoded)
    assert whole.count_params() == model.count_params() + 4 * (2 * 6 + 6 * 6 + 6)


def test_frozen_layer_weights_are_non_trainable():
    inputs = Input(shape=(3,))
    frozen = Dense(4, name="frozen")
    model = Model(inputs, Dense(1)(frozen(inputs)))
    frozen.trainable = False
    assert [w.path for w in model.trainable_weights] == ["dense/kernel", "dense/bias"]
    assert [w.path for w in model.non_trainable_weights] == ["frozen/kernel", "frozen/bias"]
    model.trainable = False
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 4


def test_an_unbuilt_sequential_called_on_an_input_builds_and_adds_one_node():
    model = kfunc.Sequential([kfunc.layers.Dense(3)])
    outputs = model(kfunc.Input((4,)))
    assert outputs.shape == (None, 3) and model.built
