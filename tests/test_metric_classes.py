"""Metric classes as Keras 3 has them: every built-in metric gives Keras 3's numbers eagerly
(update_state / result / reset_state, with and without sample weights) and in its pure form (the
one the compiled step runs); a Metric subclass, weighted_metrics and the Keras 3 metric names
work in compile / fit / evaluate and agree with Keras 3."""

import os
import re

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import jax.numpy as jnp  # noqa: E402

import kfunc  # noqa: E402
from kfunc import layers, metrics, ops  # noqa: E402
from kfunc.errors import TrainingConfigError  # noqa: E402
from kfunc.testing import count_compilations  # noqa: E402

N, C = 12, 4
rng = np.random.default_rng(11)
LOGITS = rng.normal(size=(N, C)).astype(np.float32)
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype(np.float32)
LABELS = rng.integers(0, C, N)
DATA = {
    "binary": (rng.integers(0, 2, (N, 3)).astype(np.float32), rng.random((N, 3)).astype(np.float32)),
    "binary_column": (rng.integers(0, 2, (N, 1)).astype(np.float32), rng.random((N, 1)).astype(np.float32)),
    "categorical": (np.eye(C, dtype=np.float32)[LABELS], PROBS),
    "sparse": (LABELS.astype(np.float32), PROBS),
    "regression": (rng.random((N, 3)).astype(np.float32) + 0.1, rng.random((N, 3)).astype(np.float32) + 0.1),
    "exact": (rng.integers(0, 3, (N, 2)).astype(np.float32), rng.integers(0, 3, (N, 2)).astype(np.float32)),
    "values": (None, rng.normal(size=(N, 3)).astype(np.float32)),
}
WEIGHT = rng.random(N).astype(np.float32)

# (kfunc class name, keyword arguments, data kind); the Keras class has the same name and arguments.
CASES = [
    ("Mean", {}, "values"),
    ("Sum", {}, "values"),
    ("Accuracy", {}, "exact"),
    ("BinaryAccuracy", {"threshold": 0.3}, "binary"),
    ("CategoricalAccuracy", {}, "categorical"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("TopKCategoricalAccuracy", {"k": 2}, "categorical"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("CosineSimilarity", {}, "regression"),
    ("LogCoshError", {}, "regression"),
    ("R2Score", {}, "regression"),
    ("R2Score", {"class_aggregation": "variance_weighted_average", "num_regressors": 2}, "regression"),
    ("Hinge", {}, "binary"),
    ("SquaredHinge", {}, "binary"),
    ("CategoricalHinge", {}, "categorical"),
    ("KLDivergence", {}, "categorical"),
    ("Poisson", {}, "regression"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "binary"),
    ("CategoricalCrossentropy", {}, "categorical"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("TruePositives", {}, "binary"),
    ("FalsePositives", {"thresholds": [0.3, 0.6]}, "binary"),
    ("TrueNegatives", {}, "binary"),
    ("FalseNegatives", {}, "binary"),
    ("Precision", {}, "binary"),
    ("Precision", {"top_k": 2}, "categorical"),
    ("Recall", {"class_id": 1}, "categorical"),
    ("Recall", {"thresholds": [0.2, 0.7]}, "binary"),
    ("AUC", {}, "binary"),
    ("AUC", {"curve": "PR"}, "binary"),
    ("AUC", {"summation_method": "minoring", "num_thresholds": 50}, "binary"),
    ("F1Score", {"average": "macro", "threshold": 0.5}, "binary"),
    ("F1Score", {}, "categorical"),
    ("F1Score", {"average": "weighted"}, "categorical"),
    ("FBetaScore", {"beta": 2.0, "average": "micro", "threshold": 0.4}, "binary"),
    ("SensitivityAtSpecificity", {"specificity": 0.5, "num_thresholds": 30}, "binary"),
    ("SpecificityAtSensitivity", {"sensitivity": 0.6}, "binary"),
    ("PrecisionAtRecall", {"recall": 0.7, "num_thresholds": 1}, "binary"),
    ("RecallAtPrecision", {"precision": 0.5, "class_id": 2}, "categorical"),
    ("PearsonCorrelation", {}, "regression"),
    ("ConcordanceCorrelation", {}, "regression"),
    ("MeanIoU", {"num_classes": C, "sparse_y_pred": False}, "sparse"),
    ("IoU", {"num_classes": C, "target_class_ids": [0, 2], "sparse_y_pred": False}, "sparse"),
    ("BinaryIoU", {"threshold": 0.4}, "binary_column"),
    ("OneHotIoU", {"num_classes": C, "target_class_ids": [1, 3]}, "categorical"),
    ("OneHotMeanIoU", {"num_classes": C, "ignore_class": 0}, "categorical"),
]


def _feed(metric, kind, weighted):
    y, p = DATA[kind]
    half = N // 2
    weight = WEIGHT if weighted else None
    for rows in (slice(0, half), slice(half, N)):
        w = None if weight is None else weight[rows]
        if y is None:
            metric.update_state(p[rows], sample_weight=w)
        else:
            metric.update_state(y[rows], p[rows], sample_weight=w)
    return np.asarray(metric.result())


# The default run checks one metric of each family; the whole table runs with -m slow.
DEFAULT = {"Mean", "SparseCategoricalAccuracy", "RootMeanSquaredError", "Precision", "F1Score"}
TABLE = [
    pytest.param(*case, id=f"{case[0]}-{i}", marks=() if case[0] in DEFAULT and case[1] == CASES[
        next(j for j, c in enumerate(CASES) if c[0] == case[0])][1] else pytest.mark.slow)
    for i, case in enumerate(CASES)
]


@pytest.mark.parametrize("name, kwargs, kind", TABLE)
def test_builtin_metric_matches_keras_eagerly(name, kwargs, kind):
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == re.sub(r"_\d+$", "", theirs.name)  # Keras numbers repeated default names
    for weighted in (False, True):
        ours.reset_state()
        theirs.reset_state()
        np.testing.assert_allclose(_feed(ours, kind, weighted), _feed(theirs, kind, weighted), rtol=1e-5, atol=1e-6)
    ours.reset_state()
    theirs.reset_state()
    np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    # The config rebuilds the same metric (same name, same numbers).
    again = type(ours).from_config(ours.get_config())
    assert again.name == ours.name
    np.testing.assert_allclose(_feed(again, kind, True), _feed(ours, kind, True), rtol=1e-6)


def test_pure_form_gives_the_eager_numbers_and_leaves_the_metric_alone():
    metric = metrics.Precision(thresholds=[0.3, 0.6])
    y, p = DATA["binary"]
    state = metric.stateless_reset_state()
    state = metric.stateless_update_state(state, y, p, sample_weight=WEIGHT)
    pure = np.asarray(metric.stateless_result(state))
    assert float(metric.true_positives.value.sum()) == 0.0  # nothing was written to the variables
    np.testing.assert_allclose(pure, _feed(metric, "binary", True), rtol=1e-6)


class Positives(metrics.Metric):
    """Counts predictions above 0.5, weighted (the Keras 3 guide's custom metric pattern)."""

    def __init__(self, name="positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = ops.cast(y_pred > 0.5, "float32")
        if sample_weight is not None:
            values = values * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.count.assign_add(ops.sum(values))

    def result(self):
        return self.count.value


def test_metric_subclass_eager_call_and_subclassing_a_builtin():
    metric = Positives()
    assert float(metric([[1.0], [0.0]], np.array([[0.9], [0.7]], np.float32))) == 2.0
    metric.reset_state()
    assert float(metric.result()) == 0.0

    class Halved(metrics.MeanSquaredError):
        def update_state(self, y_true, y_pred, sample_weight=None):
            super().update_state(y_true, np.asarray(y_pred) / 2.0, sample_weight=sample_weight)

    y, p = DATA["regression"]
    halved, reference = Halved(), metrics.MeanSquaredError()
    halved.update_state(y, p)
    reference.update_state(y, p / 2.0)
    assert float(halved.result()) == pytest.approx(float(reference.result()), rel=1e-6)


def test_metric_errors_name_the_metric_and_the_fix():
    class NoSuper(metrics.Metric):
        def __init__(self):
            self.total = self.add_variable((), "zeros")

    with pytest.raises(TrainingConfigError, match=r"NoSuper cannot add a variable before Metric.__init__ ran"):
        NoSuper()

    class ReturnsState(metrics.Metric):
        def __init__(self):
            super().__init__(name="returns_state")
            self.total = self.add_variable((), "zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            return self.total + jnp.sum(y_pred)

        def result(self):
            return self.total.value

    metric = ReturnsState()
    with pytest.raises(TrainingConfigError, match=r"'returns_state' \(ReturnsState\).update_state returned \w+ and "
                                                  r"assigned none of its variables"):
        metric.stateless_update_state(metric.stateless_reset_state(), None, jnp.ones(3))

    class TextResult(ReturnsState):
        def result(self):
            return "done"

    metric = TextResult()
    with pytest.raises(TrainingConfigError, match=r"result\(\) returned str; it must return a number or an array"):
        metric.stateless_result(metric.stateless_reset_state())
    with pytest.raises(TrainingConfigError, match=r"received 2 values; it needs one per entry of .variables \(1\)"):
        metric.stateless_result((jnp.zeros(()), jnp.zeros(())))
    with pytest.raises(TrainingConfigError, match=r"FBetaScore 'fbeta_score' got beta=2; it must be a Python float"):
        metrics.FBetaScore(beta=2)
    with pytest.raises(TrainingConfigError, match=r"Unknown metric 'accuracy_score'"):
        metrics.get("accuracy_score")


def test_keras_metric_names_resolve_as_in_keras():
    for alias, cls in [("mse", "MeanSquaredError"), ("MAE", "MeanAbsoluteError"), ("mape", "MeanAbsolutePercentageError"),
                       ("msle", "MeanSquaredLogarithmicError"), ("bce", "BinaryCrossentropy"), ("f1_score", "F1Score"),
                       ("root_mean_squared_error", "RootMeanSquaredError"), ("AUC", "AUC"), ("auc", "AUC"),
                       ("log_cosh_error", "LogCoshError"), ("r2_score", "R2Score")]:
        assert type(metrics.get(alias)).__name__ == cls == type(keras.metrics.get(alias)).__name__, alias
    # compile's rule: a metric named by a string logs under that string.
    resolved = metrics.resolve("mse", loss=None, output_shape=(3,), label_shape=(3,))
    assert resolved.name == "mse" and isinstance(resolved, metrics.MeanSquaredError)


def _model(module, seed):
    inputs = module.Input((5,))
    hidden = module.layers.Dense(6, activation="tanh")(inputs)
    outputs = module.layers.Dense(1, activation="sigmoid")(hidden)
    model = module.Model(inputs, outputs)
    return model


@pytest.fixture(scope="module")
def data():
    x = rng.normal(size=(48, 5)).astype(np.float32)
    y = (x[:, :1] + 0.3 * x[:, 1:2] > 0).astype(np.float32)
    weight = rng.random(48).astype(np.float32) + 0.2
    return x, y, weight


def _compile_args(module):
    return dict(
        optimizer=module.optimizers.SGD(0.1),
        loss="bce",
        metrics=["accuracy", module.metrics.AUC(num_thresholds=20, name="auc"), "mse"],
        weighted_metrics=["accuracy", "mse"],
    )


def test_fit_with_weighted_metrics_matches_keras_and_never_recompiles(data):
    x, y, weight = data
    ours, theirs = _model(kfunc, 0), _model(keras, 0)
    theirs.set_weights(ours.get_weights())
    ours.compile(**_compile_args(kfunc))
    theirs.compile(**_compile_args(keras))
    ours_history = ours.fit(x, y, sample_weight=weight, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    theirs_history = theirs.fit(x, y, sample_weight=weight, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    assert set(ours_history) == set(theirs_history)  # Keras's History sorts the keys; kfunc's puts loss first
    for key in theirs_history:
        np.testing.assert_allclose(ours_history[key], theirs_history[key], rtol=1e-5, atol=1e-6, err_msg=key)
    ours_eval = ours.evaluate(x, y, sample_weight=weight, batch_size=16, verbose=0, return_dict=True)
    theirs_eval = theirs.evaluate(x, y, sample_weight=weight, batch_size=16, verbose=0, return_dict=True)
    for key in theirs_eval:
        assert ours_eval[key] == pytest.approx(theirs_eval[key], rel=1e-5, abs=1e-6), key
    with count_compilations() as second:
        ours.fit(x, y, sample_weight=weight, batch_size=16, epochs=1, shuffle=False, verbose=0)
        ours.evaluate(x, y, sample_weight=weight, batch_size=16, verbose=0)
    assert second.count == 0, second.names


def test_compile_refuses_unknown_weighted_metrics():
    model = _model(kfunc, 0)
    with pytest.raises(TrainingConfigError, match=r"Unknown metric 'weighted_accuracy_score'"):
        model.compile("sgd", "mse", weighted_metrics=["weighted_accuracy_score"])
    with pytest.raises(TrainingConfigError, match=r"compile: weighted_metrics must be a list"):
        model.compile("sgd", "mse", weighted_metrics="mse")


def _two_output_model(module):
    inputs = module.Input((3,), name="x")
    first = module.layers.Dense(1, activation="sigmoid", name="a")(inputs)
    second = module.layers.Dense(2, name="b")(inputs)
    return module.Model(inputs, {"a": first, "b": second})


@pytest.mark.slow
def test_metric_dicts_per_output_name_their_logs_as_keras():
    x = rng.random((20, 3)).astype(np.float32)
    labels = {"a": (x[:, :1] > 0.5).astype(np.float32), "b": rng.random((20, 2)).astype(np.float32)}
    weight = np.linspace(0.1, 1.0, 20).astype(np.float32)
    histories, starting_weights = [], None
    for module in (kfunc, keras):
        model = _two_output_model(module)
        if starting_weights is None:
            starting_weights = model.get_weights()
        model.set_weights(starting_weights)
        model.compile("sgd", {"a": "bce", "b": "mse"}, metrics={"a": ["accuracy", "mse"], "b": ["mae"]},
                      weighted_metrics={"a": ["mse"], "b": ["mae", module.metrics.MeanSquaredError(name="msq")]})
        histories.append(model.fit(x, labels, sample_weight={"a": weight, "b": weight}, epochs=1, batch_size=10,
                                   shuffle=False, verbose=0).history)
    ours, theirs = histories
    assert set(ours) == set(theirs) == {"loss", "a_loss", "b_loss", "a_accuracy", "a_mse", "b_mae", "a_weighted_mse",
                                        "b_weighted_mae", "b_msq"}
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, err_msg=key)


def test_a_per_class_metric_logs_an_array_and_shows_its_mean(capsys):
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, layers.Dense(2, activation="sigmoid")(inputs))
    model.compile("sgd", "bce", metrics=[metrics.F1Score(threshold=0.5)])
    x = rng.random((8, 3)).astype(np.float32)
    y = np.array([[1, 0], [0, 1]] * 4, np.float32)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=2).history
    scores = history["f1_score"][0]
    assert scores.shape == (2,)
    assert f"f1_score: {float(np.mean(scores)):.4f}" in capsys.readouterr().out


def test_result_may_return_the_variable_itself():
    """Keras guides write ``return self.total``; in fit the step reads the traced value."""

    class Total(kfunc.metrics.Metric):
        def __init__(self, name="total", **kwargs):
            super().__init__(name=name, **kwargs)
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.total.assign_add(kfunc.ops.sum(y_pred))

        def result(self):
            return self.total

    inputs = kfunc.Input((2,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(1, kernel_initializer="ones", use_bias=False)(inputs))
    model.compile("sgd", "mse", metrics=[Total()])
    x = np.ones((4, 2), "float32")
    logs = model.evaluate(x, np.zeros((4, 1), "float32"), batch_size=2, verbose=0, return_dict=True)
    assert logs["total"] == pytest.approx(8.0)
