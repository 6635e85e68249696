"""The Keras model methods that run computations: predict (and, with training, fit/evaluate)."""

from __future__ import annotations

import functools

import jax
import numpy as np

from kfunc.data.arrays import DataError, model_input_arrays


class TrainingAPI:
    """Mixin for ``Model``; every method works through the pure ``apply``."""

    def _jitted(self, name: str, build):
        """A compiled function cached on the model until its graph changes."""
        cache = self._compiled_cache
        if name not in cache:
            cache[name] = build()
        return cache[name]

    def _build_from_data(self, x) -> None:
        """A model whose input shape is not known yet (Sequential) takes it from the data."""

    def predict(self, x, batch_size: int = 32, verbose=0):
        """Outputs for ``x`` (arrays as for ``fit``), computed batch by batch by one compiled
        function; the last, smaller batch is padded so no new shape is ever compiled.

        Returns an array ``(samples, ...)`` per output, in the model's output structure.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise DataError(f"predict: batch_size must be a positive integer, received {batch_size!r}.")
        self._build_from_data(x)
        arrays = model_input_arrays(self, x)
        names = self.input_names
        count = len(arrays[0])
        forward = self._jitted(
            "predict", lambda: jax.jit(functools.partial(self.apply, training=False))
        )
        params, state = self.get_variables()
        chunks = []
        for start in range(0, count, batch_size):
            batch = [a[start : start + batch_size] for a in arrays]
            short = batch_size - len(batch[0])
            if short:
                batch = [np.concatenate([b, np.zeros((short,) + b.shape[1:], b.dtype)]) for b in batch]
            outputs, _ = forward(params, state, dict(zip(names, batch, strict=True)))
            chunks.append(outputs)
        leaves_per_chunk = [jax.tree_util.tree_leaves(c) for c in chunks]
        treedef = jax.tree_util.tree_structure(chunks[0])
        joined = [np.concatenate([np.asarray(c[i]) for c in leaves_per_chunk])[:count] for i in range(len(leaves_per_chunk[0]))]
        return jax.tree_util.tree_unflatten(treedef, joined)

    def predict_on_batch(self, x):
        outputs, _ = self.apply(*self.get_variables(), x, training=False)
        return jax.tree_util.tree_map(np.asarray, outputs)
