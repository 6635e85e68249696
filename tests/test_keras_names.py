"""The README's list of Keras 3 public names that kfunc lacks is exact: every name it lists is
missing from kfunc, every other public Keras 3 name exists in kfunc, and the counts are right.

``python tests/test_keras_names.py`` prints the lines as they should read (without the reasons)."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
NAMESPACES = ["", "layers", "ops", "activations", "losses", "metrics", "optimizers", "optimizers.schedules",
              "initializers", "regularizers", "constraints", "callbacks", "models", "saving", "utils", "random",
              "config", "backend", "mixed_precision"]
README = Path(__file__).resolve().parents[1] / "README.md"
LINE = re.compile(r"^- \*\*`keras(?P<namespace>(\.[a-z_.]+)?)`\*\* \((?P<have>\d+) of (?P<total>\d+)\): (?P<names>.*?) \*Why:\*")


def _public(module) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_")}


def missing_names(keras) -> dict[str, tuple[list[str], int]]:
    """``{namespace: (Keras 3 names kfunc lacks, how many names Keras 3 has)}``."""
    import kfunc

    found = {}
    for namespace in NAMESPACES:
        theirs = keras if not namespace else importlib.import_module(f"keras.{namespace}")
        try:
            ours = kfunc if not namespace else importlib.import_module(f"kfunc.{namespace}")
        except ImportError:
            ours = None
        names = _public(theirs) - {"src", "version"}
        found[namespace] = (sorted(n for n in names if ours is None or not hasattr(ours, n)), len(names))
    return found


def readme_lines() -> dict[str, tuple[list[str], int, int]]:
    listed = {}
    for line in README.read_text().splitlines():
        match = LINE.match(line)
        if match:
            names = re.findall(r"`([^`]+)`", match["names"])
            listed[match["namespace"].lstrip(".")] = (names, int(match["have"]), int(match["total"]))
    return listed


def test_readme_lists_exactly_the_missing_names():
    keras = pytest.importorskip("keras")
    listed = readme_lines()
    for namespace, (missing, total) in missing_names(keras).items():
        label = f"keras.{namespace}" if namespace else "keras"
        assert namespace in listed, f"README has no line for {label}: {_line(namespace, missing, total)}"
        names, have, count = listed[namespace]
        assert sorted(names) == missing, (label, sorted(set(names) ^ set(missing)))
        assert (have, count) == (total - len(missing), total), label


def _line(namespace: str, missing: list[str], total: int) -> str:
    label = f"keras.{namespace}" if namespace else "keras"
    shown = ", ".join(f"`{n}`" for n in missing) if missing else "none missing."
    return f"- **`{label}`** ({total - len(missing)} of {total}): {shown} *Why:*"


if __name__ == "__main__":
    import keras

    for namespace, (missing, total) in missing_names(keras).items():
        print(_line(namespace, missing, total))


def test_function_forms_of_saving_and_serialization(tmp_path):
    """``models.save_model``, ``saving.save_weights``/``load_weights`` and the ``serialize`` /
    ``deserialize`` of losses and metrics, as Keras 3 names them."""
    import numpy as np

    import kfunc

    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(2)(inputs))
    kfunc.models.save_model(model, tmp_path / "m.kfunc", True)
    kfunc.saving.save_weights(model, tmp_path / "w.weights.npz")
    again = kfunc.models.load_model(tmp_path / "m.kfunc")
    kfunc.saving.load_weights(again, tmp_path / "w.weights.npz")
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    huber = kfunc.losses.deserialize(kfunc.losses.serialize(kfunc.losses.Huber(delta=2.0)))
    assert isinstance(huber, kfunc.losses.Huber) and huber.get_config()["delta"] == 2.0
    auc = kfunc.metrics.deserialize(kfunc.metrics.serialize(kfunc.metrics.AUC(num_thresholds=7)))
    assert auc.get_config()["num_thresholds"] == 7
    assert kfunc.losses.deserialize("mse") is kfunc.losses.get("mse")
    assert kfunc.metrics.huber is kfunc.losses.huber
    keras = pytest.importorskip("keras")
    assert keras.metrics.deserialize(kfunc.metrics.serialize(kfunc.metrics.F1Score(threshold=0.3))).threshold == 0.3
