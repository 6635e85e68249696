"""The ops kfunc added to reach Keras 3's whole ``keras.ops`` surface (attention, normalization,
CTC, space/depth, fold/unfold, NaN reductions, windows, statistics, data-dependent ops, linear
algebra, Fourier transforms, ``rearrange`` ...) against ``keras.ops`` on the JAX backend: the
same values (rtol 1e-5) and dtypes; on symbolic tensors the same shapes and, inside a Model, the
same results; the deliberate differences against NumPy references; the error messages."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc
from kfunc import ops
from kfunc.errors import SymbolicTensorError
from kfunc.graph.tensor import SymbolicTensor
from kfunc.saving.model_config import model_spec

rng = np.random.default_rng(3)


def _normal(*shape):
    return rng.normal(size=shape).astype("float32")


F = _normal(2, 3)
WITH_NAN = np.array([[1.5, np.nan, -2.0], [0.5, 3.0, np.nan]], "float32")
I = np.array([[1, 2, 3], [4, 6, 8]], "int32")
QUERY, KEY, VALUE = _normal(2, 4, 4, 3), _normal(2, 5, 2, 3), _normal(2, 5, 2, 3)
MASK = rng.random((2, 1, 4, 5)) > 0.3
BIAS = _normal(2, 4, 4, 5)
T3 = _normal(2, 3, 4)
GAMMA = _normal(4)
IMAGES = _normal(2, 4, 6, 8)
CHANNELS_FIRST = _normal(2, 3, 7, 6)
COLUMNS = _normal(2, 3 * 2 * 3, 4 * 6)  # fold's input for (7, 6) images, kernel (2, 3), see its case
LOGITS = _normal(2, 6, 4)
TARGETS = np.array([[1, 2, 2], [3, 1, 0]], "int32")
TARGET_LENGTHS, OUTPUT_LENGTHS = np.array([3, 2], "int32"), np.array([6, 4], "int32")
SPD = (lambda m: (m @ m.T + 3 * np.eye(3)).astype("float32"))(_normal(3, 3))
CHOLESKY = np.linalg.cholesky(SPD).astype("float32")
REAL, IMAG = _normal(2, 8), _normal(2, 8)
SIGNAL = _normal(2, 32)
SPECTRUM = (_normal(2, 9, 9), _normal(2, 9, 9))  # (frames, fft_length // 2 + 1) for fft_length 16
SPECTRUM_HAMMING = (_normal(2, 13, 5), _normal(2, 13, 5))
SEQUENCE = np.arange(10, dtype="float32")

# (name, args, kwargs, traceable): traceable cases are also run on symbolic tensors.
CASES = [
    ("dot_product_attention", (QUERY, KEY, VALUE), {}, True),
    ("dot_product_attention", (QUERY, KEY, VALUE), {"is_causal": True, "scale": 0.3}, True),
    ("dot_product_attention", (QUERY, KEY, VALUE), {"mask": MASK, "bias": BIAS}, True),
    ("layer_normalization", (T3,), {}, True),
    ("layer_normalization", (T3, GAMMA, GAMMA + 1), {"epsilon": 0.01}, True),
    ("layer_normalization", (T3, _normal(3, 4)), {"axis": [1, 2]}, True),
    ("layer_normalization", (I,), {}, True),
    ("rms_normalization", (T3, GAMMA), {}, True),
    ("rms_normalization", (T3,), {"axis": [1, 2], "epsilon": 0.1}, True),
    ("sparse_sigmoid", (F * 2,), {}, True),
    ("sparse_sigmoid", (I - 3,), {}, True),
    ("psnr", (F, F * 0.9, 1.0), {}, True),
    ("polar", (F, F + 1), {}, True),
    ("depth_to_space", (IMAGES, 2), {}, True),
    ("depth_to_space", (IMAGES.transpose(0, 3, 1, 2), 2), {"data_format": "channels_first"}, True),
    ("space_to_depth", (IMAGES, 2), {}, True),
    ("space_to_depth", (CHANNELS_FIRST[:, :, :6], 3), {"data_format": "channels_first"}, True),
    ("unfold", (CHANNELS_FIRST, 3), {}, True),
    ("unfold", (CHANNELS_FIRST, (2, 3)), {"dilation": (2, 1), "padding": 1, "stride": (2, 1)}, True),
    ("fold", (COLUMNS, (7, 6), (2, 3)), {"dilation": (2, 1), "padding": 1, "stride": (2, 1)}, True),
    ("ctc_loss", (TARGETS, LOGITS, TARGET_LENGTHS, OUTPUT_LENGTHS), {}, True),
    ("ctc_loss", (TARGETS, LOGITS, TARGET_LENGTHS, OUTPUT_LENGTHS), {"mask_index": 3}, True),
    ("ctc_decode", (LOGITS, OUTPUT_LENGTHS), {}, True),
    ("ctc_decode", (LOGITS, OUTPUT_LENGTHS), {"merge_repeated": False, "mask_index": None}, True),
    # NumPy-style ops
    ("angle", (F,), {}, True),
    ("angle", (I,), {}, True),
    ("i0", (I,), {}, True),
    ("isreal", (F,), {}, True),
    ("nanargmax", (WITH_NAN,), {"axis": 1, "keepdims": True}, True),
    ("nanargmin", (WITH_NAN,), {}, True),
    ("nancumsum", (WITH_NAN,), {}, True),
    ("nancumsum", (I > 2,), {"axis": 1}, True),
    ("nancumprod", (WITH_NAN,), {"axis": 0}, True),
    ("nanmedian", (WITH_NAN,), {"axis": 1}, True),
    ("nanmedian", (I,), {}, True),
    ("nanpercentile", (WITH_NAN, 50), {"axis": 1}, True),
    ("nanquantile", (WITH_NAN, np.array([0.2, 0.7], "float32")), {"axis": 0, "method": "nearest", "keepdims": True}, True),
    ("argpartition", (I, 1), {}, True),
    ("argpartition", (F, 0), {"axis": None}, True),
    ("array", ([1, 2],), {}, False),
    ("array", ([1.0, 2.0],), {}, False),
    ("array", (I, "float32"), {}, True),
    ("bartlett", (5,), {}, False),
    ("blackman", (5,), {}, False),
    ("hamming", (6,), {}, False),
    ("hanning", (1,), {}, False),
    ("kaiser", (6, 2.0), {}, False),
    ("bincount", (np.array([0, 1, 1, 3]),), {}, False),
    ("bincount", (np.array([0, 1, 1, 3]),), {"weights": np.array([0.5, 1, 1, 2], "float32"), "minlength": 6}, False),
    ("bincount", (np.array([[0, 1], [1, 3]]),), {"minlength": 5}, False),
    ("bitwise_left_shift", (I, 2), {}, True),
    ("bitwise_right_shift", (I, np.int32(1)), {}, True),
    ("gcd", (I, 4), {}, True),
    ("lcm", (I, 4), {}, True),
    ("ldexp", (F, 2), {}, True),
    ("ldexp", (I, np.array([1, 2, 3], "int32")), {}, True),
    ("nextafter", (F, 0.0), {}, True),
    ("nextafter", (I, 0), {}, True),
    ("corrcoef", (I,), {}, True),
    ("corrcoef", (F,), {}, True),
    ("correlate", (np.arange(5, dtype="int32"), np.array([1, 2], "int32")), {}, True),
    ("correlate", (F[0], F[1]), {"mode": "full"}, True),
    ("correlate", (SEQUENCE, F[0]), {"mode": "same"}, True),
    ("trapezoid", (I,), {}, True),
    ("trapezoid", (F,), {"x": np.array([0.0, 1.0, 3.0], "float32"), "axis": 1}, True),
    ("histogram", (SEQUENCE,), {"bins": 3}, True),
    ("histogram", (np.array([1, 2, 2, 5], "int32"),), {"bins": 3, "range": (0, 6)}, True),
    ("geomspace", (1, 100, 3), {}, False),
    ("geomspace", (1, 100, 3), {"dtype": "int32"}, False),
    ("geomspace", (2.0, 32.0, 5), {"endpoint": False}, False),
    ("nonzero", (I > 2,), {}, False),
    ("unique", (np.array([3, 1, 3]),), {}, False),
    ("unique", (np.array([3, 1, 3]),), {"return_index": True, "return_inverse": True, "return_counts": True}, False),
    ("unique", (np.array([[1, 2], [1, 2], [0, 1]]),), {"axis": 0}, False),
    ("unique", (np.array([3.0, 1.0, 3.0], "float32"),), {"size": 4, "fill_value": -1.0}, True),
    ("unravel_index", (np.array([5, 7], "int32"), (3, 4)), {}, True),
    ("vander", (np.array([1, 2, 3], "int32"),), {}, True),
    ("vander", (F[0], 2, True), {}, True),
    ("view", (F, "int32"), {}, True),
    ("view", (F, "uint8"), {}, True),
    ("dsplit", (T3, 2), {}, True),
    # linear algebra, math, Fourier transforms, einops
    ("cholesky_inverse", (CHOLESKY,), {}, True),
    ("cholesky_inverse", (CHOLESKY.T.copy(),), {"upper": True}, True),
    ("lu_factor", (np.stack([SPD, SPD.T + 1]),), {}, True),
    ("cdist", (F, _normal(4, 3)), {}, True),
    ("cdist", (I, np.zeros((4, 3), "int32")), {}, True),
    ("extract_sequences", (SEQUENCE, 4, 2), {}, True),
    ("extract_sequences", (_normal(2, 3, 9), 3, 3), {}, True),
    ("view_as_complex", (_normal(3, 2),), {}, True),
    ("view_as_real", (np.array([1 + 2j, 3 - 1j], "complex64"),), {}, False),  # Input takes no complex dtype
    ("fft", ((REAL, IMAG),), {}, True),
    ("fft2", ((REAL, IMAG),), {}, True),
    ("ifft2", ((REAL, IMAG),), {}, True),
    ("rfft", (REAL,), {}, True),
    ("rfft", (REAL, 6), {}, True),
    ("irfft", ((REAL[:, :5], IMAG[:, :5]),), {}, True),
    ("irfft", ((REAL[:, :5], IMAG[:, :5]), 9), {}, True),
    ("stft", (SIGNAL, 8, 4, 16), {}, True),
    ("stft", (SIGNAL, 8, 3, 8), {"window": "hamming", "center": False}, True),
    ("stft", (SIGNAL, 6, 2, 8), {"window": None}, True),
    ("istft", (SPECTRUM, 8, 4, 16), {}, True),
    ("istft", (SPECTRUM, 8, 4, 16), {"length": 20}, True),
    ("istft", (SPECTRUM_HAMMING, 8, 2, 8), {"window": "hamming", "center": False}, True),
    ("rearrange", (T3, "b h w -> b w h"), {}, True),
    ("rearrange", (IMAGES, "b (h p) w c -> b h w (p c)"), {"p": 2}, True),
    ("rearrange", (IMAGES, "b h w c -> (b h) (w c)"), {}, True),
]
IDS = [f"{name}-{index}" for index, (name, *_) in enumerate(CASES)]
# The default run compares one representative case per group; the full sweep is marked slow.
QUICK = {2, 8, 14, 19, 20, 36, 58, 86, 100, 105}
SWEEP = [pytest.param(case, id=id_, marks=() if index in QUICK else pytest.mark.slow)
         for index, (case, id_) in enumerate(zip(CASES, IDS, strict=True))]


def _leaves(result):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(result)]


def assert_same(ours, theirs, rtol=1e-5):
    ours, theirs = _leaves(ours), _leaves(theirs)
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert (mine.dtype, mine.shape) == (reference.dtype, reference.shape)
        if mine.dtype.kind in "fc":
            np.testing.assert_allclose(mine, reference, rtol=rtol, atol=1e-5)
        else:
            np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("case", SWEEP)
def test_op_matches_keras(case):
    name, args, kwargs, _ = case
    assert_same(getattr(ops, name)(*args, **kwargs), getattr(keras.ops, name)(*args, **kwargs))


def test_every_keras_op_name_exists_in_kfunc():
    missing = sorted(n for n in dir(keras.ops) if not n.startswith("_") and not hasattr(ops, n))
    assert not missing
    for namespace in ("nn", "numpy", "linalg"):
        names = [n for n in dir(getattr(keras.ops, namespace)) if not n.startswith("_")]
        assert not [n for n in names if n not in getattr(ops, namespace).__all__], namespace


# ---------------------------------------------------------------- symbolic tensors
def _symbolic_call(case, inputs: dict):
    """The case's op with each array argument (by identity) as one shared ``Input``."""
    name, args, kwargs, _ = case

    def to_input(leaf):
        if not isinstance(leaf, np.ndarray):
            return leaf
        if id(leaf) not in inputs:
            inputs[id(leaf)] = (kfunc.Input(batch_shape=leaf.shape, dtype=leaf.dtype.name), leaf)
        return inputs[id(leaf)][0]

    args, kwargs = jax.tree_util.tree_map(to_input, (args, kwargs))
    return getattr(ops, name)(*args, **kwargs)


def _symbolic_leaves(result):
    return jax.tree_util.tree_leaves(result, is_leaf=lambda x: isinstance(x, SymbolicTensor))


TRACEABLE = [param for param, case in zip(SWEEP, CASES, strict=True) if case[3]]


@pytest.mark.slow
@pytest.mark.parametrize("case", TRACEABLE)
def test_symbolic_shape_and_dtype_equal_eager(case):
    symbolic = _symbolic_leaves(_symbolic_call(case, {}))
    eager = _leaves(getattr(ops, case[0])(*case[1], **case[2]))
    assert all(isinstance(tensor, SymbolicTensor) for tensor in symbolic)
    assert [(t.shape, t.dtype) for t in symbolic] == [(e.shape, e.dtype) for e in eager]


@pytest.mark.slow
def test_a_model_of_every_traceable_case_computes_saves_and_loads(tmp_path):
    inputs, outputs, expected = {}, [], []
    for param in TRACEABLE:
        case = param.values[0]
        outputs.extend(_symbolic_leaves(_symbolic_call(case, inputs)))
        expected.extend(_leaves(getattr(ops, case[0])(*case[1], **case[2])))
    model = kfunc.Model([tensor for tensor, _ in inputs.values()], outputs)
    model.save(tmp_path / "ops.keras")
    loaded = kfunc.models.load_model(tmp_path / "ops.keras")
    assert json.dumps(model_spec(loaded)) == json.dumps(model_spec(model))
    arrays = [array for _, array in inputs.values()]
    for results in (model(arrays), loaded(arrays)):
        assert_same([np.asarray(r) for r in results], expected)


def test_new_ops_build_a_model_with_a_free_batch_axis_and_predict_the_eager_result():
    query, key = kfunc.Input((4, 4, 3), name="query"), kfunc.Input((5, 2, 3), name="key")
    images, signal = kfunc.Input((4, 6, 8), name="images"), kfunc.Input((32,), name="signal")
    attended = ops.layer_normalization(ops.dot_product_attention(query, key, key, is_causal=True), axis=[2, 3])
    shuffled = ops.space_to_depth(ops.rms_normalization(ops.depth_to_space(images, 2)), 2)
    real, imag = ops.stft(signal, 8, 4, 16)
    restored = ops.istft((real, imag), 8, 4, 16, length=32)
    merged = ops.rearrange(shuffled, "b h w c -> b (h w) c")
    model = kfunc.Model([query, key, images, signal], [attended, merged, restored, ops.sparsemax(real)])
    assert [tuple(t.shape) for t in model.outputs] == [(None, 4, 4, 3), (None, 24, 8), (None, 32), (None, 9, 9)]
    arrays = [QUERY, KEY, IMAGES, SIGNAL]
    eager_attended = ops.layer_normalization(ops.dot_product_attention(QUERY, KEY, KEY, is_causal=True), axis=[2, 3])
    eager_real = ops.stft(SIGNAL, 8, 4, 16)[0]
    eager_shuffled = ops.space_to_depth(ops.rms_normalization(ops.depth_to_space(IMAGES, 2)), 2)
    expected = [eager_attended, ops.rearrange(eager_shuffled, "b h w c -> b (h w) c"), SIGNAL, ops.sparsemax(eager_real)]
    for result, reference in zip(model.predict(arrays, verbose=0), expected, strict=True):
        np.testing.assert_allclose(result, reference, rtol=1e-5, atol=1e-5)


def test_unique_with_a_size_is_a_graph_node_and_without_one_is_refused():
    x = kfunc.Input(batch_shape=(3,), dtype="int32", name="ids")
    values, counts = ops.unique(x, size=3, fill_value=-1, return_counts=True)
    model = kfunc.Model(x, [values, counts])
    got_values, got_counts = model(np.array([3, 1, 3], "int32"))
    np.testing.assert_array_equal(got_values, [1, 3, -1])
    np.testing.assert_array_equal(got_counts, [1, 2, 0])
    with pytest.raises(SymbolicTensorError, match=r"kfunc.ops.unique cannot be applied to a symbolic tensor.*pass size=N"):
        ops.unique(x)


def test_data_dependent_ops_refuse_symbolic_tensors_and_jit():
    x = kfunc.Input((3,), dtype="int32")
    with pytest.raises(SymbolicTensorError, match=r"ops.nonzero cannot be applied to a symbolic tensor.*ops.where"):
        ops.nonzero(x)
    with pytest.raises(SymbolicTensorError, match=r"ops.bincount cannot be applied to a symbolic tensor.*one_hot"):
        ops.bincount(x)
    with pytest.raises(ValueError, match=r"ops.bincount was called inside jax.jit.*one_hot"):
        jax.jit(ops.bincount)(np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"ops.unique was called inside jax.jit.*size=N"):
        jax.jit(ops.unique)(np.array([0, 1, 1]))


def test_function_making_ops_work_on_arrays_and_refuse_symbolic_tensors():
    @ops.custom_gradient
    def clipped_identity(x):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return jnp.clip(upstream, -0.1, 0.1)

        return x, grad

    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(3.0 * clipped_identity(x)))(F), np.full((2, 3), 0.1))
    row_dot = ops.vectorize(lambda a, b: jnp.dot(a, b), signature="(n),(n)->()")
    np.testing.assert_allclose(row_dot(F, F), np.sum(F * F, axis=1), rtol=1e-6)
    primal, tangent = ops.jvp(lambda a: a * a, (F,), (np.ones_like(F),))
    assert_same((primal, tangent), keras.ops.jvp(lambda a: a * a, (F,), (np.ones_like(F),)))
    with pytest.raises(SymbolicTensorError, match=r"made by kfunc.ops.vectorize works on arrays.*Lambda layer"):
        row_dot(kfunc.Input((3,)), kfunc.Input((3,)))


# ---------------------------------------------------------------- where kfunc differs on purpose
def test_sparsemax_projects_onto_the_simplex():
    # Keras 3.15's JAX sparsemax gives rows that do not sum to 1 (see its docstring in kfunc).
    x = np.array([[0.5, 0.3, 0.1, -2.0], [1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]], "float32")
    expected = np.array([[0.8 / 1.5, 0.5 / 1.5, 0.2 / 1.5, 0.0], [0.25] * 4, [1.0, 0.0, 0.0, 0.0]], "float32")
    np.testing.assert_allclose(ops.sparsemax(x), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ops.sparsemax(x.T, axis=0), expected.T, rtol=1e-5, atol=1e-7)


def test_attention_allows_a_value_depth_other_than_the_key_depth():
    value = _normal(2, 5, 2, 6)  # Keras 3.15 on JAX fails to reshape this case
    result = ops.dot_product_attention(QUERY, KEY, value)
    logits = np.einsum("btnh,bsnh->bnts", QUERY, np.repeat(KEY, 2, axis=2)) / np.sqrt(3)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    np.testing.assert_allclose(result, np.einsum("bnts,bsnh->btnh", weights, np.repeat(value, 2, axis=2)),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- error messages
@pytest.mark.parametrize("call, error, message", [
    (lambda: ops.dot_product_attention(F, F, F), ValueError, r"expects 4-D query, key and value.*expand_dims"),
    (lambda: ops.dot_product_attention(QUERY, KEY, VALUE, attn_logits_soft_cap=20.0), ValueError,
     r"attn_logits_soft_cap exists only in Keras's TPU Splash kernel"),
    (lambda: ops.layer_normalization(F, rms_scaling=True), ValueError, r"rms_scaling=True.*rms_normalization"),
    (lambda: ops.ctc_decode(LOGITS, OUTPUT_LENGTHS, strategy="beam_search"), ValueError,
     r"supports strategy='greedy' only"),
    (lambda: ops.depth_to_space(_normal(1, 2, 2, 6), 2), ValueError, r"the 6 channels must be a multiple of"),
    (lambda: ops.psnr(F, T3, 1.0), ValueError, r"psnr expects x1 and x2 of the same shape"),
    (lambda: ops.fft(REAL), ValueError, r"fft expects x as a pair \(real, imag\)"),
    (lambda: ops.fft((I, I)), ValueError, r"must be floats, received int32"),
    (lambda: ops.stft(np.arange(32), 8, 4, 16), TypeError, r"stft expects a float32 or float64 signal"),
    (lambda: ops.stft(SIGNAL, 8, 4, 16, window="boxcar"), ValueError, r"'hann' or 'hamming'"),
    (lambda: ops.rearrange(T3, "b h w -> b h"), ValueError, r"both sides .* must name the same axes"),
    (lambda: ops.rearrange(T3, "b (h p) w -> b h p w"), ValueError, r"needs the lengths of all but one"),
    (lambda: ops.correlate(F, F), ValueError, r"correlate expects 1-D x1 and x2"),
    (lambda: ops.bincount(np.array([1, 2]), sparse=True), ValueError, r"sparse=True is not supported"),
    (lambda: ops.fold(COLUMNS, (7, 6), 3), ValueError, r"does not fit kernel_size"),
])
def test_error_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()
