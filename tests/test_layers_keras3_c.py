"""Keras 3 layers, third group: what the layer table (``layer_cases.py``) cannot check.

The augmentation layers in training mode: exact results against Keras 3 where the draw can be
pinned (factor ranges of one value), and properties of the random path otherwise (outputs in
range, a new draw per key, the same output under the same key, identity at inference).
ReversibleEmbedding, STFTSpectrogram and MelSpectrogram against Keras 3 beyond the table's
cases; ``get_config`` keys against Keras 3's; ``fit`` through a Pipeline; every new error message.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers as L
from kfunc.errors import LayerConfigError, LayerInputError
from kfunc.layers.geometric_augmentation import homographies, projective_transform
from kfunc.layers.image_transform import affine_transform

keras = pytest.importorskip("keras")

rng = np.random.default_rng(13)
IMAGES = rng.integers(0, 256, (4, 5, 6, 3)).astype(np.float32)


SLOW = pytest.mark.slow


def _train(layer, x, seed=0):
    """The layer's training-mode output on ``x`` (batch included), drawn with ``key(seed)``; one
    compilation per layer (calls with other keys reuse it)."""
    if not layer.built:
        layer.build(x.shape)
        layer._jitted_training = jax.jit(
            lambda params, state, x, key: layer.apply(params, state, x, training=True, key=key)[0]
        )
    params, state = layer.get_variables()
    return np.asarray(layer._jitted_training(params, state, x, jax.random.key(seed)))


def _infer(layer, x):
    """The layer's inference output on ``x``, jitted (eager dispatch costs more than one compile)."""
    if not layer.built:
        layer.build(x.shape)
    params, state = layer.get_variables()
    return np.asarray(jax.jit(lambda params, state, x: layer.apply(params, state, x)[0])(params, state, x))


def _keras_call(layer, x, **kwargs):
    """A Keras 3 layer's output on ``x``, its functional call jitted."""
    layer.build(x.shape)
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def call(trainable, non_trainable, x):
        return layer.stateless_call(trainable, non_trainable, x, **kwargs)[0]

    return np.asarray(jax.jit(call)(trainable, non_trainable, x))


# ---------------------------------------------------------------------- pinned draws vs Keras
PINNED = [
    pytest.param("RandomInvert", {"factor": (1.0, 1.0)}, marks=SLOW),
    pytest.param("RandomInvert", {"factor": (0.0, 0.0)}, marks=SLOW),
    ("Solarization", {}),
    pytest.param("Solarization", {"value_range": (0, 1)}, marks=SLOW),
    ("RandomHue", {"factor": (0.0, 0.0)}),
    pytest.param("RandomSaturation", {"factor": (0.5, 0.5)}, marks=SLOW),
    pytest.param("RandomSaturation", {"factor": (0.0, 0.0)}, marks=SLOW),
    pytest.param("RandomColorDegeneration", {"factor": (1.0, 1.0)}, marks=SLOW),
    pytest.param("RandomColorDegeneration", {"factor": (0.5, 0.5), "data_format": "channels_first"}, marks=SLOW),
    pytest.param("RandomPosterization", {"factor": (3, 3)}, marks=SLOW),
    ("RandomSharpness", {"factor": (0.0, 0.0)}),
    pytest.param("RandomSharpness", {"factor": (0.2, 0.2), "data_format": "channels_first"}, marks=SLOW),
    pytest.param("RandomGrayscale", {"factor": 1.0}, marks=SLOW),
    pytest.param("RandomColorJitter", {"saturation_factor": (0.5, 0.5), "hue_factor": (0.0, 0.0)}, marks=SLOW),
    pytest.param("AutoContrast", {}, marks=SLOW),
    pytest.param("Equalization", {}, marks=SLOW),
    pytest.param("Equalization", {"value_range": (0, 1), "bins": 16}, marks=SLOW),
    ("RandomCrop", {"height": 5, "width": 3}),
    pytest.param("RandomCrop", {"height": 2, "width": 6, "data_format": "channels_first"}, marks=SLOW),
    pytest.param("RandomErasing", {"factor": (1.0, 1.0), "scale": (1.0, 1.0), "fill_value": 7}, marks=SLOW),
    ("RandomGaussianBlur", {"factor": (1.0, 1.0), "sigma": (0.5, 0.5)}),
    pytest.param("RandomGaussianBlur", {"factor": (1.0, 1.0), "kernel_size": (3, 5), "sigma": (0.7, 0.7)}, marks=SLOW),
    pytest.param("RandomShear", {"x_factor": (0.0, 0.0), "y_factor": (0.0, 0.0), "fill_mode": "constant"}, marks=SLOW),
    pytest.param("RandomPerspective", {"scale": 0.0}, marks=SLOW),
]


@pytest.mark.parametrize("name, kwargs", PINNED)
def test_pinned_training_draw_matches_keras(name, kwargs):
    images = IMAGES[:1] if name == "Equalization" else IMAGES  # Keras pools the histogram over the batch
    if kwargs.get("value_range") == (0, 1):
        images = images / 255.0
    if kwargs.get("data_format") == "channels_first":
        images = np.moveaxis(images, -1, 1).copy()
    mine = _train(getattr(L, name)(**kwargs), images)
    theirs = _keras_call(getattr(keras.layers, name)(**kwargs), images, training=True)
    assert mine.shape == theirs.shape
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))


@SLOW
def test_random_shear_equals_keras_shear_of_either_sign():
    theirs = np.asarray(keras.layers.RandomShear(x_factor=(0.3, 0.3), y_factor=(0.2, 0.2))(IMAGES, training=True))
    for index in range(len(IMAGES)):
        errors = [
            np.abs(np.asarray(affine_transform(IMAGES[index:index + 1], jnp.asarray([[1, s * 0.3, 0, s * 0.2, 1, 0]],
                                                                                   jnp.float32),
                                               interpolation="bilinear", fill_mode="reflect", fill_value=0.0))
                   - theirs[index:index + 1]).max()
            for s in (1.0, -1.0)
        ]
        assert min(errors) < 1e-3


@SLOW
def test_perspective_warp_matches_keras_op():
    start = np.array([[[0, 0], [5, 0], [0, 4], [5, 4]]] * 4, np.float32)
    end = start + start * rng.uniform(-0.3, 0.3, (4, 4, 2)).astype(np.float32)
    theirs = np.asarray(jax.jit(keras.ops.image.perspective_transform)(IMAGES, start, end))
    mine = projective_transform(jnp.asarray(IMAGES), homographies(jnp.asarray(start), jnp.asarray(end)),
                                interpolation="bilinear", fill_value=0.0, data_format="channels_last")
    np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-5, atol=1e-3)


# ---------------------------------------------------------------------- the random path
RANDOM_LAYERS = [
    pytest.param(lambda: L.RandomGrayscale(), marks=SLOW),
    pytest.param(lambda: L.RandomInvert(0.8), marks=SLOW),
    pytest.param(lambda: L.Solarization(addition_factor=0.3, threshold_factor=(0.3, 0.9)), marks=SLOW),
    pytest.param(lambda: L.RandomHue(0.5), marks=SLOW),
    pytest.param(lambda: L.RandomSaturation(0.8), marks=SLOW),
    pytest.param(lambda: L.RandomColorDegeneration(0.9), marks=SLOW),
    pytest.param(lambda: L.RandomPosterization((1, 6)), marks=SLOW),
    pytest.param(lambda: L.RandomSharpness(0.9), marks=SLOW),
    lambda: L.RandomColorJitter(brightness_factor=0.2, contrast_factor=0.3, saturation_factor=0.4, hue_factor=0.2),
    pytest.param(lambda: L.MixUp(), marks=SLOW),
    lambda: L.CutMix(),
    lambda: L.RandomCrop(3, 4),
    pytest.param(lambda: L.RandomErasing(scale=(0.1, 0.5)), marks=SLOW),
    pytest.param(lambda: L.RandomGaussianBlur(sigma=(0.3, 1.0)), marks=SLOW),
    pytest.param(lambda: L.RandomShear(0.3, 0.3, fill_mode="nearest"), marks=SLOW),
    lambda: L.RandomPerspective(scale=0.6),
    pytest.param(lambda: L.RandomElasticTransform(factor=(1.0, 1.0), fill_mode="mirror"), marks=SLOW),
    pytest.param(lambda: L.RandAugment(num_ops=3), marks=SLOW),
    pytest.param(lambda: L.AugMix(all_ops=False, chain_depth=2), marks=SLOW),
    lambda: L.Pipeline([L.RandomFlip(), L.RandomInvert(), L.RandomSharpness(0.8)]),
]


@pytest.mark.parametrize("make", RANDOM_LAYERS, ids=[
    type((m.values[0] if hasattr(m, "values") else m)()).__name__ for m in RANDOM_LAYERS
])
def test_random_path_properties(make):
    layer = make()
    first, again, other = _train(layer, IMAGES, 0), _train(layer, IMAGES, 0), _train(layer, IMAGES, 1)
    np.testing.assert_array_equal(first, again)  # the key fixes the draw
    assert not np.array_equal(first, other), "a new key must give a new draw"
    assert np.all(np.isfinite(first))
    # Pixel values stay in the default value_range (0, 255); MixUp's convex mixes too.
    assert first.min() >= -1e-3 and first.max() <= 255 + 1e-3
    inference = _infer(layer, IMAGES)
    if isinstance(layer, L.RandomCrop):
        assert inference.shape == (4, 3, 4, 3)
    else:
        np.testing.assert_array_equal(inference, IMAGES)


def test_seed_is_folded_into_the_key():
    a, b = _train(L.RandomInvert(0.7, seed=1), IMAGES), _train(L.RandomInvert(0.7, seed=2), IMAGES)
    assert not np.array_equal(a, b)


def test_training_without_key_is_refused():
    layer = L.RandomHue(0.2, name="hue")
    layer.build(IMAGES.shape)
    with pytest.raises(LayerConfigError, match=r"Layer 'hue' \(RandomHue\) needs a random key in training mode"):
        layer.apply({}, {}, IMAGES, training=True)


def test_random_crop_takes_a_window_of_each_image():
    images = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7, 1)
    out = _train(L.RandomCrop(3, 4), images, seed=5)
    for image, crop in zip(images, out, strict=True):
        windows = [image[r:r + 3, c:c + 4] for r in range(4) for c in range(4)]
        assert any(np.array_equal(crop, w) for w in windows)


@SLOW
def test_mix_up_and_cut_mix_mix_images_of_the_batch():
    images = np.stack([np.full((4, 4, 1), v, np.float32) for v in (0.0, 10.0, 20.0, 30.0)])
    mixed = _train(L.MixUp(alpha=0.5), images, seed=3)
    assert np.allclose(mixed, mixed[:, :1, :1])  # a constant image mixed with a constant image
    cut = _train(L.CutMix(), images, seed=3)
    assert set(np.unique(cut)) <= {0.0, 10.0, 20.0, 30.0}  # every pixel from some image of the batch


def test_random_erasing_fills_a_box_with_the_fill_value_per_channel():
    out = _train(L.RandomErasing(factor=(1.0, 1.0), scale=(0.3, 0.3), fill_value=[1.0, 2.0, 300.0]), IMAGES)
    changed = out != IMAGES
    assert changed.any()
    np.testing.assert_array_equal(out[..., 0][changed[..., 0]], 1.0)
    np.testing.assert_array_equal(out[..., 2][changed[..., 2]], 255.0)  # clipped to value_range


def test_auto_contrast_stretches_each_channel_to_the_range_and_keeps_constant_ones():
    images = IMAGES.copy()
    images[1, ..., 2] = 40.0
    out = _infer(L.AutoContrast(), images)
    np.testing.assert_allclose(out[0].min(axis=(0, 1)), 0.0, atol=1e-3)
    np.testing.assert_allclose(out[0].max(axis=(0, 1)), 255.0, rtol=1e-6)
    np.testing.assert_array_equal(out[1, ..., 2], 40.0)


def test_equalization_is_per_image_and_identity_at_inference():
    layer = L.Equalization()
    batch = _train(layer, IMAGES)
    alone = _train(L.Equalization(), IMAGES[2:3])
    np.testing.assert_array_equal(batch[2:3], alone)
    np.testing.assert_array_equal(_infer(layer, IMAGES), IMAGES)


# ---------------------------------------------------------------------- Pipeline, Wrapper
def test_pipeline_trains_in_fit_and_round_trips_its_config():
    inputs = L.Input(shape=(5, 6, 3))
    augment = L.Pipeline([L.RandomFlip(), L.RandomColorDegeneration(0.5), L.Rescaling(1 / 255.0)])
    outputs = L.Dense(1)(L.GlobalAveragePooling2D()(augment(inputs)))
    model = kfunc.Model(inputs, outputs)
    model.compile("adam", "mse")
    history = model.fit(IMAGES, np.ones((4, 1), np.float32), epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    config = augment.get_config()
    assert set(config) == set(keras.layers.Pipeline([keras.layers.RandomFlip()]).get_config())
    restored = kfunc.models.Model.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(restored.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), rtol=1e-6)


def test_wrapper_is_the_base_of_the_wrappers():
    assert issubclass(L.TimeDistributed, L.Wrapper) and issubclass(L.Bidirectional, L.Wrapper)
    wrapped = L.Dense(2)
    wrapper = L.Wrapper(wrapped)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(wrapper(x)), np.asarray(wrapped(x)))
    assert wrapper.weights == wrapped.weights
    assert L.Bidirectional(L.LSTM(2)).layer.name  # Keras's .layer, not a sublayer with weights
    assert set(wrapper.get_config()) >= {"name", "trainable", "dtype", "layer"}


# ---------------------------------------------------------------------- ReversibleEmbedding
def test_reversible_embedding_untied_matches_keras():
    ids = rng.integers(0, 7, (2, 3)).astype(np.int32)
    vectors = rng.standard_normal((2, 3, 4)).astype(np.float32)
    kwargs = {"tie_weights": False, "logit_soft_cap": 2.0, "mask_zero": True}
    mine, theirs = L.ReversibleEmbedding(7, 4, **kwargs), keras.layers.ReversibleEmbedding(7, 4, **kwargs)
    mine.build((None, 3))
    theirs.build((None, 3))
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in mine.weights]
    mine.set_weights(weights)
    theirs.set_weights(weights)
    assert [w.name for w in mine.weights] == ["embeddings", "reverse_embeddings"]
    np.testing.assert_allclose(np.asarray(mine(ids)), np.asarray(theirs(ids)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mine(vectors, reverse=True)), np.asarray(theirs(vectors, reverse=True)),
                               rtol=1e-5, atol=1e-6)


def test_reversible_embedding_shares_its_table_in_a_language_model():
    ids = L.Input(shape=(3,), dtype="int32")
    embedding = L.ReversibleEmbedding(7, 4, mask_zero=True, reverse_dtype="float32")
    logits = embedding(L.Dense(4)(embedding(ids)), reverse=True)
    model = kfunc.Model(ids, logits)
    assert model.output_shape == (None, 3, 7)
    assert len(model.weights) == 3  # the table once, the Dense kernel and bias


# ---------------------------------------------------------------------- spectrograms
@pytest.mark.parametrize("kwargs", [
    {"mode": "magnitude", "frame_length": 12, "frame_step": 5, "fft_length": 32, "window": "hamming", "periodic": True,
         "scaling": "spectrum", "padding": "same"},
    pytest.param({"mode": "stft", "frame_length": 8, "scaling": None, "window": None}, marks=SLOW),
    pytest.param({"mode": "imag", "frame_length": 8, "expand_dims": True}, marks=SLOW),
])
def test_stft_spectrogram_modes_match_keras(kwargs):
    """With Keras's own initial DFT kernels (the table copies random weights)."""
    x = rng.standard_normal((2, 30, 2)).astype(np.float32)
    mine, theirs = L.STFTSpectrogram(**kwargs), keras.layers.STFTSpectrogram(**kwargs)
    np.testing.assert_allclose(_infer(mine, x), _keras_call(theirs, x), rtol=1e-5, atol=1e-5)
    assert [w.name for w in mine.weights] == [w.path.split("/")[-1] for w in theirs.weights]


@SLOW
def test_stft_angle_matches_keras_away_from_the_real_axis():
    x = rng.standard_normal((2, 30, 1)).astype(np.float32)
    mine = _infer(L.STFTSpectrogram(mode="angle", frame_length=8), x)
    theirs = _keras_call(keras.layers.STFTSpectrogram(mode="angle", frame_length=8), x)
    imag = _infer(L.STFTSpectrogram(mode="imag", frame_length=8), x)
    away = np.abs(imag) > 1e-4  # arctan2 jumps by 2 pi across the negative real axis
    np.testing.assert_allclose(mine[away], theirs[away], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs", [
    {"fft_length": 64, "sequence_stride": 20, "sequence_length": 40, "window": "hamming", "num_mel_bins": 8, "power_to_db": False,
         "mag_exp": 1.0, "max_freq": 3000, "min_freq": 100.0},
    pytest.param({"fft_length": 32, "sequence_stride": 8, "window": None, "num_mel_bins": 6, "top_db": 10.0, "ref_power": 2.0},
                 marks=SLOW),
])
def test_mel_spectrogram_matches_keras(kwargs):
    audio = rng.standard_normal((1, 200)).astype(np.float32)
    mine = _infer(L.MelSpectrogram(**kwargs), audio)
    theirs = _keras_call(keras.layers.MelSpectrogram(**kwargs), audio)
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


def test_mel_spectrogram_floor_is_per_example():
    quiet, loud = rng.standard_normal((1, 128)).astype(np.float32), 100 * rng.standard_normal((1, 128)).astype(np.float32)
    layer = L.MelSpectrogram(fft_length=32, sequence_stride=8, num_mel_bins=6, top_db=20.0)
    together = _infer(layer, np.concatenate([quiet, loud]))
    np.testing.assert_allclose(together[:1], _infer(layer, quiet), rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------- configs and errors
CONFIG_LAYERS = [
    lambda L: L.RandomGrayscale(0.3), lambda L: L.RandomInvert(0.4), lambda L: L.Solarization(0.2, 0.6),
    lambda L: L.AutoContrast((0, 1)), lambda L: L.RandomHue(0.1), lambda L: L.RandomSaturation(0.2),
    lambda L: L.RandomColorDegeneration(0.3), lambda L: L.RandomPosterization(4), lambda L: L.RandomSharpness(0.2),
    lambda L: L.RandomColorJitter(brightness_factor=0.1, hue_factor=0.2), lambda L: L.Equalization(bins=64),
    lambda L: L.MixUp(0.4), lambda L: L.CutMix(0.5), lambda L: L.RandomCrop(2, 3, seed=4), lambda L: L.RandomErasing(),
    lambda L: L.RandomGaussianBlur(kernel_size=5), lambda L: L.RandomShear(0.1, (0.0, 0.2)),
    lambda L: L.RandomPerspective(0.5, 0.3), lambda L: L.RandomElasticTransform(0.5, (0.2, 0.8), fill_mode="wrap"),
    lambda L: L.RandAugment(num_ops=3, factor=0.2), lambda L: L.AugMix(num_chains=2, alpha=0.5, all_ops=False),
    lambda L: L.ReversibleEmbedding(5, 3, tie_weights=False),
    lambda L: L.ConvLSTM3D(2, 3), lambda L: L.STFTSpectrogram(mode="psd", frame_length=64),
    lambda L: L.MelSpectrogram(num_mel_bins=32),
]


def test_configs_have_keras_keys_and_round_trip():
    # One test for all (each test pays the session reset of conftest.py).
    for make in CONFIG_LAYERS:
        mine, theirs = make(L), make(keras.layers)
        config = mine.get_config()
        keras_keys = set(theirs.get_config())
        if isinstance(mine, L.ConvLSTM3D):  # as ConvLSTM1D/2D: Keras's RNN bookkeeping keys
            keras_keys -= {"zero_output_for_mask", "activity_regularizer"}
        assert keras_keys == set(config), f"{type(mine).__name__}: keys differ: {sorted(keras_keys ^ set(config))}"
        assert type(mine).from_config(config).get_config() == config, type(mine).__name__


ERRORS = [
    (lambda: L.RandomGrayscale(1.5), LayerConfigError, r"RandomGrayscale: factor is a probability in \[0, 1\], received 1.5"),
    (lambda: L.RandomInvert(2.0), LayerConfigError, r"RandomInvert: factor must be a number or a pair of numbers in \[0.0, 1.0\], received 2.0"),
    (lambda: L.RandomPosterization(9), LayerConfigError, r"RandomPosterization: factor must be a number or a pair of numbers in \[1, 8\], received 9"),
    (lambda: L.RandomHue(0.1, value_range=255), LayerConfigError, r"RandomHue: value_range must be a pair \(lowest, highest\)"),
    (lambda: L.Equalization(bins=1), LayerConfigError, r"Equalization: bins must be an integer >= 2, received 1"),
    (lambda: L.MixUp(alpha=0), LayerConfigError, r"MixUp: alpha must be a positive number, received 0"),
    (lambda: L.RandomErasing(fill_value=[1, 2]), LayerConfigError, r"RandomErasing: fill_value must be None, a number or a list of 3 numbers"),
    (lambda: L.RandomGaussianBlur(kernel_size=4), LayerConfigError, r"RandomGaussianBlur: kernel_size must be an odd positive integer"),
    (lambda: L.RandomElasticTransform(fill_mode="edge"), LayerConfigError, r"RandomElasticTransform: fill_mode must be one of"),
    (lambda: L.RandAugment(num_ops=0), LayerConfigError, r"RandAugment: num_ops must be a positive integer, received 0"),
    (lambda: L.AugMix(alpha=-1), LayerConfigError, r"AugMix: alpha must be a positive number, received -1"),
    (lambda: L.RandomPerspective(scale=2), LayerConfigError, r"RandomPerspective: scale must be a number in \[0, 1\], received 2"),
    (lambda: L.Pipeline(L.RandomFlip()), LayerConfigError, r"Pipeline: layers must be a list of layers"),
    (lambda: L.Wrapper("dense"), LayerConfigError, r"Wrapper wraps a layer, received str 'dense'"),
    (lambda: L.ReversibleEmbedding(5, 3, logit_soft_cap=0), LayerConfigError, r"ReversibleEmbedding: logit_soft_cap must be None or a positive number, received 0"),
    (lambda: L.ReversibleEmbedding(5, 3, quantization_config={"mode": "int8"}), LayerConfigError, r"ReversibleEmbedding: kfunc does not quantize layers"),
    (lambda: L.STFTSpectrogram(window="blackman"), LayerConfigError, r"STFTSpectrogram: window must be 'hann', 'hamming' or None, received 'blackman'"),
    (lambda: L.STFTSpectrogram(frame_length=8, frame_step=9), LayerConfigError, r"STFTSpectrogram: frame_step must be None or an integer in \[1, frame_length=8\], received 9"),
    (lambda: L.STFTSpectrogram(frame_length=8, fft_length=4), LayerConfigError, r"STFTSpectrogram: fft_length must be None or an integer >= frame_length=8, received 4"),
    (lambda: L.STFTSpectrogram(frame_length=4, name="s")(np.ones((1, 8, 1), np.int32)), LayerInputError, r"Layer 's' \(STFTSpectrogram\) takes float signals, received dtype int32"),
    (lambda: L.MelSpectrogram(fft_length=16, sequence_length=32), LayerConfigError, r"MelSpectrogram: sequence_length must be None or an integer in \[1, fft_length=16\], received 32"),
]


def test_error_messages():
    for build, error, message in ERRORS:
        with pytest.raises(error, match=message):
            build()
