"""kfunc.random against Keras 3: exact draws for int seeds and eager SeedGenerators, and pure draws
inside keyed calls (apply with key=, fit) for layers that own a SeedGenerator."""

import jax
import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc import random as kr

keras = pytest.importorskip("keras")

DRAWS = [
    ("normal", ((3, 4),), {"mean": 1.0, "stddev": 2.0}),
    ("uniform", ((5,),), {"minval": -1.0, "maxval": 2.0}),
    ("randint", ((6,), 0, 10), {}),
    ("truncated_normal", ((3, 3),), {"stddev": 2.0}),
    ("gamma", ((4,), 2.0), {}),
    ("binomial", ((4,), 5.0, 0.3), {}),
    ("beta", ((4,), 2.0, 3.0), {}),
]
X = np.arange(24, dtype="float32").reshape(4, 6) + 1.0


@pytest.mark.parametrize("name,args,kwargs", DRAWS, ids=[d[0] for d in DRAWS])
def test_int_seed_draws_equal_keras(name, args, kwargs):
    ours = getattr(kr, name)(*args, seed=42, **kwargs)
    theirs = getattr(keras.random, name)(*args, seed=42, **kwargs)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6)
    # An int seed gives the same numbers at every call.
    np.testing.assert_array_equal(ours, getattr(kr, name)(*args, seed=42, **kwargs))


def test_array_functions_equal_keras():
    for noise_shape in (None, (None, 1), (1, 6)):
        np.testing.assert_array_equal(kr.dropout(X, 0.5, noise_shape=noise_shape, seed=3),
                                      keras.random.dropout(X, 0.5, noise_shape=noise_shape, seed=3))
    np.testing.assert_array_equal(kr.dropout(X, 0.0, seed=3), X)
    np.testing.assert_array_equal(kr.dropout(X, 1.0, seed=3), np.zeros_like(X))
    for axis in (0, 1):
        np.testing.assert_array_equal(kr.shuffle(X, axis=axis, seed=5), keras.random.shuffle(X, axis=axis, seed=5))
    logits = np.log(np.array([[0.1, 0.9], [0.5, 0.5], [0.98, 0.02]], "float32"))
    np.testing.assert_array_equal(kr.categorical(logits, 7, seed=9), keras.random.categorical(logits, 7, seed=9))


def test_eager_seed_generator_advances_as_keras():
    ours, theirs = kr.SeedGenerator(7), keras.random.SeedGenerator(7)
    for _ in range(3):
        np.testing.assert_array_equal(kr.normal((2,), seed=ours), keras.random.normal((2,), seed=theirs))
        np.testing.assert_allclose(kr.dropout(X, 0.3, seed=ours), keras.random.dropout(X, 0.3, seed=theirs), rtol=1e-6)
    np.testing.assert_array_equal(ours.state, np.asarray(theirs.state.value))
    config = ours.get_config()
    assert config == {"seed": 7, "name": ours.name}
    assert kr.SeedGenerator.from_config(config).seed == 7


def test_jax_key_and_none_seeds():
    key = jax.random.key(0)
    np.testing.assert_array_equal(kr.normal((3,), seed=key), jax.random.normal(key, (3,)))
    np.testing.assert_array_equal(kr.normal((3,), seed=jax.random.PRNGKey(1)),
                                  jax.random.normal(jax.random.PRNGKey(1), (3,)))
    assert not np.array_equal(kr.normal((3,)), kr.normal((3,)))  # the global generator advances
    with pytest.raises(ValueError, match="while JAX traces a function that was given no random key"):
        jax.jit(lambda: kr.normal((3,)))()


class SeededDropout(layers.Layer):
    """Keras 3's custom-dropout example: a SeedGenerator attribute and a random op in call."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = kr.SeedGenerator(1337)

    def call(self, x, training=False):
        if training:
            return kr.dropout(x, self.rate, seed=self.seed_generator)
        return x


class TwoDraws(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generators = [kr.SeedGenerator(1)]

    def call(self, x, training=False):
        return x + kr.normal(x.shape[1:], seed=self.generators[0]) - kr.normal(x.shape[1:], seed=self.generators[0])


def _model(rate=0.5):
    inputs = kfunc.Input((6,))
    hidden = layers.Dense(8, kernel_initializer="ones")(inputs)
    hidden = SeededDropout(rate)(hidden)
    return kfunc.Model(inputs, layers.Dense(1, kernel_initializer="ones")(hidden))


def test_a_layer_holding_a_seed_generator_uses_keys():
    assert SeededDropout(0.5).uses_key and TwoDraws().uses_key
    assert not layers.Dense(2).uses_key and _model().uses_key


def test_apply_draws_from_the_call_key():
    model = _model()
    params, state = model.get_variables()
    generator = model.layers[2].seed_generator
    run = jax.jit(lambda key: model.apply(params, state, X, training=True, key=key)[0])
    first, again, other = run(jax.random.key(0)), run(jax.random.key(0)), run(jax.random.key(1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(model.apply(params, state, X, training=True, key=jax.random.key(0))[0], first)
    assert generator.state[1] == 0  # pure: the generator's own state never moved
    inference, _ = model.apply(params, state, X, training=False)
    np.testing.assert_allclose(inference, model.predict(X, verbose=0), rtol=1e-6)


def test_two_draws_of_one_generator_in_one_call_differ():
    layer = TwoDraws()
    symbolic = layer(kfunc.Input((6,)))  # shape inference of a layer that always draws
    assert symbolic.shape == (None, 6)
    outputs, _ = layer.apply({}, {}, X, key=jax.random.key(3))
    assert not np.allclose(outputs, X)


def test_without_a_key_under_jit_the_draw_is_refused():
    model = _model()
    params, state = model.get_variables()
    with pytest.raises(ValueError, match="SeedGenerator 'seed_generator.*' was asked for a draw while JAX traces"):
        jax.jit(lambda p: model.apply(p, state, X, training=True)[0])(params)


def test_eager_calls_advance_the_generator():
    layer = SeededDropout(0.5)
    first, second = layer(X, training=True), layer(X, training=True)
    assert not np.array_equal(first, second)
    assert layer.seed_generator.state[1] == 2
    np.testing.assert_array_equal(layer(X), X)


def test_dropout_statistics_in_a_keyed_call_match_keras_semantics():
    layer = SeededDropout(0.3)
    ones = np.ones((200, 50), "float32")
    layer(kfunc.Input((50,)))
    ours, _ = layer.apply({}, {}, ones, training=True, key=jax.random.key(5))
    theirs = keras.random.dropout(ones, 0.3, seed=keras.random.SeedGenerator(5))
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    # Same values kept (scaled by 1 / (1 - rate)) and the same drop rate, up to sampling noise.
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, np.float32(1 / 0.7)}
    assert abs((ours == 0).mean() - 0.3) < 0.02 and abs((theirs == 0).mean() - 0.3) < 0.02
    assert abs(ours.mean() - 1.0) < 0.03


def test_normal_statistics_in_a_keyed_call():
    class Noise(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = kr.SeedGenerator()

        def call(self, x):
            return x + kr.normal(x.shape, mean=1.0, stddev=2.0, seed=self.seed_generator)

    noise = Noise()
    noise(kfunc.Input((100,)))
    drawn, _ = noise.apply({}, {}, np.zeros((100, 100), "float32"), key=jax.random.key(0))
    theirs = np.asarray(keras.random.normal((100, 100), mean=1.0, stddev=2.0, seed=0))
    for sample in (np.asarray(drawn), theirs):
        assert abs(sample.mean() - 1.0) < 0.06 and abs(sample.std() - 2.0) < 0.06


def _fit_losses():
    kfunc.utils.set_random_seed(0)
    model = _model(0.5)
    model.compile("sgd", "mse")
    x = np.linspace(-1, 1, 96, dtype="float32").reshape(16, 6)
    y = np.ones((16, 1), "float32")
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights()


def test_fit_with_a_seeded_layer_is_pure_and_repeatable():
    first_losses, first_weights = _fit_losses()
    kfunc.utils.clear_session()
    second_losses, second_weights = _fit_losses()
    assert first_losses == second_losses
    for a, b in zip(first_weights, second_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_seed_errors():
    with pytest.raises(ValueError, match="seed must be an int, a kfunc.random.SeedGenerator, a JAX key"):
        kr.normal((2,), seed="abc")
    with pytest.raises(ValueError, match="SeedGenerator: seed must be an int or None, received float"):
        kr.SeedGenerator(1.5)
    with pytest.raises(ValueError, match=r"unexpected keyword argument\(s\) \['backend'\]"):
        kr.SeedGenerator(1, backend="numpy")
    with pytest.raises(ValueError, match="uniform: dtype must be a floating dtype"):
        kr.uniform((2,), dtype="int32", seed=1)
    with pytest.raises(ValueError, match="randint: dtype must be an integer dtype"):
        kr.randint((2,), 0, 3, dtype="float32", seed=1)
    with pytest.raises(ValueError, match=r"logits must be 2-D \(batch_size, num_classes\)"):
        kr.categorical(np.zeros(3, "float32"), 2, seed=1)
