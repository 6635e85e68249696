"""Attention over a list of sequences: Attention (Luong, dot-product) and AdditiveAttention (Bahdanau).

Inputs ``[query (batch, Tq, dim), value (batch, Tv, dim_v)]`` or ``[query, value, key (batch, Tv, dim)]``
(``key`` defaults to ``value``); output ``(batch, Tq, dim_v)``, and with
``return_attention_scores=True`` also the attention weights ``(batch, Tq, Tv)`` (after masking,
softmax and dropout, as Keras returns them). Masks are boolean ``(batch, timesteps)`` arrays,
``True`` = keep: ``mask=[query_mask, value_mask]``. Also the helpers both attention files share:
dropout on attention weights and the causal mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer

_INPUT_NAMES = ("query", "value", "key")


def attention_dropout(layer, weights, *, rate: float, seed, key, key_argument: str = "key"):
    """``weights`` with each entry zeroed with probability ``rate`` and the rest scaled by
    ``1/(1-rate)`` (what ``Dropout`` does), for ``layer`` in training; ``key`` is required and
    ``key_argument`` is the name under which the layer's ``call`` receives it."""
    if key is None:
        raise LayerConfigError(
            f"{describe_layer(layer)} uses dropout={rate} and needs a random key in training mode: pass "
            f"{key_argument}=jax.random.key(...) when calling it on arrays (key= to apply()), or use fit(), "
            "which provides one."
        )
    if seed is not None:
        key = jax.random.fold_in(key, seed)
    keep = jax.random.bernoulli(key, 1.0 - rate, weights.shape)
    return jnp.where(keep, weights / (1.0 - rate), jnp.zeros((), weights.dtype))


def causal_mask(query_length, value_length):
    """``(1, Tq, Tv)`` booleans, ``True`` where key position ``j <= i`` for query position ``i``."""
    shape = (1, query_length, value_length)
    return jax.lax.broadcasted_iota(jnp.int32, shape, 1) >= jax.lax.broadcasted_iota(jnp.int32, shape, 2)


class Attention(Layer):
    """Dot-product attention: ``softmax(scores(query, key)) @ value`` over the last two axes.

    ``score_mode="dot"``: ``scores = query @ key^T`` (times the weight ``scale`` with ``use_scale``);
    ``"concat"``: ``scores = concat_score_weight * sum(tanh(scale * (query + key)), -1)`` over
    every (query, key) pair. Weights (Keras's): ``scale ()`` if ``use_scale``,
    ``concat_score_weight ()`` for ``"concat"``, both initialized to one. ``dropout`` drops
    attention weights in training (needs ``key``, the random key, like ``Dropout``).
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.use_scale = bool(use_scale)
        self.score_mode = checks.one_of(score_mode, ("dot", "concat"), "score_mode", cls)
        self.dropout = checks.rate(dropout, "dropout", cls)
        self.seed = seed
        self.scale = None
        self.concat_score_weight = None

    @property
    def uses_key(self) -> bool:
        return self.dropout > 0

    # ------------------------------------------------------------------ shapes
    def _split_shapes(self, input_shapes):
        """``(query, value, key)`` shapes from the list of 2 or 3 input shapes, checked."""
        if not isinstance(input_shapes, list) or len(input_shapes) not in (2, 3):
            received = (
                f"a list of {len(input_shapes)} inputs" if isinstance(input_shapes, list)
                else f"one input of shape {input_shapes}"
            )
            raise LayerInputError(
                f"{describe_layer(self)} must be called on a list [query, value] or [query, value, key], "
                f"but received {received}; call it as {type(self).__name__}()([query, value])."
            )
        for index, shape in enumerate(input_shapes):
            if not isinstance(shape, tuple) or len(shape) < 3:
                raise LayerInputError(
                    f"{describe_layer(self)}: input {index} ({_INPUT_NAMES[index]}) must have rank >= 3, "
                    f"(batch, timesteps, features), but received shape {shape}."
                )
        query, value = input_shapes[0], input_shapes[1]
        key = input_shapes[2] if len(input_shapes) == 3 else value
        if sizes_differ(query[-1], key[-1]):
            source = "key" if len(input_shapes) == 3 else "value (used as key)"
            raise LayerInputError(
                f"{describe_layer(self)}: query has {query[-1]} features but {source} has {key[-1]}; the "
                f"'{self.score_mode}' score compares them feature by feature, so they must be equal: "
                "project one of them with a Dense layer first."
            )
        if sizes_differ(value[-2], key[-2]):
            raise LayerInputError(
                f"{describe_layer(self)}: value and key must have the same number of timesteps, but "
                f"received value shape {value} and key shape {key}."
            )
        return query, value, key

    def check_input_shapes(self, input_shapes, input_dtypes):
        self._split_shapes(input_shapes)

    def build(self, input_shape):
        self._split_shapes(input_shape)
        if self.use_scale:
            self.scale = self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight("concat_score_weight", (), "ones")

    # ------------------------------------------------------------------ computing
    def _scores(self, query, key):
        """``(batch, Tq, Tv)`` raw scores."""
        if self.score_mode == "dot":
            scores = jnp.matmul(query, jnp.swapaxes(key, -2, -1))
            return scores * self.scale.value if self.scale is not None else scores
        pairs = jnp.expand_dims(query, -2) + jnp.expand_dims(key, -3)  # (batch, Tq, Tv, dim)
        if self.scale is not None:
            pairs = self.scale.value * pairs
        return self.concat_score_weight.value * jnp.sum(jnp.tanh(pairs), axis=-1)

    def _masks(self, mask):
        if mask is None:
            return None, None
        if not isinstance(mask, (list, tuple)) or len(mask) not in (2, 3):
            raise LayerInputError(
                f"{describe_layer(self)}: mask must be a list [query_mask, value_mask] of boolean "
                f"(batch, timesteps) arrays (None for no mask), but received {type(mask).__name__}"
                + (f" of length {len(mask)}." if isinstance(mask, (list, tuple)) else ".")
            )
        return tuple(None if m is None else jnp.asarray(m).astype(bool) for m in mask[:2])

    def call(self, inputs, mask=None, training=False, return_attention_scores=False, use_causal_mask=False,
             key=None):
        """``inputs``: ``[query (batch, Tq, dim), value (batch, Tv, dim_v)(, key (batch, Tv, dim))]``;
        ``mask``: ``[query_mask (batch, Tq), value_mask (batch, Tv)]``. Returns ``(batch, Tq, dim_v)``
        (and the weights ``(batch, Tq, Tv)`` with ``return_attention_scores``)."""
        query, value = inputs[0], inputs[1]
        keys = inputs[2] if len(inputs) == 3 else value
        value = self._autocast_one(value)
        keys = self._autocast_one(keys)
        query_mask, value_mask = self._masks(mask)
        scores = self._scores(query, keys)
        keep = None if value_mask is None else jnp.expand_dims(value_mask, -2)  # (batch, 1, Tv)
        if use_causal_mask:
            causal = causal_mask(scores.shape[-2], scores.shape[-1])
            keep = causal if keep is None else keep & causal
        if keep is not None:
            # A large negative offset rather than -inf: a row with every key masked stays finite.
            offset = 65504.0 if scores.dtype == jnp.float16 else 1.0e9
            scores = jnp.where(keep, scores, scores - offset)
        weights = jax.nn.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            weights = attention_dropout(self, weights, rate=self.dropout, seed=self.seed, key=key)
        outputs = jnp.matmul(weights, value)
        if query_mask is not None:
            outputs = jnp.where(jnp.expand_dims(query_mask, -1), outputs, jnp.zeros((), outputs.dtype))
        return (outputs, weights) if return_attention_scores else outputs

    def compute_mask(self, inputs, mask=None):
        """The output's mask: the query's mask (``mask[0]``), or ``None``."""
        if mask is None:
            return None
        self._masks(mask)
        return mask[0]

    def get_config(self):
        return super().get_config() | {
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: ``scores = sum(scale * tanh(query + key), -1)`` over every
    (query, key) pair; weight ``scale (dim,)`` (glorot uniform) if ``use_scale`` (the default).
    Inputs, masks, outputs and dropout as ``Attention``."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        if "score_mode" in kwargs:
            raise LayerConfigError(
                "AdditiveAttention always scores with sum(scale * tanh(query + key)) and takes no score_mode; "
                "use Attention(score_mode=...) for the dot and concat scores."
            )
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def check_input_shapes(self, input_shapes, input_dtypes):
        query, _, _ = self._split_shapes(input_shapes)
        if self.scale is not None and sizes_differ(query[-1], self.scale.shape[0]):
            raise LayerInputError(
                f"{describe_layer(self)} was built for queries of {self.scale.shape[0]} features (its scale "
                f"weight), but received query shape {query}; use a new layer for inputs of another width."
            )

    def build(self, input_shape):
        query, _, _ = self._split_shapes(input_shape)
        if self.use_scale:
            dim = checks.known_size(query[-1], "last dimension (features) of the query", self, input_shape)
            self.scale = self.add_weight("scale", (dim,), "glorot_uniform")

    def _scores(self, query, key):
        pairs = jnp.tanh(jnp.expand_dims(query, -2) + jnp.expand_dims(key, -3))  # (batch, Tq, Tv, dim)
        if self.scale is not None:
            pairs = self.scale.value * pairs
        return jnp.sum(pairs, axis=-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


def sizes_differ(a, b) -> bool:
    """Two sizes that are both known and different (``None`` or a symbolic size matches anything)."""
    return isinstance(a, int) and isinstance(b, int) and a != b
