"""The two convolution lowerings (XLA's convolution and patches + matrix product, whole or in
batch chunks) give the same outputs and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kfunc.layers import Conv1D, Conv2D, Conv3D, Input
from kfunc.layers import conv
from kfunc.models import Model

CASES = [
    (lambda: Conv2D(6, 3), (9, 9, 4)),
    (lambda: Conv2D(5, (3, 2), strides=2, padding="same"), (9, 8, 3)),
    (lambda: Conv2D(4, 3, dilation_rate=2, data_format="channels_first"), (3, 10, 10)),
    (lambda: Conv1D(4, 3, padding="causal", dilation_rate=2), (12, 3)),
    (lambda: Conv3D(3, 2), (5, 5, 5, 2)),
]


def outputs_and_gradients(make, shape, lowering, chunk_bytes, monkeypatch):
    monkeypatch.setattr(conv, "LOWERING", lowering)
    monkeypatch.setattr(conv, "PATCH_CHUNK_BYTES", chunk_bytes)
    layer = make()
    inputs = Input(shape=shape)
    model = Model(inputs, layer(inputs))
    params, state = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (8,) + shape)

    def loss(p, x):
        return jnp.sum(model.apply(p, state, x)[0] ** 2)

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)
    return value, grads


@pytest.mark.parametrize("index", range(len(CASES)))
def test_patches_equal_xla_convolution(index, monkeypatch):
    make, shape = CASES[index]
    expected = outputs_and_gradients(make, shape, "xla", conv.PATCH_CHUNK_BYTES, monkeypatch)
    # The whole batch in one chunk, and 512 bytes: several chunks.
    for chunk_bytes in (6 * 1024 * 1024, 512):
        actual = outputs_and_gradients(make, shape, "patches", chunk_bytes, monkeypatch)
        for a, b in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4, err_msg=f"chunks of {chunk_bytes} bytes")


def test_chunk_count_divides_the_batch():
    assert conv._chunks(128, 663_552) == 16
    assert conv._chunks(100, 10 * conv.PATCH_CHUNK_BYTES // 100) == 10
    assert conv._chunks(7, 10) == 1


def test_the_lowering_is_chosen_per_target_platform_of_an_export():
    """A multi-platform export made on CPU carries XLA's convolution for CUDA and the slicing for
    CPU; a CPU-only program holds no XLA convolution at all."""
    import kfunc

    inputs = kfunc.Input(shape=(8, 8, 3))
    outputs = kfunc.layers.DepthwiseConv2D(3)(kfunc.layers.Conv2D(4, 3)(inputs))
    model = kfunc.Model(inputs, outputs)
    params, state = model.init(jax.random.key(0))
    x = jnp.ones((2, 8, 8, 3), jnp.float32)

    def forward(p, x):
        return model.apply(p, state, x)[0]

    cpu_only = jax.export.export(jax.jit(forward), platforms=["cpu"])(params, x).mlir_module()
    both = jax.export.export(jax.jit(forward), platforms=["cpu", "cuda"])(params, x).mlir_module()
    assert "stablehlo.convolution" not in cpu_only
    assert "stablehlo.convolution" in both and "stablehlo.case" in both
