"""Losses and metrics give Keras 3's numbers on the same inputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import jax.numpy as jnp  # noqa: E402

from kfunc import losses, metrics  # noqa: E402

rng = np.random.default_rng(5)
N, C = 16, 4


def probabilities():
    logits = rng.normal(size=(N, C)).astype(np.float32)
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), logits


def binary():
    logits = rng.normal(size=(N, 3)).astype(np.float32)
    return rng.integers(0, 2, (N, 3)).astype(np.float32), 1 / (1 + np.exp(-logits)), logits


REGRESSION = ["mse", "mae", "mape", "msle", "huber", "log_cosh", "poisson", "cosine_similarity"]


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_losses(name):
    y = rng.random((N, 3)).astype(np.float32) + 0.1
    p = rng.random((N, 3)).astype(np.float32) + 0.1
    ours = float(jnp.mean(losses.get(name)(y, p)))
    theirs = float(keras.losses.get(name)(y, p).mean() if name != "cosine_similarity" else keras.losses.cosine_similarity(y, p).mean())
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)


def test_crossentropies_with_and_without_logits():
    p, logits = probabilities()
    labels = rng.integers(0, C, N)
    one_hot = np.eye(C, dtype=np.float32)[labels]
    pairs = [
        (losses.categorical_crossentropy(one_hot, p), keras.losses.categorical_crossentropy(one_hot, p)),
        (losses.categorical_crossentropy(one_hot, logits, from_logits=True),
         keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True)),
        (losses.sparse_categorical_crossentropy(labels, p), keras.losses.sparse_categorical_crossentropy(labels, p)),
        (losses.sparse_categorical_crossentropy(labels[:, None], logits, from_logits=True),
         keras.losses.sparse_categorical_crossentropy(labels[:, None], logits, from_logits=True)),
        (losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, p),
         keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, p)),
    ]
    y, q, z = binary()
    pairs += [
        (losses.binary_crossentropy(y, q), keras.losses.binary_crossentropy(y, q)),
        (losses.binary_crossentropy(y, z, from_logits=True), keras.losses.binary_crossentropy(y, z, from_logits=True)),
        (losses.BinaryCrossentropy(label_smoothing=0.2)(y, q), keras.losses.BinaryCrossentropy(label_smoothing=0.2)(y, q)),
        (losses.hinge(y, z), keras.losses.hinge(y, z)),
        (losses.squared_hinge(y, z), keras.losses.squared_hinge(y, z)),
        (losses.categorical_hinge(one_hot, logits), keras.losses.categorical_hinge(one_hot, logits)),
        (losses.kl_divergence(one_hot * 0.9 + 0.025, p), keras.losses.kl_divergence(one_hot * 0.9 + 0.025, p)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-6)


def keras_metric_result(metric, y, p):
    metric.update_state(y, p)
    return float(metric.result())


def kfunc_metric_result(metric, y, p, weight=None):
    """The pure form the compiled step uses: reset, update and result over a state tuple."""
    state = metric.stateless_reset_state()
    state = metric.stateless_update_state(state, jnp.asarray(y), jnp.asarray(p), sample_weight=weight)
    return float(metric.stateless_result(state))


def test_accuracy_family():
    p, _ = probabilities()
    labels = rng.integers(0, C, N)
    one_hot = np.eye(C, dtype=np.float32)[labels]
    y, q, _ = binary()
    cases = [
        (metrics.CategoricalAccuracy(), keras.metrics.CategoricalAccuracy(), one_hot, p),
        (metrics.SparseCategoricalAccuracy(), keras.metrics.SparseCategoricalAccuracy(), labels, p),
        (metrics.BinaryAccuracy(), keras.metrics.BinaryAccuracy(), y, q),
        (metrics.TopKCategoricalAccuracy(k=2), keras.metrics.TopKCategoricalAccuracy(k=2), one_hot, p),
        (metrics.SparseTopKCategoricalAccuracy(k=2), keras.metrics.SparseTopKCategoricalAccuracy(k=2), labels, p),
        (metrics.MeanSquaredError(), keras.metrics.MeanSquaredError(), y, q),
        (metrics.MeanAbsoluteError(), keras.metrics.MeanAbsoluteError(), y, q),
    ]
    for ours, theirs, target, prediction in cases:
        assert kfunc_metric_result(ours, target, prediction) == pytest.approx(
            keras_metric_result(theirs, target, prediction), rel=1e-6
        ), type(ours).__name__


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc(curve):
    y = rng.integers(0, 2, 200).astype(np.float32)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1).astype(np.float32)
    ours = kfunc_metric_result(metrics.AUC(curve=curve), y, p)
    assert ours == pytest.approx(keras_metric_result(keras.metrics.AUC(curve=curve), y, p), rel=1e-5)
    if curve == "ROC":
        sklearn = pytest.importorskip("sklearn.metrics")
        assert ours == pytest.approx(sklearn.roc_auc_score(y, p), abs=5e-3)


def test_precision_and_recall():
    y, q, _ = binary()
    assert kfunc_metric_result(metrics.Precision(), y, q) == pytest.approx(keras_metric_result(keras.metrics.Precision(), y, q), rel=1e-6)
    assert kfunc_metric_result(metrics.Recall(), y, q) == pytest.approx(keras_metric_result(keras.metrics.Recall(), y, q), rel=1e-6)


def test_padded_samples_do_not_count():
    p, _ = probabilities()
    labels = rng.integers(0, C, N)
    weight = np.ones(N, np.float32)
    weight[N // 2 :] = 0.0
    ours = kfunc_metric_result(metrics.SparseCategoricalAccuracy(), labels, p, jnp.asarray(weight))
    assert ours == pytest.approx(float(np.mean(p[: N // 2].argmax(-1) == labels[: N // 2])))


@pytest.mark.parametrize(
    "loss, output, labels, expected",
    [
        ("binary_crossentropy", (1,), (1,), "BinaryAccuracy"),
        ("mse", (1,), (1,), "BinaryAccuracy"),
        ("categorical_crossentropy", (10,), (10,), "CategoricalAccuracy"),
        ("sparse_categorical_crossentropy", (10,), (), "SparseCategoricalAccuracy"),
        ("categorical_crossentropy", (10,), (1,), "SparseCategoricalAccuracy"),
    ],
)
def test_accuracy_is_resolved_like_keras(loss, output, labels, expected):
    metric = metrics.resolve("accuracy", loss=losses.get(loss), output_shape=output, label_shape=labels)
    assert type(metric).__name__ == expected and metric.name == "accuracy"
