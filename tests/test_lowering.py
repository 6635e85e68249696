"""The lowered model is plain JAX: a clean jaxpr, and it composes with jit, grad and vmap."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

import kfunc
from kfunc.layers import BatchNormalization, Dense, Dropout, Input
from kfunc.models import Model
from kfunc.testing import count_compilations


def mlp():
    inputs = Input(shape=(16,))
    x = Dense(32, activation="relu")(inputs)
    x = Dense(32, activation="relu")(x)
    return Model(inputs, Dense(4)(x))


def primitive_names(jaxpr):
    names = []
    for eqn in jaxpr.eqns:
        names.append(eqn.primitive.name)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            names.extend(primitive_names(sub))
    return names


def test_jaxpr_of_a_three_layer_mlp_holds_only_its_math():
    lowered = kfunc.lower(mlp())
    params, state = lowered.init(jax.random.key(0))
    jaxpr = jax.make_jaxpr(lambda p, x: lowered.apply(p, state, x)[0])(params, jnp.ones((8, 16)))
    names = primitive_names(jaxpr.jaxpr)
    assert names.count("dot_general") == 3
    # relu is max(x, 0) behind jax.nn.relu's custom_jvp / jit wrappers; biases broadcast and add.
    assert set(names) <= {"dot_general", "add", "broadcast_in_dim", "max", "custom_jvp_call", "pjit", "jit"}
    assert len([n for n in names if n not in ("custom_jvp_call", "pjit", "jit")]) == 3 * 3 + 2


def test_init_is_deterministic_in_its_key():
    lowered = kfunc.lower(mlp())
    a = lowered.init(jax.random.key(1))
    b = lowered.init(jax.random.key(1))
    c = lowered.init(jax.random.key(2))
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a.params["dense"]["kernel"], c.params["dense"]["kernel"])


def test_apply_composes_with_jit_grad_and_vmap():
    model = mlp()
    lowered = kfunc.lower(model)
    params, state = lowered.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (5, 16))
    y = jax.random.normal(jax.random.key(2), (5, 4))

    def loss(p, xb, yb):
        out, _ = lowered.apply(p, state, xb)
        return jnp.mean((out - yb) ** 2)

    grads = jax.jit(jax.grad(loss))(params, x, y)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x[:, None], y[:, None])
    assert per_example["dense"]["kernel"].shape == (5, 16, 32)
    # The mean of per-example gradients is the batch gradient.
    np.testing.assert_allclose(per_example["dense"]["kernel"].mean(0), grads["dense"]["kernel"], rtol=1e-4, atol=1e-6)


def test_apply_equals_model_on_arrays_and_predict():
    model = mlp()
    x = np.random.default_rng(0).random((7, 16), dtype=np.float32)
    params, state = model.get_variables()
    out, _ = jax.jit(model.apply)(params, state, x)
    np.testing.assert_allclose(out, model(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, model.predict(x, batch_size=3), rtol=1e-6, atol=1e-6)


def test_batchnorm_state_is_threaded_through_apply():
    inputs = Input(shape=(3,))
    model = Model(inputs, BatchNormalization(momentum=0.5)(inputs))
    params, state = model.get_variables()
    x = jnp.arange(12.0).reshape(4, 3)
    out, new_state = model.apply(params, state, x, training=True)
    np.testing.assert_allclose(new_state["batch_normalization"]["moving_mean"], 0.5 * x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(new_state["batch_normalization"]["moving_variance"], 0.5 + 0.5 * x.var(0), rtol=1e-6)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    # Inference reads the moving statistics and returns the state unchanged.
    _, same_state = model.apply(params, state, x, training=False)
    jax.tree_util.tree_map(np.testing.assert_array_equal, same_state, state)


def test_dropout_key_changes_masks_and_inference_ignores_it():
    inputs = Input(shape=(100,))
    model = Model(inputs, Dropout(0.5)(Dense(100)(inputs)))
    params, state = model.get_variables()
    x = jnp.ones((2, 100))
    a, _ = model.apply(params, state, x, training=True, key=jax.random.key(0))
    b, _ = model.apply(params, state, x, training=True, key=jax.random.key(1))
    assert not np.array_equal(a, b)
    c, _ = model.apply(params, state, x, training=False, key=jax.random.key(0))
    d, _ = model.apply(params, state, x, training=False)
    np.testing.assert_array_equal(c, d)


def test_predict_compiles_each_batch_shape_once():
    """The last, shorter batch runs at its own size (no layer sees padding rows), compiled once
    per size and then reused."""
    model = mlp()
    rng = np.random.default_rng(0)
    model.predict(rng.random((10, 16), dtype=np.float32), batch_size=4)  # batches of 4, 4 and 2
    with count_compilations() as compiles:
        for count in (1, 5, 13, 16, 6, 2):  # new: only a batch of 1
            out = model.predict(rng.random((count, 16), dtype=np.float32), batch_size=4)
            assert out.shape == (count, 4)
    assert compiles.count == 1, compiles.names


def test_get_and_set_variables_round_trip():
    model = mlp()
    fresh = kfunc.lower(model).init(jax.random.key(5))
    model.set_variables(fresh)
    jax.tree_util.tree_map(np.testing.assert_array_equal, model.get_variables(), fresh)
    assert np.array_equal(model.get_weights()[0], fresh.params["dense"]["kernel"])
