"""Layers that turn values into categories: CategoryEncoding (ids -> one-hot, multi-hot or count
vectors) and Discretization (numbers -> bucket ids, with ``adapt`` learning quantile boundaries).

Neither has weights: Discretization's learned boundaries live in its config (``bin_boundaries``),
as in Keras 3, so a saved model keeps them.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer

OUTPUT_MODES = ("multi_hot", "one_hot", "count")


def check_encoding_rank(layer, shape, output_mode: str) -> None:
    """multi_hot and count fold the ids of one example ``(batch, ids)`` into one vector."""
    if output_mode in ("multi_hot", "count") and len(shape) != 2:
        raise LayerInputError(
            f"{describe_layer(layer)}: output_mode='{output_mode}' takes ids of shape (batch, ids_per_example), "
            f"but received shape {tuple(shape)}; reshape the ids to (batch, n), e.g. (batch, 1) for one id each."
        )


def encode_categories(ids, output_mode: str, depth: int, dtype, count_weights=None):
    """Integer ``ids`` -> encoded vectors of length ``depth`` (ids outside ``[0, depth)`` count nowhere).

    ``one_hot``: ``(batch, ..., depth)`` (a trailing axis of size 1 is replaced);
    ``multi_hot`` / ``count``: ids ``(batch, n)`` -> ``(batch, depth)``, 1 where an id occurs / how
    often (weighted by ``count_weights (batch, n)`` when given).
    """
    ids = ids.astype(jnp.int32)
    if output_mode == "one_hot":
        if ids.ndim > 1 and ids.shape[-1] == 1:
            ids = ids[..., 0]
        return jax.nn.one_hot(ids, depth, dtype=dtype)
    hot = jax.nn.one_hot(ids, depth, dtype=dtype)  # (batch, n, depth)
    if output_mode == "multi_hot":
        return jnp.max(hot, axis=1)
    if count_weights is not None:
        hot = hot * count_weights.astype(dtype)[..., None]
    return jnp.sum(hot, axis=1)


class CategoryEncoding(Layer):
    """Integer ids in ``[0, num_tokens)`` -> vectors of length ``num_tokens`` (see
    ``encode_categories`` for the shapes of each ``output_mode``). Float ids are cast to int.

    ``call(inputs, count_weights=None)``: with ``output_mode='count'``, each id adds its weight
    instead of 1.
    """

    _autocast = False  # ids stay ids; floats are cast to int32 in call

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if num_tokens is None:
            raise LayerConfigError(
                "CategoryEncoding: num_tokens (the number of distinct ids) must be given, received None; "
                "ids must lie in [0, num_tokens)."
            )
        self.num_tokens = checks.positive_int(num_tokens, "num_tokens", "CategoryEncoding")
        mode = "multi_hot" if output_mode == "binary" else output_mode  # Keras's old alias
        self.output_mode = checks.one_of(mode, OUTPUT_MODES, "output_mode", "CategoryEncoding")
        if sparse:
            raise LayerConfigError(
                "CategoryEncoding: sparse=True is not supported (kfunc computes dense arrays); pass sparse=False."
            )
        self.sparse = False

    def check_input_shapes(self, input_shapes, input_dtypes):
        check_encoding_rank(self, input_shapes, self.output_mode)

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise LayerConfigError(
                f"{describe_layer(self)}: count_weights only applies to output_mode='count', but the layer's "
                f"output_mode is '{self.output_mode}'; drop count_weights or use output_mode='count'."
            )
        return encode_categories(inputs, self.output_mode, self.num_tokens, self.compute_dtype, count_weights)

    def get_config(self):
        return super().get_config() | {"num_tokens": self.num_tokens, "output_mode": self.output_mode,
                                       "sparse": self.sparse}


# ---------------------------------------------------------------------- quantile summaries
# Discretization.adapt keeps an approximate summary of the data's distribution: a (2, k) array of
# sorted values and the weight (number of data points) each stands for. The steps below follow
# Keras 3's documented algorithm, so that adapt finds the same boundaries as Keras on the same data.


def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    """Every ``step``-th sorted value, each standing for ``step`` points (about 1/epsilon values)."""
    values = np.sort(values.reshape(-1))
    step = max(values.size / (1.0 / epsilon), 1)  # written as Keras divides, so rounding agrees
    kept = values[int(step - 1)::int(step)]
    return np.stack([kept, np.full_like(kept, step)])


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """At most about 1/epsilon values: the quantiles at epsilon, 2 epsilon, ... of the summary."""
    if summary.shape[1] * epsilon < 1:
        return summary
    quantiles = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    fractions = cumulative / cumulative[-1]
    values = np.interp(quantiles, fractions, summary[0])
    cumulative = np.interp(quantiles, fractions, cumulative)
    weights = np.diff(cumulative, prepend=0.0)
    return np.stack([values, weights]).astype(np.float32)


def _merge(new: np.ndarray, old: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate([new, old], axis=1)
    return _compress(merged[:, np.argsort(merged[0])], epsilon)


class Discretization(Layer):
    """Numbers -> the index of their bucket: ``i`` where ``bin_boundaries[i-1] <= x < bin_boundaries[i]``
    (0 below the first boundary, ``len(bin_boundaries)`` from the last on).

    Give ``bin_boundaries``, or ``num_bins`` and call ``adapt(data)`` to place ``num_bins - 1``
    boundaries at the data's quantiles (approximately, within ``epsilon``). ``output_mode``:
    ``'int'`` (int32 ids, same shape as the input), or ``'one_hot'`` / ``'multi_hot'`` / ``'count'``
    encoded as in ``CategoryEncoding`` with ``len(bin_boundaries) + 1`` categories.
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.output_mode = checks.one_of(output_mode, ("int",) + OUTPUT_MODES, "output_mode", "Discretization")
        if sparse:
            raise LayerConfigError(
                "Discretization: sparse=True is not supported (kfunc computes dense arrays); pass sparse=False."
            )
        self.sparse = False
        if (bin_boundaries is None) == (num_bins is None):
            raise LayerConfigError(
                "Discretization: give exactly one of bin_boundaries (fixed) or num_bins (learned by adapt), "
                f"received bin_boundaries={bin_boundaries!r} and num_bins={num_bins!r}."
            )
        if num_bins is not None:
            num_bins = checks.positive_int(num_bins, "num_bins", "Discretization")
        if bin_boundaries is not None:
            bin_boundaries = [float(b) for b in bin_boundaries]
            if any(b > c for b, c in itertools.pairwise(bin_boundaries)):
                raise LayerConfigError(
                    f"Discretization: bin_boundaries must be sorted in increasing order, received {bin_boundaries}."
                )
        self.bin_boundaries = bin_boundaries
        self.num_bins = num_bins
        self.epsilon = float(epsilon)
        self._summary = np.zeros((2, 0), np.float32)

    @property
    def depth(self) -> int:
        """The number of buckets."""
        return len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins

    def adapt(self, data, steps=None) -> None:
        """Place the boundaries at the quantiles of ``data``: an array, or an iterable of batches
        (the first ``steps`` of them when given)."""
        if self.num_bins is None:
            raise LayerConfigError(
                f"{describe_layer(self)} was created with bin_boundaries, so adapt() has nothing to learn; "
                "create Discretization(num_bins=...) to learn the boundaries from data."
            )
        batches = [data] if hasattr(data, "shape") else data
        summary = np.zeros((2, 0), np.float32)
        for index, batch in enumerate(batches):
            if steps is not None and index >= steps:
                break
            values = np.asarray(batch[0] if isinstance(batch, tuple) else batch).astype(np.float32)
            summary = _merge(_summarize(values, self.epsilon), summary, self.epsilon)
        if summary.shape[1] == 0:
            raise LayerInputError(f"{describe_layer(self)}: adapt() received no values; pass a non-empty array.")
        self._summary = summary
        self.bin_boundaries = _compress(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def check_input_shapes(self, input_shapes, input_dtypes):
        check_encoding_rank(self, input_shapes, self.output_mode)

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise LayerConfigError(
                f"{describe_layer(self)} has no bin boundaries yet: call adapt(data) first, or create it with "
                "bin_boundaries=[...]."
            )
        boundaries = jnp.asarray(self.bin_boundaries, jnp.float32).reshape(-1)
        ids = jnp.digitize(inputs.astype(jnp.float32), boundaries).astype(jnp.int32)
        if self.output_mode == "int":
            return ids
        return encode_categories(ids, self.output_mode, self.depth, self.compute_dtype)

    def get_config(self):
        return super().get_config() | {
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }

    @classmethod
    def from_config(cls, config: dict):
        """An adapted layer's config holds both ``num_bins`` and the learned ``bin_boundaries``."""
        config = dict(config)
        learned = config.pop("bin_boundaries") if config.get("num_bins") is not None else None
        layer = cls(**config)
        if learned is not None:
            layer.bin_boundaries = list(learned)
        return layer
