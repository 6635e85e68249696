"""Keras 3 layers, first group: what the layer table (``layer_cases.py``) cannot check.

``adapt`` against Keras 3's ``adapt`` on the same data; float ids into ``Embedding``; Softmax's
mask argument; the augmentation layers in training mode (exact results where the draw is fixed,
statistics otherwise, and identity at inference); AlphaDropout's statistics; activity penalties;
``get_config`` keys against Keras 3's; and every new error message.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import kfunc
from kfunc import layers as L
from kfunc.errors import LayerConfigError, LayerInputError
from kfunc.layers.image_transform import affine_transform
from kfunc.models import Model

keras = pytest.importorskip("keras")

rng = np.random.default_rng(11)


def _train(layer, x, seed=0):
    """The layer's training-mode output on ``x`` (batch included), drawn with ``key(seed)``."""
    if not layer.built:
        layer(L.Input(shape=x.shape[1:], dtype=str(x.dtype)))
    params, state = layer.get_variables()
    outputs, _ = layer.apply(params, state, x, training=True, key=jax.random.key(seed))
    return np.asarray(outputs)


# ---------------------------------------------------------------------- adapt
@pytest.mark.parametrize("axis", [-1, (1, 2), None])
def test_normalization_adapt_matches_keras_on_arrays_and_batches(axis):
    data = rng.normal(3.0, 2.0, (50, 2, 3)).astype(np.float32)
    batches = [data[:7], data[7:30], data[30:]]
    mine_array, mine_batches = L.Normalization(axis=axis), L.Normalization(axis=axis)
    mine_array.adapt(data)
    mine_batches.adapt(iter(batches))
    theirs = keras.layers.Normalization(axis=axis)
    theirs.adapt(data)
    keras_mean, keras_variance = (np.asarray(w) for w in theirs.get_weights()[:2])
    for layer in (mine_array, mine_batches):
        mean, variance, count = layer.get_weights()
        np.testing.assert_allclose(mean, keras_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, keras_variance, rtol=1e-5, atol=1e-6)
        # Keras 3 declares count but leaves it 0; kfunc records how many values each statistic saw.
        assert int(count) == data.size // max(keras_mean.size, 1)
    np.testing.assert_allclose(np.asarray(mine_batches(data)), np.asarray(theirs(data)), rtol=1e-5, atol=1e-5)


def test_normalization_adapt_then_fit_keeps_statistics_and_trains():
    data = rng.normal(5.0, 3.0, (32, 3)).astype(np.float32)
    norm = L.Normalization()
    norm.adapt([(data[:16], None), (data[16:], None)])  # (x, y) batches use x, as Keras's adapt
    inputs = L.Input(shape=(3,))
    model = Model(inputs, L.Dense(1)(norm(inputs)))
    model.compile("sgd", "mse")
    before = norm.get_weights()
    model.fit(data, data[:, :1], epochs=1, batch_size=8, verbose=0)
    for a, b in zip(before, norm.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(norm(data)).mean(axis=0), 0.0, atol=1e-5)


def _keras_adapted_boundaries(batches, num_bins, epsilon=0.01):
    """Keras 3's Discretization.adapt needs TensorFlow; its quantile summary steps are NumPy
    functions of its module, run here the way its adapt runs them."""
    from keras.src.layers.preprocessing import discretization

    summary = np.array([[], []], np.float32)
    for batch in batches:
        summary = discretization.merge_summaries(discretization.summarize(batch, epsilon), summary, epsilon)
    return discretization.get_bin_boundaries(summary, num_bins).tolist()


@pytest.mark.parametrize("num_bins", [3, 5])
def test_discretization_adapt_matches_keras_and_survives_config(num_bins):
    data = rng.exponential(2.0, (400, 2)).astype(np.float32)
    mine = L.Discretization(num_bins=num_bins)
    mine.adapt(data)
    expected = _keras_adapted_boundaries([data], num_bins)
    np.testing.assert_allclose(mine.bin_boundaries, expected, rtol=1e-6)
    theirs = keras.layers.Discretization(bin_boundaries=expected)
    np.testing.assert_array_equal(np.asarray(mine(data)), np.asarray(theirs(data)))
    batched = L.Discretization(num_bins=num_bins)
    batched.adapt([data[:100], data[100:]])
    np.testing.assert_allclose(
        batched.bin_boundaries, _keras_adapted_boundaries([data[:100], data[100:]], num_bins), rtol=1e-6
    )
    restored = L.Discretization.from_config(mine.get_config())
    assert restored.bin_boundaries == mine.bin_boundaries and restored.num_bins == num_bins


def test_category_encoding_count_weights_match_keras():
    ids = np.array([[0, 1, 1, 3], [2, 2, 2, 0]], np.int32)
    weights = rng.uniform(0.5, 2.0, ids.shape).astype(np.float32)
    mine = L.CategoryEncoding(4, output_mode="count")(ids, count_weights=weights)
    theirs = keras.layers.CategoryEncoding(4, output_mode="count")(ids, count_weights=weights)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6)


# ---------------------------------------------------------------------- Embedding, Softmax masks
def test_embedding_takes_float_ids_like_keras():
    ids = L.Input(shape=(None,))  # float32, as Keras's default
    embedding = L.Embedding(6, 3)
    model = Model(ids, embedding(ids))
    float_ids = np.array([[0.0, 5.0, 2.0], [1.0, 1.0, 4.0]], np.float32)
    expected = np.asarray(model(float_ids.astype(np.int32)))
    np.testing.assert_array_equal(np.asarray(model(float_ids)), expected)
    np.testing.assert_array_equal(model.predict(float_ids, verbose=0), expected)
    theirs = keras.layers.Embedding(6, 3)
    theirs.build((None, 3))
    theirs.set_weights(embedding.get_weights())
    np.testing.assert_allclose(np.asarray(theirs(float_ids)), expected, rtol=1e-6)


def test_embedding_refuses_fractional_and_non_numeric_ids():
    layer = L.Embedding(6, 3, name="words")
    with pytest.raises(LayerInputError, match=r"Layer 'words' \(Embedding\): ids must be whole numbers, but the float input holds 2.5"):
        layer(np.array([[1.0, 2.5]], np.float32))
    with pytest.raises(LayerInputError, match=r"Layer 'words' \(Embedding\): input 0 must hold integer ids .* received dtype bool"):
        layer(L.Input(shape=(3,), dtype="bool"))


@pytest.mark.parametrize("mask", [
    np.array([[True, True, False, True], [False, True, True, True]]),
    np.array([[1.0, 0.0, 1.0, 1.0]], np.float32),  # numbers: > 0.5 keeps; broadcast over the batch
])
def test_softmax_mask_matches_keras(mask):
    x = rng.standard_normal((2, 4)).astype(np.float32)
    mine = np.asarray(L.Softmax()(x, mask=mask))
    np.testing.assert_allclose(mine, np.asarray(keras.layers.Softmax()(x, mask=mask)), rtol=1e-6, atol=1e-7)
    assert np.all(mine[np.broadcast_to(mask, x.shape) <= 0.5] == 0)


def test_softmax_receives_the_graph_mask_and_passes_it_on():
    class SumFeatures(L.Layer):
        """(batch, timesteps, features) -> (batch, timesteps) scores; passes the mask on."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return kfunc.ops.sum(inputs, axis=-1)

    ids = L.Input(shape=(4,), dtype="int32")
    scores = SumFeatures()(L.Embedding(5, 3, mask_zero=True)(ids))  # (batch, 4) with its (batch, 4) mask
    model = Model(ids, L.Softmax()(scores))
    batch = np.array([[1, 2, 0, 0], [3, 1, 4, 0]], np.int32)
    outputs = np.asarray(model(batch))
    np.testing.assert_array_equal(outputs[0, 2:], 0.0)  # the padded steps get no probability
    np.testing.assert_array_equal(outputs[1, 3:], 0.0)
    np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, rtol=1e-6)
    assert model.call_with_masks(batch)[1] is not None


def test_softmax_refuses_at_build_a_graph_mask_that_does_not_broadcast():
    # kfunc: the (batch, 4) mask of a (batch, 4, 4) tensor is checked when the graph is built (Keras 3
    # builds this model and fails at run time for any batch size but 1 or 4).
    ids = L.Input(shape=(4,), dtype="int32")
    scores = L.Embedding(5, 4, mask_zero=True)(ids)
    with pytest.raises(LayerInputError, match=r"Layer 'soft' \(Softmax\): the mask of shape .* must broadcast"):
        L.Softmax(name="soft")(scores)


def test_softmax_refuses_a_mask_that_does_not_broadcast():
    with pytest.raises(LayerInputError, match=r"Layer 'soft' \(Softmax\): the mask of shape \(2, 3\) must broadcast to the inputs of shape \(2, 3, 4\)"):
        L.Softmax(name="soft")(np.zeros((2, 3, 4), np.float32), mask=np.ones((2, 3), bool))


# ---------------------------------------------------------------------- augmentation
AUGMENTATIONS = [
    lambda: L.RandomFlip(),
    lambda: L.RandomRotation(0.3),
    lambda: L.RandomTranslation(0.2, 0.2),
    lambda: L.RandomZoom(0.3),
    lambda: L.RandomContrast(0.4),
    lambda: L.RandomBrightness(0.3),
]


@pytest.mark.parametrize("make", AUGMENTATIONS)
def test_augmentation_is_identity_at_inference_and_random_in_training(make):
    images = rng.integers(0, 256, (4, 6, 6, 3)).astype(np.uint8)
    layer = make()
    inference = np.asarray(layer(images))
    assert inference.dtype == np.float32  # cast to the compute dtype, as Keras 3
    np.testing.assert_array_equal(inference, images.astype(np.float32))
    a, b = _train(layer, images, seed=1), _train(layer, images, seed=2)
    assert a.shape == images.shape and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, _train(layer, images, seed=1))  # same key, same result
    with pytest.raises(LayerConfigError, match=r"needs a random key in training mode"):
        layer.apply({}, {}, images, training=True)


@pytest.mark.parametrize("mode, flip", [
    ("horizontal", lambda x: x[:, ::-1]),
    ("vertical", lambda x: x[::-1]),
    ("horizontal_and_vertical", lambda x: x[::-1, ::-1]),  # both at once, or neither (Keras 3)
])
def test_random_flip_flips_each_image_or_leaves_it(mode, flip):
    images = rng.standard_normal((32, 3, 4, 2)).astype(np.float32)
    outputs = _train(L.RandomFlip(mode), images)
    flipped = [np.array_equal(o, flip(x)) for o, x in zip(outputs, images, strict=True)]
    kept = [np.array_equal(o, x) for o, x in zip(outputs, images, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 4 <= sum(flipped) <= 28


@pytest.mark.parametrize("turns", [0.25, -0.25, 0.5])
def test_random_rotation_by_a_fixed_angle_equals_numpy_rotation(turns):
    images = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    layer = L.RandomRotation((turns, turns), interpolation="nearest")
    # Positive factors turn the picture counter-clockwise, as Keras 3 documents.
    expected = np.rot90(images, k=round(turns * 4), axes=(1, 2))
    np.testing.assert_array_equal(_train(layer, images), expected)
    bilinear = L.RandomRotation((turns, turns), interpolation="bilinear")
    np.testing.assert_allclose(_train(bilinear, images), expected, atol=1e-5)


def test_random_translation_by_a_fixed_shift_equals_numpy_shift():
    images = rng.standard_normal((2, 4, 4, 1)).astype(np.float32)
    layer = L.RandomTranslation((0.25, 0.25), (-0.5, -0.5), fill_mode="constant", fill_value=7.0,
                                interpolation="nearest")
    expected = np.full_like(images, 7.0)
    expected[:, 1:, :2] = images[:, :3, 2:]  # one row down, two columns left
    np.testing.assert_array_equal(_train(layer, images), expected)


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_resampling_matches_keras(fill_mode, interpolation):
    images = rng.standard_normal((2, 5, 6, 2)).astype(np.float32)
    transforms = rng.normal(0.0, 1.0, (2, 6)).astype(np.float32)
    transforms[:, [0, 4]] += 1.0
    mine = affine_transform(images, jax.numpy.asarray(transforms), interpolation=interpolation, fill_mode=fill_mode,
                            fill_value=0.5)
    theirs = keras.ops.image.affine_transform(images, np.concatenate([transforms, np.zeros((2, 2), np.float32)], 1),
                                              interpolation=interpolation, fill_mode=fill_mode, fill_value=0.5)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-5)


def test_random_zoom_out_by_a_fixed_factor_matches_keras_resampling():
    images = rng.standard_normal((1, 5, 5, 1)).astype(np.float32)
    layer = L.RandomZoom((1.0, 1.0), fill_mode="constant", interpolation="nearest")  # twice the extent
    transform = np.array([[2.0, 0.0, -2.0, 0.0, 2.0, -2.0, 0.0, 0.0]], np.float32)
    theirs = keras.ops.image.affine_transform(images, transform, interpolation="nearest", fill_mode="constant")
    np.testing.assert_array_equal(_train(layer, images), np.asarray(theirs))
    assert _train(layer, images)[0, 2, 2, 0] == images[0, 2, 2, 0]  # the centre stays


def test_random_contrast_and_brightness_stay_in_their_ranges():
    images = rng.uniform(50, 200, (64, 4, 4, 3)).astype(np.float32)
    mean = images.mean(axis=(1, 2), keepdims=True)
    contrast = _train(L.RandomContrast((0.2, 0.5), value_range=(-1e4, 1e4)), images)
    factors = (contrast - mean) / (images - mean)
    per_image = factors.reshape(64, -1)
    np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :1], per_image.shape), rtol=1e-3)
    assert 0.8 <= per_image.min() and per_image.max() <= 1.5 and per_image.std() > 0.05
    brightness = _train(L.RandomBrightness(0.1, value_range=(0, 255)), images)
    shifts = (brightness - images).reshape(64, -1)
    np.testing.assert_allclose(shifts, np.broadcast_to(shifts[:, :1], shifts.shape), atol=1e-3)
    assert np.abs(shifts).max() <= 25.5 + 1e-3 and shifts.std() > 1
    clipped = _train(L.RandomBrightness((1.0, 1.0), value_range=(0, 255)), images)
    np.testing.assert_array_equal(clipped, 255.0)


def test_augmentation_in_a_trained_model():
    """fit gives each augmentation layer its key; predict is deterministic (inference)."""
    inputs = L.Input(shape=(6, 6, 1))
    x = L.RandomFlip("horizontal")(L.Rescaling(1 / 255.0)(inputs))
    x = L.RandomRotation(0.1)(x)
    x = L.RandomZoom(0.1)(x)
    outputs = L.Dense(1)(L.Flatten()(x))
    model = Model(inputs, outputs)
    model.compile("adam", "mse")
    data = rng.integers(0, 256, (16, 6, 6, 1)).astype(np.float32)
    history = model.fit(data, data.mean(axis=(1, 2)), epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    np.testing.assert_array_equal(model.predict(data, verbose=0), model.predict(data, verbose=0))


# ---------------------------------------------------------------------- AlphaDropout, ActivityRegularization
def test_alpha_dropout_keeps_mean_and_variance():
    x = rng.standard_normal((400, 250)).astype(np.float32)
    y = _train(L.AlphaDropout(0.2), x)
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1.0) < 0.01
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = (0.8 * (1 + 0.2 * alpha_p**2)) ** -0.5
    dropped = np.isclose(y, a * alpha_p + (-a * alpha_p * 0.2), atol=1e-6)
    assert 0.19 < dropped.mean() < 0.21
    np.testing.assert_array_equal(np.asarray(L.AlphaDropout(0.2)(x)), x)


def test_activity_regularization_penalty_matches_keras():
    x = rng.standard_normal((4, 3)).astype(np.float32)
    mine, theirs = L.ActivityRegularization(l1=0.01, l2=0.05), keras.layers.ActivityRegularization(l1=0.01, l2=0.05)
    np.testing.assert_array_equal(np.asarray(mine(x)), x)
    theirs(x)
    np.testing.assert_allclose(float(mine.losses[0]), float(theirs.losses[0]), rtol=1e-6)


# ---------------------------------------------------------------------- configs and errors
CONFIG_LAYERS = [
    lambda L: L.Softmax(axis=[1, 2]), lambda L: L.ReLU(max_value=2.0), lambda L: L.LeakyReLU(0.1),
    lambda L: L.PReLU(shared_axes=[1]), lambda L: L.ELU(0.5), lambda L: L.Identity(),
    lambda L: L.Rescaling(0.5, 1.0), lambda L: L.Normalization(mean=1.0, variance=2.0),
    lambda L: L.CategoryEncoding(3, output_mode="count"), lambda L: L.Discretization([0.0, 1.0]),
    lambda L: L.UnitNormalization(axis=[1]), lambda L: L.Resizing(3, 4, crop_to_aspect_ratio=True),
    lambda L: L.CenterCrop(2, 3), lambda L: L.RandomFlip("vertical", seed=3), lambda L: L.RandomRotation(0.2),
    lambda L: L.RandomTranslation(0.1, (-0.2, 0.3)), lambda L: L.RandomZoom(0.1), lambda L: L.RandomContrast(0.2),
    lambda L: L.RandomBrightness(0.2), lambda L: L.AlphaDropout(0.3, seed=1), lambda L: L.ActivityRegularization(0.1),
    lambda L: L.UpSampling3D(2), lambda L: L.Cropping3D(1), lambda L: L.Conv3DTranspose(2, 3, activity_regularizer="l2"),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_config_has_keras_keys_and_round_trips(make):
    mine, theirs = make(L), make(keras.layers)
    config = mine.get_config()
    missing = set(theirs.get_config()) - set(config)
    assert not missing, f"{type(mine).__name__} config lacks Keras's keys {sorted(missing)}"
    assert type(mine).from_config(config).get_config() == config


@pytest.mark.parametrize("build, error, message", [
    (lambda: L.ReLU(max_value=-1), LayerConfigError, r"ReLU: max_value is the largest output and must be a number >= 0 or None, received -1"),
    (lambda: L.LeakyReLU(negative_slope=-0.1), LayerConfigError, r"LeakyReLU: negative_slope is the slope below 0 and must be a number >= 0"),
    (lambda: L.PReLU(shared_axes=[0]), LayerConfigError, r"PReLU: shared_axes must be input axes counted from 1"),
    (lambda: L.PReLU(name="p")(L.Input(shape=(None, 3))), LayerConfigError, r"Layer 'p' \(PReLU\) needs a known size on axis 1"),
    (lambda: L.Softmax(axis="last"), LayerConfigError, r"Softmax: axis must be an int or a list of ints"),
    (lambda: L.ELU(alpha="one"), LayerConfigError, r"ELU: alpha is the scale of the negative part and must be a number"),
    (lambda: L.Rescaling("half"), LayerConfigError, r"Rescaling: scale must be a number or a list of numbers"),
    (lambda: L.Normalization(mean=1.0), LayerConfigError, r"Normalization: give both mean and variance"),
    (lambda: L.Normalization(mean=[1.0, 2.0], variance=[1.0]), LayerConfigError, r"mean and variance must have the same shape"),
    (lambda: L.Normalization(axis=1, name="n")(L.Input(shape=(None, 2))), LayerConfigError, r"Layer 'n' \(Normalization\) keeps statistics per index of axes \(1,\)"),
    (lambda: L.Normalization(mean=0.0, variance=1.0, name="n").adapt(np.ones((2, 2))), LayerConfigError, r"was given fixed mean and variance"),
    (lambda: _adapted(L.Normalization(name="n"), np.ones((4, 3))).adapt(np.ones((4, 2))), LayerInputError, r"adapt\(\) received data of shape \(4, 2\), but the layer was built for inputs of shape \(4, 3\)"),
    (lambda: L.Normalization(name="n").adapt([]), LayerInputError, r"adapt\(\) received no batches"),
    (lambda: L.CategoryEncoding(), LayerConfigError, r"CategoryEncoding: num_tokens .* must be given"),
    (lambda: L.CategoryEncoding(3, output_mode="tf_idf"), LayerConfigError, r"output_mode must be one of \['multi_hot', 'one_hot', 'count'\]"),
    (lambda: L.CategoryEncoding(3, sparse=True), LayerConfigError, r"sparse=True is not supported"),
    (lambda: L.CategoryEncoding(3, name="c")(L.Input(shape=(2, 2), dtype="int32")), LayerInputError, r"Layer 'c' \(CategoryEncoding\): output_mode='multi_hot' takes ids of shape \(batch, ids_per_example\)"),
    (lambda: L.CategoryEncoding(3, name="c")(np.zeros((2, 2), np.int32), count_weights=np.ones((2, 2), np.float32)), LayerConfigError, r"count_weights only applies to output_mode='count'"),
    (lambda: L.Discretization(), LayerConfigError, r"Discretization: give exactly one of bin_boundaries"),
    (lambda: L.Discretization([2.0, 1.0]), LayerConfigError, r"bin_boundaries must be sorted"),
    (lambda: L.Discretization([1.0], name="d").adapt(np.ones(3)), LayerConfigError, r"Layer 'd' \(Discretization\) was created with bin_boundaries"),
    (lambda: L.Discretization(num_bins=3, name="d")(np.ones((2, 2), np.float32)), LayerConfigError, r"has no bin boundaries yet: call adapt"),
    (lambda: L.UnitNormalization(axis="x"), LayerConfigError, r"UnitNormalization: axis must be an int or a list of ints"),
    (lambda: L.UnitNormalization(axis=3, name="u")(L.Input(shape=(2,))), LayerInputError, r"Layer 'u' \(UnitNormalization\): axis 3 is out of range"),
    (lambda: L.Resizing(2, 2, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), LayerConfigError, r"crop_to_aspect_ratio and pad_to_aspect_ratio exclude each other"),
    (lambda: L.Resizing(2, 2, interpolation="area"), LayerConfigError, r"Resizing: interpolation must be one of"),
    (lambda: L.Resizing(2, 2, name="r")(L.Input(shape=(4, 4))), LayerInputError, r"Layer 'r' \(Resizing\): input 0 must have rank 4"),
    (lambda: L.CenterCrop(0, 2), LayerConfigError, r"CenterCrop: height must be a positive integer"),
    (lambda: L.RandomFlip("diagonal"), LayerConfigError, r"RandomFlip: mode must be one of"),
    (lambda: L.RandomRotation(1.5), LayerConfigError, r"RandomRotation: factor must be a number or a pair of numbers in \[-1.0, 1.0\], received 1.5"),
    (lambda: L.RandomRotation(0.1, fill_mode="mirror"), LayerConfigError, r"RandomRotation: fill_mode must be one of"),
    (lambda: L.RandomZoom(-1.0), LayerConfigError, r"RandomZoom: height_factor must be a number or a pair of numbers in \(-1.0, 1.0\]"),
    (lambda: L.RandomTranslation(0.1, (0.1, 0.2, 0.3)), LayerConfigError, r"RandomTranslation: width_factor must be"),
    (lambda: L.RandomContrast(-0.1), LayerConfigError, r"RandomContrast: factor must be a number or a pair of numbers in \[0.0, 1.0\]"),
    (lambda: L.RandomBrightness(0.1, value_range=255), LayerConfigError, r"RandomBrightness: value_range must be a pair"),
    (lambda: L.AlphaDropout(1.0), LayerConfigError, r"AlphaDropout: rate is the probability of dropping a unit"),
])
def test_error_messages(build, error, message):
    with pytest.raises(error, match=message):
        build()


def _adapted(layer, data):
    layer.adapt(data)
    return layer


def test_new_layers_are_found_by_name_when_loading():
    registry = kfunc.saving.registry.builtin_layers()
    for name in ["Softmax", "ReLU", "LeakyReLU", "PReLU", "ELU", "Identity", "Rescaling", "Normalization",
                 "CategoryEncoding", "Discretization", "UnitNormalization", "Resizing", "CenterCrop", "RandomFlip",
                 "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast", "RandomBrightness",
                 "AlphaDropout", "ActivityRegularization", "UpSampling3D", "Cropping3D", "Conv3DTranspose"]:
        assert registry[name] is getattr(L, name) and hasattr(keras.layers, name)
