"""TimeDistributed's two lowerings (vmap for stateless layers, folding time into the batch for
layers with state or randomness) and their Keras semantics."""

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.layers import BatchNormalization, Dense, Dropout, Input, TimeDistributed
from kfunc.models import Model

rng = np.random.default_rng(2)


def test_stateless_layer_maps_over_time_like_a_loop():
    inputs = Input(shape=(5, 3))
    dense = Dense(4)
    model = Model(inputs, TimeDistributed(dense)(inputs))
    x = rng.random((2, 5, 3), dtype=np.float32)
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(model.predict(x), x @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_batchnorm_statistics_span_all_timesteps():
    """As Keras 2 (time folded into the batch): one set of statistics over every frame. Keras 3
    maps the layer over time instead, normalizing each timestep separately."""
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    inputs = Input(shape=(6, 3))
    norm = BatchNormalization(momentum=0.5)
    model = Model(inputs, TimeDistributed(norm)(inputs))
    params, state = model.get_variables()
    out, new_state = model.apply(params, state, x, training=True)
    flat = x.reshape(-1, 3)
    expected = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3)
    np.testing.assert_allclose(np.asarray(out).reshape(-1, 3), expected, rtol=1e-4, atol=1e-5)
    moving_mean = jax.tree_util.tree_leaves(new_state)[0]
    np.testing.assert_allclose(moving_mean, 0.5 * x.reshape(-1, 3).mean(0), rtol=1e-5, atol=1e-6)


def test_dropout_masks_differ_between_timesteps():
    inputs = Input(shape=(4, 50))
    model = Model(inputs, TimeDistributed(Dropout(0.5))(inputs))
    params, state = model.get_variables()
    out, _ = model.apply(params, state, jnp.ones((1, 4, 50)), training=True, key=jax.random.key(0))
    masks = np.asarray(out[0] > 0)
    assert not all(np.array_equal(masks[0], m) for m in masks[1:])
