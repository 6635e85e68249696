"""Depthwise and separable convolutions, the noise layers and GroupNormalization: what the layer
table (``layer_cases.py``: Keras parity at inference, save/load) does not check: weight layouts,
the two depthwise lowerings, training-mode statistics, and error messages."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc.errors import LayerConfigError, LayerInputError
from kfunc.layers import (
    DepthwiseConv1D,
    DepthwiseConv2D,
    GaussianDropout,
    GaussianNoise,
    GroupNormalization,
    Input,
    SeparableConv1D,
    SeparableConv2D,
    SeparableConvolution2D,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    conv,
)
from kfunc.models import Model


def _built(layer, shape):
    layer(Input(shape=shape))
    return layer


def _train(layer, x, seed=0):
    """The layer's training-mode output on ``x`` (batch included), drawn with ``key(seed)``."""
    if not layer.built:
        _built(layer, x.shape[1:])
    params, state = layer.get_variables()
    outputs, _ = layer.apply(params, state, x, training=True, key=jax.random.key(seed))
    return np.asarray(outputs)


# ---------------------------------------------------------------------- convolutions
def test_depthwise_and_separable_weights_follow_keras():
    depthwise = _built(DepthwiseConv2D((3, 2), depth_multiplier=2), (6, 6, 3))
    assert [(v.name, v.shape) for v in depthwise.weights] == [("kernel", (3, 2, 3, 2)), ("bias", (6,))]
    separable = _built(SeparableConv1D(5, 3, depth_multiplier=2, use_bias=True), (8, 3))
    assert [(v.name, v.shape) for v in separable.weights] == [
        ("depthwise_kernel", (3, 3, 2)),
        ("pointwise_kernel", (1, 6, 5)),
        ("bias", (5,)),
    ]
    assert SeparableConvolution2D is SeparableConv2D


def test_depthwise_output_channel_order_is_channel_then_multiplier():
    """Output channel ``c * multiplier + m`` is input channel ``c`` under kernel ``[..., c, m]``."""
    layer = _built(DepthwiseConv1D(1, depth_multiplier=2, use_bias=False), (4, 3))
    kernel = np.arange(1.0, 7.0, dtype=np.float32).reshape(1, 3, 2)
    layer.set_weights([kernel])
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    expected = (x[..., :, None] * kernel[0]).reshape(2, 4, 6)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6)


LOWERING_CASES = [
    (lambda: DepthwiseConv2D((3, 2), strides=2, dilation_rate=2, padding="same", depth_multiplier=2), (7, 8, 3)),
    (lambda: DepthwiseConv1D(3, dilation_rate=2, data_format="channels_first"), (3, 9)),
    (lambda: SeparableConv2D(4, 3, padding="same", activation="tanh"), (5, 5, 3)),
]


def _outputs_and_gradients(make, shape, lowering, monkeypatch):
    monkeypatch.setattr(conv, "LOWERING", lowering)
    kfunc.utils.set_random_seed(0)  # the same first weights for both lowerings
    inputs = Input(shape=shape)
    model = Model(inputs, make()(inputs))
    # Weights and inputs drawn on the host: compiling JAX's random generators costs seconds here.
    params, state = model.get_variables()
    x = np.random.default_rng(1).standard_normal((4,) + shape).astype(np.float32)

    def loss(p, x):
        return jnp.sum(model.apply(p, state, x)[0] ** 2)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)


@pytest.mark.parametrize("index", range(len(LOWERING_CASES)))
def test_depthwise_slices_equal_xla_grouped_convolution(index, monkeypatch):
    make, shape = LOWERING_CASES[index]
    expected = _outputs_and_gradients(make, shape, "xla", monkeypatch)
    actual = _outputs_and_gradients(make, shape, "patches", monkeypatch)
    for a, b in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def test_convolution_errors():
    with pytest.raises(LayerConfigError, match=r"DepthwiseConv2D: depth_multiplier must be a positive integer, received 0"):
        DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(LayerConfigError, match=r"DepthwiseConv1D: padding must be one of \['valid', 'same'\], received 'causal'"):
        DepthwiseConv1D(3, padding="causal")
    with pytest.raises(LayerConfigError, match=r"SeparableConv2D: filters must be a positive integer, received -1"):
        SeparableConv2D(-1, 3)
    with pytest.raises(LayerConfigError, match=r"SeparableConv1D: dilation_rate must be a positive int or a tuple of 1"):
        SeparableConv1D(2, 3, dilation_rate=(1, 2))
    with pytest.raises(LayerInputError, match=r"\(DepthwiseConv2D\): spatial axis 0 of the input has size 2, smaller "
                       r"than the kernel's extent 3 .* Use padding='same'"):
        DepthwiseConv2D(3)(Input(shape=(2, 5, 3)))
    with pytest.raises(LayerConfigError, match=r"\(SeparableConv2D\) needs the channel axis of its input to be known"):
        SeparableConv2D(2, 3)(Input(shape=(5, 5, None)))
    layer = DepthwiseConv2D(3)
    layer(Input(shape=(5, 5, 3)))
    with pytest.raises(LayerInputError, match=r"must have size 3 on axis -1 .* built for 3 input channels"):
        layer(Input(shape=(5, 5, 4)))


# ---------------------------------------------------------------------- noise layers
@pytest.mark.parametrize(
    "make, shape, channel_axis",
    [
        (lambda: SpatialDropout1D(0.5), (6, 32), -1),
        (lambda: SpatialDropout2D(0.5), (3, 4, 32), -1),
        (lambda: SpatialDropout2D(0.5, data_format="channels_first"), (32, 3, 4), 1),
        (lambda: SpatialDropout3D(0.5, seed=7), (2, 3, 2, 32), -1),
    ],
)
def test_spatial_dropout_drops_whole_channels(make, shape, channel_axis):
    layer = make()
    x = np.ones((64,) + shape, np.float32)
    y = _train(layer, x)
    # Each (example, channel) is all zeros or all 1 / (1 - rate) over its spatial positions.
    per_channel = np.moveaxis(y, channel_axis, 1).reshape(64, 32, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert np.all(per_channel.min(axis=-1) == per_channel.max(axis=-1))
    dropped = np.mean(per_channel[..., 0] == 0.0)  # 2048 draws: standard error 0.011
    assert 0.44 < dropped < 0.56
    np.testing.assert_array_equal(np.asarray(layer(x)), x)  # inference: identity


def test_gaussian_noise_statistics():
    layer = GaussianNoise(0.3)
    x = np.full((400, 250), 2.0, np.float32)  # 100,000 draws
    noise = _train(layer, x) - x
    assert abs(noise.mean()) < 0.005
    assert abs(noise.std() - 0.3) < 0.005
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(_train(layer, x, seed=3), _train(layer, x, seed=3))
    assert not np.array_equal(_train(layer, x, seed=3), _train(layer, x, seed=4))


def test_gaussian_dropout_statistics():
    layer = GaussianDropout(0.2)
    x = np.full((400, 250), 3.0, np.float32)
    factor = _train(layer, x) / x
    assert abs(factor.mean() - 1.0) < 0.005
    assert abs(factor.std() - np.sqrt(0.2 / 0.8)) < 0.005
    np.testing.assert_array_equal(np.asarray(layer(x)), x)


def test_seed_changes_the_noise_for_the_same_key():
    x = np.zeros((4, 8), np.float32)
    a, b, c = _train(GaussianNoise(0.5, seed=1), x), _train(GaussianNoise(0.5, seed=1), x), _train(GaussianNoise(0.5, seed=2), x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_layers_in_a_trained_model():
    """fit provides the key: the model trains with every noise layer active, and predicts deterministically."""
    kfunc.utils.set_random_seed(0)
    inputs = Input(shape=(4, 4, 2))
    x = SpatialDropout2D(0.3)(inputs)
    x = GaussianNoise(0.1)(x)
    x = DepthwiseConv2D(3, padding="same")(x)
    x = GroupNormalization(groups=2)(x)
    x = GaussianDropout(0.2)(x)
    outputs = kfunc.layers.Dense(1)(kfunc.layers.Flatten()(x))
    model = Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    data = np.random.default_rng(0).standard_normal((16, 4, 4, 2)).astype(np.float32)
    history = model.fit(data, data.sum(axis=(1, 2, 3))[:, None], epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    np.testing.assert_array_equal(model.predict(data, verbose=0), model.predict(data, verbose=0))


def test_noise_layer_errors():
    with pytest.raises(LayerConfigError, match=r"Layer 'noisy' \(GaussianNoise\) needs a random key in training mode"):
        layer = _built(GaussianNoise(0.2, name="noisy"), (3,))
        layer.apply({}, {}, np.ones((2, 3), np.float32), training=True)
    with pytest.raises(LayerConfigError, match=r"SpatialDropout2D: rate is the probability of dropping a unit and must be in \[0, 1\), received 1.0"):
        SpatialDropout2D(1.0)
    with pytest.raises(LayerConfigError, match=r"SpatialDropout3D: data_format must be one of \['channels_last', 'channels_first'\]"):
        SpatialDropout3D(0.1, data_format="channels_middle")
    with pytest.raises(LayerInputError, match=r"\(SpatialDropout2D\): input 0 must have rank 4 .* received shape \(None, 5, 3\)"):
        SpatialDropout2D(0.1)(Input(shape=(5, 3)))
    with pytest.raises(LayerConfigError, match=r"GaussianNoise: stddev is the standard deviation of the noise and must be a number in \[0, 1\], received 1.5"):
        GaussianNoise(1.5)
    with pytest.raises(LayerConfigError, match=r"GaussianDropout: rate is the probability of dropping a unit and must be in \[0, 1\), received 1"):
        GaussianDropout(1)


# ---------------------------------------------------------------------- GroupNormalization
def test_group_normalization_is_instance_norm_with_one_group_per_channel():
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32) * 3 + 1
    layer = _built(GroupNormalization(groups=-1, epsilon=1e-5), (5, 4, 3))
    mean = x.mean(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)
    assert [(v.name, v.shape) for v in layer.weights] == [("gamma", (3,)), ("beta", (3,))]
    assert GroupNormalization.from_config(layer.get_config()).get_config()["groups"] == -1


def test_group_normalization_groups_are_consecutive_channels():
    """groups=2 over 4 channels: channels (0, 1) share statistics, and (2, 3)."""
    x = np.random.default_rng(1).standard_normal((3, 6, 4)).astype(np.float32)
    layer = _built(GroupNormalization(groups=2, epsilon=1e-5), (6, 4))
    grouped = x.reshape(3, 6, 2, 2)
    mean, var = grouped.mean(axis=(1, 3), keepdims=True), grouped.var(axis=(1, 3), keepdims=True)
    expected = ((grouped - mean) / np.sqrt(var + 1e-5)).reshape(3, 6, 4)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_group_normalization_errors():
    with pytest.raises(LayerConfigError, match=r"GroupNormalization: groups must be a positive integer \(or -1 for one group per channel\), received 0"):
        GroupNormalization(groups=0)
    with pytest.raises(LayerConfigError, match=r"GroupNormalization: axis must be one integer, the channel axis .* received \[1, 2\]"):
        GroupNormalization(axis=[1, 2])
    with pytest.raises(LayerConfigError, match=r"\(GroupNormalization\): groups=4 must divide the 6 channels of axis -1 .* choose a divisor of 6"):
        GroupNormalization(groups=4)(Input(shape=(3, 6)))
    with pytest.raises(LayerConfigError, match=r"\(GroupNormalization\): axis=0 is not a channel axis of the input shape \(None, 3, 6\)"):
        GroupNormalization(groups=1, axis=0)(Input(shape=(3, 6)))
    with pytest.raises(LayerConfigError, match=r"axis=3 is not a channel axis .* pass an axis in 1..2 or -2..-1"):
        GroupNormalization(groups=1, axis=3)(Input(shape=(3, 6)))
