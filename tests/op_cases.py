"""The table of op calls the ops tests share: each case is an op name and the arguments of one
call, small NumPy arrays included. ``tests/test_ops.py`` compares each with ``keras.ops`` (values
and dtype); ``tests/test_ops_symbolic.py`` makes each array argument a symbolic tensor."""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np

rng = np.random.default_rng(12)

F = rng.normal(size=(2, 3)).astype("float32")
G = rng.normal(size=(2, 3)).astype("float32")
POS = rng.uniform(0.5, 2.0, size=(2, 3)).astype("float32")
UNIT = rng.uniform(-0.9, 0.9, size=(2, 3)).astype("float32")
I = rng.integers(-5, 6, size=(2, 3)).astype("int32")
IPOS = rng.integers(1, 6, size=(2, 3)).astype("int32")
B = rng.random(size=(2, 3)) > 0.5
B2 = rng.random(size=(2, 3)) > 0.5
V = rng.normal(size=(3,)).astype("float32")
W = rng.normal(size=(3,)).astype("float32")
M = rng.normal(size=(3, 3)).astype("float32")
SPD = (M @ M.T + 3 * np.eye(3)).astype("float32")
T3 = rng.normal(size=(2, 3, 4)).astype("float32")
WITH_ZEROS = np.array([[1.0, 0.0, 2.0], [0.0, -1.0, 3.0]], "float32")
LABELS = np.array([0, 2], "int32")
PROBS = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], "float32")
ONE_HOT = np.eye(3, dtype="float32")[LABELS]
IMAGES = rng.normal(size=(2, 5, 6, 3)).astype("float32")
SEQUENCES = rng.normal(size=(2, 7, 3)).astype("float32")
KERNEL_2D = rng.normal(size=(3, 3, 3, 4)).astype("float32")
KERNEL_1D = rng.normal(size=(2, 3, 4)).astype("float32")
DEPTHWISE = rng.normal(size=(3, 3, 3, 2)).astype("float32")
POINTWISE = rng.normal(size=(1, 1, 6, 4)).astype("float32")
TRANSPOSE_KERNEL = rng.normal(size=(3, 3, 4, 3)).astype("float32")
SEGMENTS = np.array([0, 0, 1, 2, 2, 2], "int32")
ROWS = rng.normal(size=(6, 2)).astype("float32")


class Case(NamedTuple):
    name: str  # public op name; "image.resize" for kfunc.ops.image.resize
    args: tuple
    kwargs: dict
    id: str


def _case(name, *args, id=None, **kwargs):
    return Case(name, args, kwargs, id or name)


UNARY_FLOAT = [
    "abs", "absolute", "negative", "sign", "square", "cbrt", "exp", "exp2", "expm1", "sin", "cos", "tan",
    "arctan", "sinh", "cosh", "tanh", "arcsinh", "sinc", "deg2rad", "rad2deg", "floor", "ceil", "trunc",
    "round", "isnan", "isinf", "isfinite", "signbit", "copy", "real", "conj", "conjugate", "fabs", "erf",
    "relu", "relu6", "sigmoid", "softplus", "softsign", "silu", "swish", "log_sigmoid", "hard_sigmoid",
    "hard_silu", "hard_swish", "selu", "hard_tanh", "tanh_shrink", "sparse_plus", "squareplus", "softmax",
    "log_softmax", "gelu", "elu", "celu", "leaky_relu", "hard_shrink", "soft_shrink",
]
UNARY_POSITIVE = ["sqrt", "reciprocal", "log", "log2", "log10", "log1p", "rsqrt", "arccosh"]
UNARY_UNIT = ["arcsin", "arccos", "arctanh", "erfinv"]
UNARY_INT = ["sqrt", "exp", "floor", "ceil", "trunc", "sin", "tanh", "abs", "square", "sign", "negative",
             "log1p", "cbrt"]
BINARY = [
    "add", "subtract", "multiply", "divide", "true_divide", "maximum", "minimum", "fmax", "fmin", "arctan2",
    "hypot", "logaddexp", "heaviside", "equal", "not_equal", "less", "less_equal", "greater",
    "greater_equal", "isclose", "allclose",
]
REDUCTIONS = ["sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "ptp", "all", "any",
              "argmax", "argmin", "median", "logsumexp"]

CASES: list[Case] = (
    [_case(n, F, id=f"{n}-float") for n in UNARY_FLOAT]
    + [_case(n, POS + 1.0, id=f"{n}-positive") for n in UNARY_POSITIVE]
    + [_case(n, UNIT, id=f"{n}-unit") for n in UNARY_UNIT]
    + [_case(n, I, id=f"{n}-int") for n in UNARY_INT]
    + [_case(n, F, G, id=f"{n}-float") for n in BINARY]
    + [_case(n, I, IPOS, id=f"{n}-int") for n in ("add", "multiply", "divide", "floor_divide", "mod", "power",
                                                   "maximum", "equal", "bitwise_and", "bitwise_or",
                                                   "bitwise_xor", "left_shift", "right_shift")]
    + [_case(n, B, B2) for n in ("logical_and", "logical_or", "logical_xor")]
    + [_case("logical_not", B), _case("bitwise_invert", I), _case("bitwise_not", I)]
    + [
        _case("add", F, 2, id="add-python-int"),
        _case("add", I, 2.5, id="add-int-python-float"),
        _case("multiply", I, 2, id="multiply-int-python-int"),
        _case("divide", I, 2, id="divide-int-python-int"),
        _case("power", POS, 2.0, id="power-python-float"),
        _case("floor_divide", F, POS, id="floor_divide-float"),
        _case("mod", F, POS, id="mod-float"),
        _case("fmod", F, POS, id="fmod-float"),
        _case("divide_no_nan", F, WITH_ZEROS),
        _case("nan_to_num", np.array([np.nan, np.inf, -np.inf, 1.0], "float32"), nan=1.5),
        _case("round", F * 10, decimals=-1, id="round-decimals"),
        _case("round", I * 7, decimals=-1, id="round-int-negative-decimals"),
        _case("leaky_relu", F, negative_slope=0.5, id="leaky_relu-slope"),
        _case("elu", F, alpha=0.5, id="elu-alpha"),
        _case("gelu", F, approximate=False, id="gelu-exact"),
        _case("glu", T3),
        _case("threshold", F, 0.1, -1.0),
        _case("softmax", F, axis=0, id="softmax-axis0"),
        _case("log_softmax", T3, axis=1, id="log_softmax-axis1"),
    ]
    + [_case(n, F, id=f"{n}-all") for n in REDUCTIONS]
    + [_case(n, T3, axis=1, id=f"{n}-axis1") for n in REDUCTIONS]
    + [_case(n, T3, axis=(0, 2), keepdims=True, id=f"{n}-axes-keepdims")
       for n in ("sum", "mean", "var", "std", "max", "min", "prod", "all", "any", "logsumexp", "median")]
    + [_case(n, I, axis=1, id=f"{n}-int-axis1") for n in ("sum", "mean", "var", "std", "max", "argmax", "prod")]
    + [_case(n, B, axis=0, id=f"{n}-bool") for n in ("sum", "mean", "any", "all")]
    + [
        _case("argmax", np.array([[0.0, -0.0, -1.0], [-0.0, 0.0, -2.0]], "float32"), axis=1, id="argmax-signed-zero"),
        _case("argmax", T3, axis=-1, keepdims=True, id="argmax-keepdims"),
        _case("count_nonzero", WITH_ZEROS),
        _case("count_nonzero", WITH_ZEROS, axis=1, id="count_nonzero-axis"),
        _case("cumsum", T3, axis=1), _case("cumsum", I, id="cumsum-flat-int"),
        _case("cumprod", F, axis=0),
        _case("quantile", T3, 0.3, axis=1), _case("percentile", F, 40.0, axis=1),
        _case("average", F, axis=1, weights=POS[0]), _case("average", I, id="average-int"),
        _case("sort", F), _case("sort", T3, axis=0, id="sort-axis0"), _case("argsort", F),
        _case("trace", M), _case("trace", T3, offset=1, axis1=1, axis2=2, id="trace-axes"),
        *[_case(n, np.where(F > 1.0, np.nan, F).astype("float32"), axis=1, id=f"{n}-nan")
          for n in ("nansum", "nanprod", "nanmean", "nanvar", "nanstd", "nanmax", "nanmin")],
        _case("nansum", I, id="nansum-int"),
        # shapes
        _case("reshape", F, (3, 2)), _case("reshape", T3, (-1, 4), id="reshape-minus-one"),
        _case("transpose", T3), _case("transpose", T3, axes=(1, 0, 2), id="transpose-axes"),
        _case("moveaxis", T3, 0, -1), _case("swapaxes", T3, 0, 2),
        _case("expand_dims", F, 1), _case("expand_dims", F, -1, id="expand_dims-last"),
        _case("squeeze", F[:, :1]), _case("squeeze", F[:1], axis=0, id="squeeze-axis"),
        _case("ravel", T3), _case("flipud", F), _case("fliplr", F), _case("rot90", T3, 3, axes=(1, 2)),
        _case("diff", T3), _case("diff", F, 2, axis=0, id="diff-twice"), _case("dstack", [F, G]),
        _case("hsplit", T3, [1]), _case("vsplit", T3, 2), _case("diagflat", F, k=-1),
        _case("isin", I, IPOS), _case("isin", I, IPOS, invert=True, id="isin-invert"),
        _case("isneginf", np.array([-np.inf, np.inf, 1.0], "float32")),
        _case("isposinf", np.array([-np.inf, np.inf, 1.0], "float32")), _case("logaddexp2", F, G),
        _case("erfc", F), _case("empty_like", I, dtype="float32"), _case("matrix_rank", np.outer(V, W)),
        _case("matrix_rank", T3, tol=0.5, id="matrix_rank-tol"),
_case("broadcast_to", V, (2, 3)),
        _case("concatenate", [F, G], axis=-1), _case("concatenate", [F, G, F], id="concatenate-axis0"),
        _case("stack", [F, G], axis=1), _case("hstack", [F, G]), _case("vstack", [F, G]),
        _case("append", F, G, axis=0), _case("append", F, G, id="append-flat"),
        _case("split", T3, 2, axis=2), _case("split", T3, [1, 3], axis=-1, id="split-indices"),
        _case("array_split", T3, 3, axis=2), _case("unstack", T3, axis=1),
        _case("tile", F, (2, 1)), _case("repeat", F, 2, axis=1), _case("repeat", F, 2, id="repeat-flat"),
        _case("flip", F), _case("flip", T3, axis=1, id="flip-axis"),
        _case("roll", F, 1), _case("roll", T3, -1, axis=2, id="roll-axis"),
        _case("pad", F, ((1, 0), (0, 2))), _case("pad", F, ((1, 1), (1, 1)), constant_values=5.0, id="pad-value"),
        _case("pad", F, ((1, 1), (2, 2)), mode="reflect", id="pad-reflect"),
        _case("take", T3, np.array([2, 0], "int32"), axis=1),
        _case("take", F, np.array([[0, 5], [-1, 2]], "int32"), id="take-flat-negative"),
        _case("take_along_axis", F, np.argsort(F, axis=1).astype("int32"), axis=1),
        _case("where", B, F, G), _case("where", F > 0, F, 0.0, id="where-scalar"),
        _case("select", [F > 0.5, F < -0.5], [F, G], default=7.0),
        _case("clip", F, -0.5, 0.5), _case("clip", B, 0, 1, id="clip-bool"),
        _case("tril", M), _case("triu", M, k=1), _case("diag", V), _case("diag", M, k=1, id="diag-matrix"),
        _case("diagonal", T3, offset=1, axis1=1, axis2=2),
        _case("searchsorted", np.sort(V), W), _case("digitize", F, np.array([-1.0, 0.0, 1.0], "float32")),
        _case("meshgrid", V, W[:2]), _case("meshgrid", V, W[:2], indexing="ij", id="meshgrid-ij"),
        _case("size", T3), _case("get_item", T3, (slice(None), 0)), _case("get_item", T3, 1, id="get_item-int"),
        # creation
        _case("zeros", (2, 3)), _case("ones", (2,), dtype="int32"), _case("full", (2, 2), 3),
        _case("full", (2, 2), 3, dtype="int32", id="full-int"), _case("zeros_like", I),
        _case("ones_like", F, dtype="float16"), _case("full_like", I, 4), _case("full_like", F, 2.5, id="full_like-f"),
        _case("arange", 5), _case("arange", 1, 7, 2, id="arange-int-step"), _case("arange", 0.0, 1.0, 0.25, id="arange-float"),
        _case("arange", 3, dtype="float32", id="arange-dtype"), _case("arange", 1, 4.0, id="arange-mixed"),
        _case("linspace", 0.0, 1.0, 5), _case("linspace", 0, 4, 3, endpoint=False, id="linspace-no-end"),
        _case("logspace", 0.0, 2.0, 3), _case("eye", 3), _case("eye", 2, 3, k=1, id="eye-rect"),
        _case("identity", 2), _case("tri", 3), _case("tri", 3, 2, k=-1, dtype="int32", id="tri-int"),
        # products
        _case("matmul", F, M), _case("matmul", T3, np.swapaxes(T3, 1, 2), id="matmul-batched"),
        _case("matmul", V, M, id="matmul-vector"), _case("dot", F, M), _case("dot", V, W, id="dot-vectors"),
        _case("einsum", "bij,bkj->bik", T3, T3), _case("einsum", "ij->j", F, id="einsum-sum"),
        _case("tensordot", T3, np.ones((3, 4), "float32"), axes=2),
        _case("tensordot", F, M, axes=([1], [0]), id="tensordot-lists"),
        _case("outer", V, W), _case("inner", F, G), _case("vdot", V, W), _case("cross", V, W), _case("kron", F, G),
        # nn
        _case("one_hot", LABELS, 4), _case("one_hot", np.array([[1, -1]], "int32"), 3, axis=0, id="one_hot-axis0"),
        _case("multi_hot", np.array([[0, 2], [1, 1]], "int32"), 4),
        _case("multi_hot", np.array([0, 3], "int32"), 5, dtype="int32", id="multi_hot-1d"),
        _case("binary_crossentropy", (F > 0).astype("float32"), np.clip(POS / 2, 0, 1)),
        _case("binary_crossentropy", (F > 0).astype("float32"), G, from_logits=True, id="binary_crossentropy-logits"),
        _case("categorical_crossentropy", ONE_HOT, PROBS),
        _case("categorical_crossentropy", ONE_HOT, F, from_logits=True, id="categorical_crossentropy-logits"),
        _case("sparse_categorical_crossentropy", LABELS, PROBS),
        _case("sparse_categorical_crossentropy", LABELS[:, None], F, from_logits=True, id="sparse_cce-logits"),
        _case("moments", T3, [0, 1]), _case("moments", T3, [2], keepdims=True, id="moments-keepdims"),
        _case("moments", T3.astype("float16"), [1], id="moments-float16"),
        _case("batch_normalization", T3, T3.mean((0, 1)), T3.var((0, 1)), 2, offset=W[:1].repeat(4),
              scale=POS[0, :1].repeat(4)),
        _case("batch_normalization", F, V, POS[0], axis=1, epsilon=0.1, id="batch_normalization-plain"),
        _case("normalize", F), _case("normalize", T3, axis=1, order=1, id="normalize-l1"),
        _case("conv", IMAGES, KERNEL_2D), _case("conv", IMAGES, KERNEL_2D, strides=2, padding="same", id="conv-same"),
        _case("conv", SEQUENCES, KERNEL_1D, dilation_rate=2, id="conv-1d-dilated"),
        _case("conv", np.moveaxis(IMAGES, -1, 1), KERNEL_2D, data_format="channels_first", id="conv-channels-first"),
        _case("depthwise_conv", IMAGES, DEPTHWISE, padding="same"),
        _case("separable_conv", IMAGES, DEPTHWISE, POINTWISE, strides=(1, 2)),
        _case("conv_transpose", IMAGES, TRANSPOSE_KERNEL, 2), _case(
            "conv_transpose", IMAGES, TRANSPOSE_KERNEL, 2, padding="same", id="conv_transpose-same"),
        _case("conv_transpose", IMAGES, TRANSPOSE_KERNEL, (2, 1), output_padding=1, id="conv_transpose-output-pad"),
        _case("max_pool", IMAGES, 2, strides=2), _case("max_pool", IMAGES, 3, strides=2, padding="same", id="max_pool-same"),
        _case("average_pool", IMAGES, (2, 3), strides=(2, 3)), _case("average_pool", SEQUENCES, 2, 1, "same", id="average_pool-same"),
        # core
        _case("cast", F, "int32"), _case("cast", I, "float16", id="cast-f16"), _case("cast", F, "bool", id="cast-bool"),
        _case("saturate_cast", F * 300, "uint8"), _case("convert_to_tensor", [[1, 2], [3, 4]]),
        _case("convert_to_tensor", F, dtype="float16", id="convert_to_tensor-dtype"),
        _case("stop_gradient", F),
        _case("slice", T3, (0, 1, 1), (2, 2, 3)), _case("slice", T3, (1, 0, 2), (-1, 2, -1), id="slice-to-end"),
        _case("slice_update", T3, (0, 1, 2), np.ones((1, 2, 2), "float32")),
        _case("scatter", np.array([[0, 1], [1, 2], [0, 1]], "int32"), V, (2, 3)),
        _case("scatter_update", F, np.array([[0, 1], [1, 2]], "int32"), W[:2]),
        _case("scatter_update", F, np.array([[0, 1]], "int32"), W[:1], reduction="add", id="scatter_update-add"),
        # math
        _case("segment_sum", ROWS, SEGMENTS, num_segments=3), _case("segment_max", ROWS, SEGMENTS, num_segments=4),
        _case("top_k", T3, 2), _case("in_top_k", LABELS, PROBS, 1), _case("in_top_k", LABELS, PROBS, 2, id="in_top_k-2"),
        _case("logdet", SPD),
        # linalg
        _case("inv", SPD), _case("det", M), _case("slogdet", M), _case("solve", SPD, F.T),
        _case("solve_triangular", np.tril(SPD), F.T, lower=True), _case("cholesky", SPD), _case("qr", F.T),
        _case("qr", F.T, mode="complete", id="qr-complete"), _case("svd", F), _case("svd", F, compute_uv=False, id="svd-s"),
        _case("eig", SPD), _case("eigh", SPD), _case("norm", F), _case("norm", I, axis=1, id="norm-int-axis"),
        _case("norm", M, ord="fro", id="norm-fro"), _case("norm", F, ord=1, axis=1, keepdims=True, id="norm-l1"),
        _case("pinv", F), _case("lstsq", M, F.T),
        # image
        _case("image.resize", IMAGES, (3, 4)), _case("image.resize", IMAGES[0], (8, 9), interpolation="nearest",
                                                     id="image.resize-single-nearest"),
        _case("image.resize", IMAGES, (4, 4), interpolation="bicubic", antialias=True, id="image.resize-bicubic"),
        _case("image.resize", IMAGES, (4, 2), crop_to_aspect_ratio=True, id="image.resize-crop"),
        _case("image.resize", IMAGES, (4, 2), pad_to_aspect_ratio=True, fill_value=1.0, id="image.resize-pad"),
        _case("image.resize", np.moveaxis(IMAGES, -1, 1), (3, 3), data_format="channels_first",
              id="image.resize-channels-first"),
    ]
)


def op_of(module, name: str):
    """The op ``name`` of ``kfunc.ops`` or ``keras.ops`` (``"image.resize"`` in the image namespace)."""
    if "." in name:
        namespace, name = name.split(".")
        module = getattr(module, namespace)
    return getattr(module, name)


def one_case_per_op_module(cases, ops) -> set[str]:
    """The default run's cases: for each module of kfunc.ops (elementwise math, reductions, linear
    algebra, nn ...), the case whose id has the smallest CRC-32 (stable from run to run, and as
    likely to be any op of the module as another); the slow run checks every case."""
    chosen = {}
    for case in cases:
        family = op_of(ops, case.name).__module__
        if family not in chosen or zlib.crc32(case.id.encode()) < zlib.crc32(chosen[family].encode()):
            chosen[family] = case.id
    return set(chosen.values())
