"""The table of layer cases that drives the cross-cutting layer tests (``test_layer_table.py``).

Each ``LayerCase`` says how to build one kfunc layer and the equivalent Keras 3 layer, and on
which inputs (shapes without the batch axis) to call them. Most entries are written once as a
function of a layers module (``lambda L: L.Conv2D(4, 3, padding="same")``) and called with
``kfunc.layers`` and with ``keras.layers``, so the two layers get the same arguments by
construction. Layers Keras cannot mirror (``Lambda`` on a Python function) carry a NumPy
reference instead.
"""

from __future__ import annotations

import functools
import importlib
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc


class LayerCase(NamedTuple):
    """One layer configuration and its inputs.

    ``input_shapes``: a shape tuple without the batch axis, e.g. ``(5, 3)``, or a list of them for
    layers called on a list of tensors (merge layers).
    ``make_keras``: builds the equivalent Keras 3 layer, or ``None`` when ``reference`` (a NumPy
    function of the input arrays, batch included) gives the expected output instead.
    ``training``: run the layer in training mode (BatchNormalization's batch statistics).
    ``int_high``: exclusive upper bound of integer inputs (Embedding's ``input_dim``).
    ``spread_inputs``: call the layer as ``layer(*inputs)`` (MultiHeadAttention's query, value,
    key) rather than on the list.
    ``call_kwargs``: keyword arguments of every call (``return_attention_scores=True``).
    """

    id: str
    make_kfunc: Callable[[], Any]
    make_keras: Callable[[], Any] | None
    input_shapes: tuple | list
    dtype: str = "float32"
    rtol: float = 1e-5
    atol: float = 1e-5
    training: bool = False
    reference: Callable | None = None
    int_high: int | None = None
    spread_inputs: bool = False
    call_kwargs: dict | None = None

    @property
    def multi_input(self) -> bool:
        return isinstance(self.input_shapes, list)

    @property
    def shapes(self) -> list[tuple]:
        """The input shapes as a list (one entry for single-input layers)."""
        return list(self.input_shapes) if self.multi_input else [self.input_shapes]

    def call(self, function, inputs, **kwargs):
        """``function`` (a layer, its ``apply`` with the weights bound, ...) called on ``inputs`` (a
        list for multi-input cases) the way this case calls its layer, with ``call_kwargs``."""
        kwargs = {**(self.call_kwargs or {}), **kwargs}
        if self.spread_inputs:
            return function(*inputs, **kwargs)
        return function(inputs, **kwargs)


def _keras_layers():
    # Imported lazily: the table must load where Keras is missing (the Keras check then skips).
    return importlib.import_module("keras").layers


def case(case_id: str, build: Callable, input_shapes, **options) -> LayerCase:
    """A case whose kfunc and Keras layers are ``build(kfunc.layers)`` and ``build(keras.layers)``."""
    return LayerCase(
        case_id,
        lambda: build(kfunc.layers),
        lambda: build(_keras_layers()),
        input_shapes,
        **options,
    )


def _lambda_case(case_id, function, input_shapes, reference, **layer_kwargs) -> LayerCase:
    """A kfunc-only ``Lambda(function)`` case checked against the NumPy ``reference``."""
    return LayerCase(
        case_id,
        lambda: kfunc.layers.Lambda(function, **layer_kwargs),
        None,
        input_shapes,
        reference=reference,
    )


def _normalization_case(case_id: str, input_shapes, **kwargs) -> LayerCase:
    """Keras 3's Normalization reads its statistics from copies it makes when built or loaded
    (``finalize_state``), not from the weights ``set_weights`` writes: the Keras side refreshes
    them after ``set_weights`` so that both layers use the same (random) statistics."""

    def make_keras():
        layer = _keras_layers().Normalization(**kwargs)
        plain_set_weights = layer.set_weights

        def set_weights(weights):
            plain_set_weights(weights)
            layer.finalize_state()

        layer.set_weights = set_weights
        return layer

    return LayerCase(case_id, lambda: kfunc.layers.Normalization(**kwargs), make_keras, input_shapes)
# JaxLayer's functions (registered: a saved model names them) and FlaxLayer's module.
@kfunc.saving.register("kfunc_tests>jax_dense_init")
def jax_dense_init(rng, inputs):
    return {"b": jnp.zeros((3,)), "w": 0.3 * jax.random.normal(rng, (inputs.shape[-1], 3))}


@kfunc.saving.register("kfunc_tests>jax_dense_call")
def jax_dense_call(params, inputs):
    return jnp.tanh(inputs @ params["w"] + params["b"])


@kfunc.saving.register("kfunc_tests>jax_centered_init")
def jax_centered_init(rng, inputs):
    features = inputs.shape[-1]
    return {"w": 0.3 * jax.random.normal(rng, (features, 2))}, {"mean": jnp.zeros((features,))}


@kfunc.saving.register("kfunc_tests>jax_centered_call")
def jax_centered_call(params, state, inputs, training):
    """Centers the inputs on a running mean (moved in training only), then projects them."""
    mean = 0.9 * state["mean"] + 0.1 * jnp.mean(inputs, axis=0) if training else state["mean"]
    return (inputs - mean) @ params["w"], {"mean": mean}


@functools.cache
def flax_two_dense():
    """A registered Flax module (two Dense layers); skips the calling test where Flax is missing."""
    nn = pytest.importorskip("flax.linen")

    class TwoDense(nn.Module):
        @nn.compact
        def __call__(self, inputs):
            return nn.Dense(2)(jnp.tanh(nn.Dense(3)(inputs)))

    return kfunc.saving.register("kfunc_tests>flax_two_dense")(TwoDense())


# linear, relu, tanh, sigmoid and softmax are covered by the Dense cases.
ACTIVATION_NAMES = [
    "relu6", "elu", "selu", "softplus", "softsign", "silu", "gelu", "exponential", "hard_sigmoid",
    "hard_silu", "leaky_relu", "mish", "log_softmax",
]

SEQ = (5, 3)  # (timesteps, features) for recurrent layers

CASES: list[LayerCase] = [
    # ------------------------------------------------------------------ core
    case("dense", lambda L: L.Dense(4), (5,)),
    case("dense_no_bias_relu", lambda L: L.Dense(3, use_bias=False, activation="relu"), (5,)),
    case("dense_tanh_rank3", lambda L: L.Dense(4, activation="tanh"), (2, 5)),
    case("dense_softmax", lambda L: L.Dense(4, activation="softmax"), (5,)),
    case("dense_sigmoid_rank4", lambda L: L.Dense(2, activation="sigmoid"), (2, 3, 4)),
    case(
        "dense_regularized_constrained",
        lambda L: L.Dense(3, kernel_regularizer="l2", bias_regularizer="l1", activity_regularizer="l2",
                          kernel_constraint="max_norm", bias_constraint="non_neg"),
        (5,),
    ),
    *[case(f"activation_{name}", lambda L, n=name: L.Activation(n), (2, 4)) for name in ACTIVATION_NAMES],
    case("dropout_inference", lambda L: L.Dropout(0.5), (6,)),
    _lambda_case("lambda_square", lambda x: x * x + 1.0, (4,), lambda x: x * x + 1.0),
    _lambda_case(
        "lambda_arguments_reduce",
        lambda x, scale: scale * x.sum(axis=-1, keepdims=True),
        (3, 4),
        lambda x: 2.5 * x.sum(axis=-1, keepdims=True),
        arguments={"scale": 2.5},
    ),
    _lambda_case(
        "lambda_two_inputs",
        lambda xs: xs[0] * xs[1] - xs[0],
        [(4,), (4,)],
        lambda xs: xs[0] * xs[1] - xs[0],
    ),
    case("embedding", lambda L: L.Embedding(10, 4), (5,), dtype="int32", int_high=10),
    case("embedding_rank2_ids", lambda L: L.Embedding(7, 3), (2, 3), dtype="int32", int_high=7),
    case("embedding_mask_zero", lambda L: L.Embedding(7, 3, mask_zero=True), (4,), dtype="int32", int_high=7),
    case("masking", lambda L: L.Masking(mask_value=0.5), (4, 3)),
    # ------------------------------------------------------------------ reshaping
    case("flatten", lambda L: L.Flatten(), (2, 3, 2)),
    case("flatten_channels_first", lambda L: L.Flatten(data_format="channels_first"), (2, 3, 4)),
    case("reshape", lambda L: L.Reshape((3, 4)), (12,)),
    case("reshape_minus_one", lambda L: L.Reshape((-1, 2)), (3, 4)),
    case("reshape_minus_one_middle", lambda L: L.Reshape((2, -1, 3)), (4, 3)),
    case("permute_2d", lambda L: L.Permute((2, 1)), (3, 4)),
    case("permute_3d", lambda L: L.Permute((3, 1, 2)), (2, 3, 4)),
    case("repeat_vector", lambda L: L.RepeatVector(3), (4,)),
    case("zero_padding1d", lambda L: L.ZeroPadding1D(2), (4, 3)),
    case("zero_padding1d_asymmetric", lambda L: L.ZeroPadding1D((1, 2)), (4, 3)),
    case("zero_padding2d_per_axis", lambda L: L.ZeroPadding2D((1, 2)), (3, 4, 2)),
    case("zero_padding2d_pairs", lambda L: L.ZeroPadding2D(((1, 2), (0, 1))), (3, 4, 2)),
    case(
        "zero_padding2d_channels_first",
        lambda L: L.ZeroPadding2D(((0, 1), (2, 0)), data_format="channels_first"),
        (2, 3, 4),
    ),
    case("zero_padding3d", lambda L: L.ZeroPadding3D(1), (2, 3, 2, 2)),
    case("zero_padding3d_pairs", lambda L: L.ZeroPadding3D(((1, 0), (0, 1), (2, 1))), (2, 3, 2, 2)),
    case("cropping1d", lambda L: L.Cropping1D((1, 2)), (6, 3)),
    case("cropping1d_int", lambda L: L.Cropping1D(1), (6, 3)),
    case("cropping2d_pairs", lambda L: L.Cropping2D(((1, 0), (1, 2))), (5, 6, 2)),
    case(
        "cropping2d_channels_first",
        lambda L: L.Cropping2D(((1, 0), (0, 2)), data_format="channels_first"),
        (2, 5, 6),
    ),
    case("upsampling1d_size3", lambda L: L.UpSampling1D(size=3), (4, 3)),
    case("upsampling2d_nearest", lambda L: L.UpSampling2D(2), (3, 4, 2)),
    case("upsampling2d_nearest_rect", lambda L: L.UpSampling2D((2, 3)), (3, 4, 2)),
    case(
        "upsampling2d_nearest_channels_first",
        lambda L: L.UpSampling2D(2, data_format="channels_first"),
        (2, 3, 4),
    ),
    case("upsampling2d_bilinear", lambda L: L.UpSampling2D(2, interpolation="bilinear"), (3, 4, 2)),
    case("upsampling2d_bilinear_rect", lambda L: L.UpSampling2D((3, 2), interpolation="bilinear"), (3, 4, 2)),
    # ------------------------------------------------------------------ convolutions
    # Mostly one kernel shape per family, so that compiled operations are shared between cases.
    case("conv1d_valid", lambda L: L.Conv1D(4, 3), (8, 3)),
    case("conv1d_causal", lambda L: L.Conv1D(4, 3, padding="causal"), (8, 3)),
    case("conv1d_causal_dilated", lambda L: L.Conv1D(4, 3, padding="causal", dilation_rate=2), (8, 3)),
    case("conv1d_strides2_same", lambda L: L.Conv1D(4, 3, strides=2, padding="same"), (7, 3)),
    case("conv1d_groups_relu", lambda L: L.Conv1D(4, 3, groups=2, activation="relu"), (8, 4)),
    case("conv2d_valid", lambda L: L.Conv2D(4, 3), (6, 6, 3)),
    case("conv2d_strides2_same_odd", lambda L: L.Conv2D(4, 3, strides=2, padding="same"), (7, 7, 3)),
    case("conv2d_dilated_same", lambda L: L.Conv2D(4, 3, dilation_rate=(2, 1), padding="same"), (6, 6, 3)),
    case("conv2d_groups", lambda L: L.Conv2D(4, 3, groups=2), (5, 5, 4)),
    case(
        "conv2d_channels_first_same_strides",
        lambda L: L.Conv2D(4, 3, strides=2, padding="same", data_format="channels_first"),
        (3, 5, 5),
    ),
    case("conv2d_no_bias_sigmoid", lambda L: L.Conv2D(4, 3, use_bias=False, activation="sigmoid"), (5, 5, 3)),
    case("conv3d_valid", lambda L: L.Conv3D(3, 2), (4, 4, 4, 2)),
    case("conv3d_same_strides2", lambda L: L.Conv3D(3, 2, strides=2, padding="same"), (5, 4, 3, 2)),
    case("conv1d_transpose_valid", lambda L: L.Conv1DTranspose(4, 3), (5, 3)),
    case("conv1d_transpose_valid_stride_over_kernel", lambda L: L.Conv1DTranspose(4, 2, strides=3), (5, 3)),
    case(
        "conv1d_transpose_same_strides2_k4",
        lambda L: L.Conv1DTranspose(4, 4, strides=2, padding="same"),
        (5, 3),
    ),
    case(
        "conv1d_transpose_valid_output_padding",
        lambda L: L.Conv1DTranspose(4, 3, strides=2, output_padding=1),
        (5, 3),
    ),
    case(
        "conv1d_transpose_same_output_padding",
        lambda L: L.Conv1DTranspose(4, 3, strides=2, padding="same", output_padding=1),
        (5, 3),
    ),
    case("conv1d_transpose_dilated", lambda L: L.Conv1DTranspose(4, 3, dilation_rate=2), (5, 3)),
    case("conv2d_transpose_valid", lambda L: L.Conv2DTranspose(3, 3), (4, 4, 2)),
    case("conv2d_transpose_same", lambda L: L.Conv2DTranspose(3, 3, padding="same"), (4, 4, 2)),
    case(
        "conv2d_transpose_same_strides2_k2",
        lambda L: L.Conv2DTranspose(3, 2, strides=2, padding="same"),
        (3, 4, 2),
    ),
    case(
        "conv2d_transpose_same_output_padding",
        lambda L: L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
        (3, 4, 2),
    ),
    case(
        "conv2d_transpose_channels_first",
        lambda L: L.Conv2DTranspose(3, 3, strides=2, data_format="channels_first"),
        (2, 3, 4),
    ),
    case("conv3d_dilated", lambda L: L.Conv3D(3, 2, dilation_rate=(2, 1, 1)), (4, 4, 4, 2)),
    case("conv2d_transpose_dilated_same", lambda L: L.Conv2DTranspose(3, 3, dilation_rate=2, padding="same"), (4, 4, 2)),
    # Depthwise and separable (kfunc/layers/conv_depthwise.py); unlike Conv*, strides and
    # dilation_rate may both exceed 1.
    case("depthwise_conv1d_dilated_no_bias", lambda L: L.DepthwiseConv1D(3, dilation_rate=2, use_bias=False), (9, 3)),
    case("depthwise_conv2d_multiplier2", lambda L: L.DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 3)),
    case(
        "depthwise_conv2d_same_strides2_dilated",
        lambda L: L.DepthwiseConv2D((3, 2), strides=2, dilation_rate=2, padding="same"),
        (7, 8, 3),
    ),
    case(
        "depthwise_conv2d_channels_first_relu",
        lambda L: L.DepthwiseConv2D(3, padding="same", data_format="channels_first", activation="relu"),
        (3, 5, 5),
    ),
    case(
        "separable_conv1d_channels_first_dilated",
        lambda L: L.SeparableConv1D(4, 3, data_format="channels_first", dilation_rate=2),
        (3, 9),
    ),
    case(
        "separable_conv2d_same_strides2_multiplier2",
        lambda L: L.SeparableConv2D(4, 3, strides=2, padding="same", depth_multiplier=2),
        (7, 7, 3),
    ),
    # ------------------------------------------------------------------ pooling
    case("max_pooling1d", lambda L: L.MaxPooling1D(), (7, 3)),
    case("max_pooling1d_same_strides", lambda L: L.MaxPooling1D(3, strides=2, padding="same"), (7, 3)),
    case("max_pooling2d_same_strides", lambda L: L.MaxPooling2D(3, strides=2, padding="same"), (6, 5, 2)),
    case(
        "max_pooling2d_channels_first",
        lambda L: L.MaxPooling2D((2, 3), data_format="channels_first"),
        (2, 4, 6),
    ),
    case("max_pooling3d_same_strides", lambda L: L.MaxPooling3D(3, strides=2, padding="same"), (5, 4, 3, 2)),
    case("average_pooling1d", lambda L: L.AveragePooling1D(2), (7, 3)),
    case(
        "average_pooling1d_same_strides",
        lambda L: L.AveragePooling1D(3, strides=2, padding="same"),
        (7, 3),
    ),
    case("average_pooling2d_same", lambda L: L.AveragePooling2D(2, padding="same"), (5, 5, 2)),
    case("average_pooling2d_valid_strides", lambda L: L.AveragePooling2D(3, strides=(1, 2)), (5, 6, 2)),
    case(
        "average_pooling2d_channels_first_same",
        lambda L: L.AveragePooling2D(2, padding="same", data_format="channels_first"),
        (2, 5, 5),
    ),
    case(
        "average_pooling3d_same_strides",
        lambda L: L.AveragePooling3D(3, strides=2, padding="same"),
        (5, 4, 3, 2),
    ),
    case("global_max_pooling1d", lambda L: L.GlobalMaxPooling1D(), (5, 3)),
    case("global_max_pooling2d_keepdims", lambda L: L.GlobalMaxPooling2D(keepdims=True), (4, 3, 2)),
    case("global_max_pooling3d_keepdims", lambda L: L.GlobalMaxPooling3D(keepdims=True), (3, 3, 2, 2)),
    case("global_average_pooling1d", lambda L: L.GlobalAveragePooling1D(), (5, 3)),
    case(
        "global_average_pooling1d_channels_first",
        lambda L: L.GlobalAveragePooling1D(data_format="channels_first"),
        (3, 5),
    ),
    case("global_average_pooling2d_keepdims", lambda L: L.GlobalAveragePooling2D(keepdims=True), (4, 3, 2)),
    case("global_average_pooling3d", lambda L: L.GlobalAveragePooling3D(), (3, 3, 2, 2)),
    case("adaptive_average_pooling1d", lambda L: L.AdaptiveAveragePooling1D(3), (7, 2)),
    case("adaptive_max_pooling1d_upsamples", lambda L: L.AdaptiveMaxPooling1D(5), (3, 2)),
    case("adaptive_average_pooling2d_cf", lambda L: L.AdaptiveAveragePooling2D((2, 3), data_format="channels_first"),
         (2, 5, 7)),
    case("adaptive_max_pooling2d", lambda L: L.AdaptiveMaxPooling2D(2), (5, 4, 2)),
    case("adaptive_average_pooling3d", lambda L: L.AdaptiveAveragePooling3D((2, 1, 2)), (3, 4, 5, 2)),
    case("adaptive_max_pooling3d", lambda L: L.AdaptiveMaxPooling3D(2), (3, 4, 5, 1)),
    # ------------------------------------------------------------------ recurrent
    # One sequence shape and 3 units throughout, and options combined: every recurrent case costs
    # about a second of compilation on 2 CPU cores.
    case(
        "simple_rnn_sequences_state_backwards",
        lambda L: L.SimpleRNN(3, return_sequences=True, return_state=True, go_backwards=True),
        SEQ,
    ),
    case("gru", lambda L: L.GRU(3), SEQ),
    case(
        "gru_no_bias_sequences_state_backwards",
        lambda L: L.GRU(3, use_bias=False, return_sequences=True, return_state=True, go_backwards=True),
        SEQ,
    ),
    case("gru_reset_before_sequences", lambda L: L.GRU(3, reset_after=False, return_sequences=True), SEQ),
    case("lstm", lambda L: L.LSTM(3), SEQ),
    case(
        "lstm_regularized_constrained",
        lambda L: L.LSTM(3, recurrent_regularizer="l2", kernel_regularizer="l1", recurrent_constraint="unit_norm",
                         bias_constraint="non_neg"),
        SEQ,
    ),
    case("lstm_sequences_state", lambda L: L.LSTM(3, return_sequences=True, return_state=True), SEQ),
    case(
        "lstm_backwards_state_no_bias_relu",
        lambda L: L.LSTM(3, go_backwards=True, return_state=True, use_bias=False, activation="relu"),
        SEQ,
    ),
    # Every merge mode, spread over LSTM and GRU.
    case("bidirectional_lstm_concat", lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True)), SEQ),
    case(
        "bidirectional_lstm_none_state",
        lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=True), merge_mode=None),
        SEQ,
    ),
    case("bidirectional_lstm_ave_last", lambda L: L.Bidirectional(L.LSTM(3), merge_mode="ave"), SEQ),
    case(
        "bidirectional_gru_sum_reset_before",
        lambda L: L.Bidirectional(L.GRU(3, reset_after=False, return_sequences=True), merge_mode="sum"),
        SEQ,
    ),
    case(
        "bidirectional_gru_mul_last_state",
        lambda L: L.Bidirectional(L.GRU(3, return_state=True), merge_mode="mul"),
        SEQ,
    ),
    # ------------------------------------------------------------------ wrappers
    case("time_distributed_dense", lambda L: L.TimeDistributed(L.Dense(4, activation="relu")), (3, 5)),
    case(
        "time_distributed_conv2d",
        lambda L: L.TimeDistributed(L.Conv2D(2, 3, padding="same")),
        (2, 4, 4, 3),
    ),
    # ------------------------------------------------------------------ normalization
    case("batch_norm_images", lambda L: L.BatchNormalization(), (3, 3, 2)),
    case(
        "batch_norm_axis1_no_center_no_scale",
        lambda L: L.BatchNormalization(axis=1, center=False, scale=False),
        (2, 3, 3),
    ),
    case("batch_norm_training", lambda L: L.BatchNormalization(), (4,), training=True),
    case(
        "batch_norm_training_axis1_momentum",
        lambda L: L.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5),
        (2, 3, 3),
        training=True,
    ),
    case("layer_norm_rank3", lambda L: L.LayerNormalization(), (3, 4)),
    case(
        "layer_norm_two_axes_no_center",
        lambda L: L.LayerNormalization(axis=[1, 2], center=False, epsilon=1e-5),
        (3, 4),
    ),
    case("group_norm_images", lambda L: L.GroupNormalization(groups=2), (3, 3, 4)),
    case(
        "group_norm_instance_axis1_no_center",
        lambda L: L.GroupNormalization(groups=-1, axis=1, center=False, epsilon=1e-5),
        (2, 3, 3),
    ),
    # ------------------------------------------------------------------ noise (regularization.py)
    # Identity at inference, here; training-mode statistics are in test_new_layers.py.
    case("spatial_dropout1d_inference", lambda L: L.SpatialDropout1D(0.5), (5, 3)),
    case(
        "spatial_dropout2d_channels_first_inference",
        lambda L: L.SpatialDropout2D(0.5, data_format="channels_first"),
        (2, 3, 3),
    ),
    case("spatial_dropout3d_inference", lambda L: L.SpatialDropout3D(0.5, seed=3), (2, 2, 2, 2)),
    case("gaussian_noise_inference", lambda L: L.GaussianNoise(0.3), (4,)),
    case("gaussian_dropout_inference", lambda L: L.GaussianDropout(0.3), (4,)),
    # ------------------------------------------------------------------ merging
    case("add", lambda L: L.Add(), [(4,), (4,)]),
    case("add_three_rank3", lambda L: L.Add(), [(2, 4), (2, 4), (2, 4)]),
    case("subtract", lambda L: L.Subtract(), [(2, 4), (2, 4)]),
    case("multiply_three", lambda L: L.Multiply(), [(2, 3), (2, 3), (2, 3)]),
    case("average_three", lambda L: L.Average(), [(2, 3), (2, 3), (2, 3)]),
    case("maximum_three", lambda L: L.Maximum(), [(2, 3), (2, 3), (2, 3)]),
    case("minimum_three", lambda L: L.Minimum(), [(2, 3), (2, 3), (2, 3)]),
    case("concatenate_axis1", lambda L: L.Concatenate(axis=1), [(2, 3), (4, 3)]),
    case("concatenate_three_axis_m2", lambda L: L.Concatenate(axis=-2), [(3, 1, 2), (3, 2, 2), (3, 3, 2)]),
    case("concatenate_axis2_rank4", lambda L: L.Concatenate(axis=2), [(2, 3, 2), (2, 1, 2)]),
    case("concatenate_vectors", lambda L: L.Concatenate(axis=1), [(3,), (2,)]),
    case("dot_vectors_normalize", lambda L: L.Dot(axes=1, normalize=True), [(4,), (4,)]),
    case("dot_axes_pair", lambda L: L.Dot(axes=(1, 2)), [(3, 4), (2, 3)]),
    case("dot_last_axes_normalize", lambda L: L.Dot(axes=-1, normalize=True), [(3, 4), (2, 4)]),
    # ------------------------------------------------------------------ attention
    # MultiHeadAttention is called as layer(query, value, key); masks: tests/test_attention.py.
    case("multi_head_attention", lambda L: L.MultiHeadAttention(2, 3), [(4, 6), (5, 6)], spread_inputs=True),
    case(
        "multi_head_attention_key_gate_causal_scores",
        lambda L: L.MultiHeadAttention(2, 3, value_dim=2, output_shape=(2, 3), use_gate=True),
        [(4, 6), (4, 5), (4, 3)],
        spread_inputs=True,
        call_kwargs={"return_attention_scores": True, "use_causal_mask": True},
    ),
    case(
        "multi_head_attention_axes2_no_bias",
        lambda L: L.MultiHeadAttention(2, 2, use_bias=False, attention_axes=(2,)),
        [(2, 3, 4), (2, 5, 4)],
        spread_inputs=True,
    ),
    case("attention_dot", lambda L: L.Attention(), [(4, 5), (6, 5)]),
    case(
        "attention_concat_scale_key_causal_scores",
        lambda L: L.Attention(use_scale=True, score_mode="concat"),
        [(4, 5), (4, 3), (4, 5)],
        call_kwargs={"return_attention_scores": True, "use_causal_mask": True},
    ),
    case("additive_attention_key", lambda L: L.AdditiveAttention(), [(4, 5), (6, 3), (6, 5)]),
    # ------------------------------------------------------------------ op nodes (kfunc.ops on symbolic tensors)
    LayerCase(
        "op_layer_concatenate",
        lambda: kfunc.layers.OpLayer("concatenate", args=([None, None],), kwargs={"axis": -1},
                                     inputs=[[0, 0, 0], [0, 0, 1]]),
        None,
        [(4,), (3,)],
        reference=lambda xs: np.concatenate(xs, axis=-1),
    ),
    # ------------------------------------------------------------------ activation layers
    case("softmax_layer", lambda L: L.Softmax(), (2, 4)),
    case("softmax_layer_two_axes", lambda L: L.Softmax(axis=[1, 2]), (2, 3)),
    case("relu_layer", lambda L: L.ReLU(), (4,)),
    case("relu_layer_max_slope_threshold", lambda L: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2), (2, 4)),
    case("leaky_relu_layer", lambda L: L.LeakyReLU(), (4,)),
    case("prelu", lambda L: L.PReLU(), (2, 3)),
    case("prelu_shared_axes", lambda L: L.PReLU(shared_axes=[1, 2]), (2, 3, 4)),
    case("elu_layer_alpha", lambda L: L.ELU(alpha=0.5), (4,)),
    case("identity", lambda L: L.Identity(), (3, 2)),
    # ------------------------------------------------------------------ preprocessing
    case("rescaling", lambda L: L.Rescaling(1 / 255.0, offset=-0.5), (3, 2)),
    case("rescaling_per_channel", lambda L: L.Rescaling([0.5, 2.0, 1.0], offset=[0.0, 1.0, -1.0]), (2, 2, 3)),
    _normalization_case("normalization", (3,)),
    _normalization_case("normalization_two_axes_invert", (2, 3), axis=(1, 2), invert=True),
    case("normalization_fixed", lambda L: L.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0]), (2, 3)),
    case("category_encoding_multi_hot", lambda L: L.CategoryEncoding(5), (3,), dtype="int32", int_high=5),
    case(
        "category_encoding_one_hot",
        lambda L: L.CategoryEncoding(4, output_mode="one_hot"),
        (3,),
        dtype="int32",
        int_high=4,
    ),
    case("category_encoding_count", lambda L: L.CategoryEncoding(4, output_mode="count"), (5,), dtype="int32", int_high=4),
    case(
        "discretization_int",
        lambda L: L.Discretization(bin_boundaries=[0.5, 1.5, 3.0]),
        (4,),
        dtype="int32",
        int_high=5,
    ),
    case(
        "discretization_multi_hot",
        lambda L: L.Discretization(bin_boundaries=[1.0, 2.0], output_mode="multi_hot"),
        (4,),
        dtype="int32",
        int_high=4,
    ),
    case("unit_normalization", lambda L: L.UnitNormalization(), (4,)),
    case("unit_normalization_two_axes", lambda L: L.UnitNormalization(axis=[1, 2]), (2, 3)),
    case("resizing_bilinear", lambda L: L.Resizing(3, 5), (4, 4, 2)),
    case(
        "resizing_nearest_crop_to_aspect",
        lambda L: L.Resizing(3, 3, interpolation="nearest", crop_to_aspect_ratio=True),
        (4, 6, 2),
    ),
    case("resizing_pad_to_aspect", lambda L: L.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=1.0), (2, 4, 1)),
    case(
        "resizing_bicubic_antialias_channels_first",
        lambda L: L.Resizing(2, 3, interpolation="bicubic", antialias=True, data_format="channels_first"),
        (2, 5, 6),
    ),
    case("center_crop", lambda L: L.CenterCrop(2, 3), (4, 5, 2)),
    case("center_crop_smaller_input", lambda L: L.CenterCrop(5, 4), (3, 4, 2)),
    # ------------------------------------------------------------------ augmentation (inference)
    # Identity at inference; training-mode behaviour is in test_layers_keras3_a.py.
    case("random_flip_inference", lambda L: L.RandomFlip(), (4, 4, 2), call_kwargs={"training": False}),
    case("random_rotation_inference", lambda L: L.RandomRotation(0.2), (4, 4, 2), call_kwargs={"training": False}),
    case(
        "random_translation_inference",
        lambda L: L.RandomTranslation(0.1, 0.2, fill_mode="constant"),
        (4, 4, 2),
        call_kwargs={"training": False},
    ),
    case("random_zoom_inference", lambda L: L.RandomZoom(0.2, 0.1), (4, 4, 2), call_kwargs={"training": False}),
    case("random_contrast_inference", lambda L: L.RandomContrast(0.3), (4, 4, 2), call_kwargs={"training": False}),
    case("random_brightness_inference", lambda L: L.RandomBrightness(0.2), (4, 4, 2), call_kwargs={"training": False}),
    # ------------------------------------------------------------------ more regularization, 3D reshaping
    case("alpha_dropout_inference", lambda L: L.AlphaDropout(0.2), (4,)),
    case("activity_regularization", lambda L: L.ActivityRegularization(l1=0.01, l2=0.02), (4,)),
    case("upsampling3d", lambda L: L.UpSampling3D((1, 2, 2)), (2, 2, 3, 2)),
    case("cropping3d", lambda L: L.Cropping3D(((1, 0), (0, 1), (1, 1))), (3, 3, 4, 2)),
    case("conv3d_transpose_strides2", lambda L: L.Conv3DTranspose(2, 2, strides=2), (2, 2, 2, 3)),
    case("conv3d_transpose_same", lambda L: L.Conv3DTranspose(2, 3, padding="same"), (2, 3, 3, 2)),
    # ------------------------------------------------------------------ Keras 3 layers, group b
    case("einsum_dense_bias", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(None, 4), bias_axes="d"), (3, 5)),
    case("einsum_dense_left_ellipsis_tanh", lambda L: L.EinsumDense("...b,bc->...c", 4, activation="tanh"), (2, 3, 5)),
    case(
        "einsum_dense_right_ellipsis_heads",
        lambda L: L.EinsumDense("ab...,bcd->acd...", output_shape=(2, 5), bias_axes="c"),
        (4, 3),
    ),
    case("rms_normalization", lambda L: L.RMSNormalization(), (3, 4)),
    case("rms_normalization_two_axes", lambda L: L.RMSNormalization(axis=[1, 2], epsilon=1e-3), (3, 4)),
    case("rnn_simple_rnn_cell_sequences", lambda L: L.RNN(L.SimpleRNNCell(3), return_sequences=True), SEQ),
    case(
        "rnn_lstm_cell_state_backwards",
        lambda L: L.RNN(L.LSTMCell(3), return_state=True, go_backwards=True),
        SEQ,
    ),
    case("rnn_gru_cell_reset_before", lambda L: L.RNN(L.GRUCell(3, reset_after=False)), SEQ),
    case(
        "rnn_stacked_cells_sequences_backwards",
        lambda L: L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]), return_sequences=True, go_backwards=True),
        SEQ,
    ),
    case("rnn_list_of_cells", lambda L: L.RNN([L.SimpleRNNCell(2), L.SimpleRNNCell(3)]), SEQ),
    case("conv_lstm1d_same_sequences", lambda L: L.ConvLSTM1D(2, 3, padding="same", return_sequences=True), (3, 5, 2)),
    case(
        "conv_lstm2d_strides_state_backwards",
        lambda L: L.ConvLSTM2D(2, (2, 3), strides=2, return_state=True, go_backwards=True),
        (3, 5, 6, 2),
    ),
    case(
        "conv_lstm2d_channels_first_dilated_sequences",
        lambda L: L.ConvLSTM2D(2, 2, dilation_rate=2, data_format="channels_first", return_sequences=True,
                               use_bias=False),
        (2, 2, 5, 5),
    ),
    case(
        "group_query_attention",
        lambda L: L.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2),
        [(4, 6), (5, 6)],
        spread_inputs=True,
    ),
    case(
        "group_query_attention_key_gate_causal_scores_no_bias",
        lambda L: L.GroupQueryAttention(3, 2, 1, use_bias=False, use_gate=True),
        [(4, 6), (4, 6), (4, 3)],
        spread_inputs=True,
        call_kwargs={"return_attention_scores": True, "use_causal_mask": True},
    ),
    case("spectral_normalization_dense_training", lambda L: L.SpectralNormalization(L.Dense(3)), (4,), training=True),
    case(
        "spectral_normalization_conv2d_two_iterations_training",
        lambda L: L.SpectralNormalization(L.Conv2D(2, 2), power_iterations=2),
        (4, 4, 2),
        training=True,
    ),
    case("spectral_normalization_dense_inference", lambda L: L.SpectralNormalization(L.Dense(3)), (4,)),
    # Keras's JaxLayer runs init_fn only with TensorFlow installed: its layer starts from given values.
    LayerCase(
        "jax_layer_dense",
        lambda: kfunc.layers.JaxLayer(jax_dense_call, init_fn=jax_dense_init),
        lambda: _keras_layers().JaxLayer(jax_dense_call, params=jax_dense_init(jax.random.key(0), jnp.ones((1, 4)))),
        (2, 4),
    ),
    LayerCase(
        "jax_layer_state_training",
        lambda: kfunc.layers.JaxLayer(jax_centered_call, init_fn=jax_centered_init),
        lambda: _keras_layers().JaxLayer(
            jax_centered_call, *(None, *jax_centered_init(jax.random.key(0), jnp.ones((1, 4))))
        ),
        (4,),
        training=True,
    ),
    LayerCase(
        "flax_layer_two_dense",
        lambda: kfunc.layers.FlaxLayer(flax_two_dense()),
        lambda: _keras_layers().FlaxLayer(
            flax_two_dense(), variables=flax_two_dense().init(jax.random.key(0), jnp.ones((1, 4)))
        ),
        (4,),
    ),
    case("bidirectional_rnn_gru_cell", lambda L: L.Bidirectional(L.RNN(L.GRUCell(2), return_sequences=True)), SEQ),
    # ------------------------------------------------------------------ Keras 3 layers, group c
    # Augmentation at inference (identity, cast); training mode is in test_layers_keras3_c.py.
    *[
        case(f"{name}_inference", build, (4, 4, 3), call_kwargs={"training": False})
        for name, build in [
            ("random_grayscale", lambda L: L.RandomGrayscale()),
            ("random_invert", lambda L: L.RandomInvert()),
            ("solarization", lambda L: L.Solarization(addition_factor=0.2, threshold_factor=0.5)),
            ("random_hue", lambda L: L.RandomHue(0.2)),
            ("random_saturation", lambda L: L.RandomSaturation(0.3)),
            ("random_color_degeneration", lambda L: L.RandomColorDegeneration(0.4)),
            ("random_posterization", lambda L: L.RandomPosterization(4)),
            ("random_sharpness", lambda L: L.RandomSharpness(0.3)),
            ("random_color_jitter", lambda L: L.RandomColorJitter(brightness_factor=0.2, hue_factor=0.1)),
            ("equalization", lambda L: L.Equalization()),
            ("mix_up", lambda L: L.MixUp()),
            ("cut_mix", lambda L: L.CutMix()),
            ("random_erasing", lambda L: L.RandomErasing()),
            ("random_gaussian_blur", lambda L: L.RandomGaussianBlur()),
            ("random_shear", lambda L: L.RandomShear(0.2, 0.1)),
            ("random_perspective", lambda L: L.RandomPerspective()),
            ("pipeline_flip_invert", lambda L: L.Pipeline([L.RandomFlip(), L.RandomInvert()])),
            ("random_elastic_transform", lambda L: L.RandomElasticTransform()),
            ("rand_augment", lambda L: L.RandAugment()),
            ("aug_mix", lambda L: L.AugMix()),
        ]
    ],
    case("auto_contrast", lambda L: L.AutoContrast(), (4, 4, 3)),
    case("auto_contrast_unit_range", lambda L: L.AutoContrast(value_range=(0, 1)), (4, 5, 2)),
    # Keras 3's RandomCrop returns the uncropped image at inference; kfunc crops the centred box of
    # the target's aspect ratio and resizes it, which is Keras's Resizing(crop_to_aspect_ratio=True).
    LayerCase(
        "random_crop_inference",
        lambda: kfunc.layers.RandomCrop(3, 2),
        lambda: _keras_layers().Resizing(3, 2, crop_to_aspect_ratio=True),
        (5, 4, 2),
        call_kwargs={"training": False},
    ),
    case("reversible_embedding", lambda L: L.ReversibleEmbedding(6, 4), (3,), dtype="int32", int_high=6),
    case(
        # Tied: an untied layer's reverse call leaves the embeddings without gradient (checked in
        # test_layers_keras3_c.py).
        "reversible_embedding_reverse_soft_cap",
        lambda L: L.ReversibleEmbedding(6, 4, logit_soft_cap=2.0),
        (3, 4),
        call_kwargs={"reverse": True},
    ),
    case("conv_lstm3d_same_sequences", lambda L: L.ConvLSTM3D(2, 2, padding="same", return_sequences=True),
         (2, 2, 3, 3, 2)),
    LayerCase(
        "wrapper_relu",
        lambda: kfunc.layers.Wrapper(kfunc.layers.ReLU()),
        None,
        (4,),
        reference=lambda x: np.maximum(x, 0.0),
    ),
    case("stft_spectrogram_log", lambda L: L.STFTSpectrogram(frame_length=8), (20, 2)),
    case(
        "stft_spectrogram_psd_expand_dims_channels_first",
        lambda L: L.STFTSpectrogram(mode="psd", frame_length=6, frame_step=3, fft_length=8, window="hamming",
                                    scaling="spectrum", padding="same", expand_dims=True,
                                    data_format="channels_first"),
        (2, 17),
    ),
    case(
        "mel_spectrogram",
        lambda L: L.MelSpectrogram(fft_length=16, sequence_stride=4, num_mel_bins=5, sampling_rate=8000),
        (40,),
        rtol=1e-4,
        atol=1e-4,
    ),
]


def _check_table(cases: list[LayerCase]) -> None:
    ids = [c.id for c in cases]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"Duplicate layer case ids: {duplicated}")
    for c in cases:
        if c.make_keras is None and c.reference is None:
            raise ValueError(f"Layer case {c.id} has neither a Keras layer nor a NumPy reference.")
        if np.issubdtype(np.dtype(c.dtype), np.integer) and c.int_high is None:
            raise ValueError(f"Layer case {c.id} has integer inputs but no int_high.")


_check_table(CASES)


def representative_ids(cases: list[LayerCase], family: Callable[[LayerCase], Any]) -> set[str]:
    """One case per family (``family(case)``, e.g. the layer class) for the default test run; the
    slow run checks every case. Within a family the case whose id has the smallest CRC-32 is
    chosen: stable from run to run, and no more likely to be a family's simplest case than its
    hardest (the first case in the table usually is the plainest)."""
    chosen: dict[Any, str] = {}
    for c in cases:
        key = family(c)
        if key not in chosen or zlib.crc32(c.id.encode()) < zlib.crc32(chosen[key].encode()):
            chosen[key] = c.id
    return set(chosen.values())


def layer_class_family(c: LayerCase) -> tuple[str, bool]:
    """A case's family for the Keras comparison: the class of its kfunc layer and whether it runs
    in training mode (training runs compare the moving statistics as well). A case whose layer
    cannot be built is a family of its own, so that its tests run (and report the error)."""
    try:
        return type(c.make_kfunc()).__qualname__, c.training
    except Exception:  # noqa: BLE001 - the case's own tests report the error
        return c.id, c.training


def layer_module_family(c: LayerCase) -> str:
    """A case's family for whole-file checks (save and load): the module of kfunc.layers that
    defines its layer class (conv, recurrent, merge, ...)."""
    try:
        return type(c.make_kfunc()).__module__
    except Exception:  # noqa: BLE001 - the case's own tests report the error
        return c.id
