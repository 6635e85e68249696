"""Loss classes as Keras 3 has them: every built-in loss class gives Keras 3's numbers for each
reduction, with and without sample weights; a Loss subclass and a Metric subclass train in fit
exactly as in Keras 3 (same starting weights, same losses, metrics and predictions); the Keras 3
loss names resolve; compile settings naming loss and metric classes survive a model file."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc import config, layers, losses, metrics, ops  # noqa: E402
from kfunc.errors import TrainingConfigError  # noqa: E402
from kfunc.saving import register  # noqa: E402

N, C = 8, 3
rng = np.random.default_rng(3)
LOGITS = rng.normal(size=(N, C)).astype(np.float32)
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype(np.float32)
LABELS = rng.integers(0, C, N)
DATA = {
    "binary": (rng.integers(0, 2, (N, C)).astype(np.float32), rng.random((N, C)).astype(np.float32)),
    "logits": (rng.integers(0, 2, (N, C)).astype(np.float32), LOGITS),
    "categorical": (np.eye(C, dtype=np.float32)[LABELS], PROBS),
    "sparse": (LABELS, PROBS),
    "regression": (rng.random((N, C)).astype(np.float32) + 0.1, rng.random((N, C)).astype(np.float32) + 0.1),
}
WEIGHT = rng.random(N).astype(np.float32)

CASES = [
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "regression"),
    ("CosineSimilarity", {"axis": -1}, "regression"),
    ("Huber", {"delta": 0.3}, "regression"),
    ("LogCosh", {}, "regression"),
    ("Hinge", {}, "binary"),
    ("SquaredHinge", {}, "binary"),
    ("CategoricalHinge", {}, "categorical"),
    ("KLDivergence", {}, "categorical"),
    ("Poisson", {}, "regression"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True}, "logits"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "categorical"),
    ("CategoricalCrossentropy", {"from_logits": True}, "categorical"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "gamma": 1.5}, "binary"),
    ("BinaryFocalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "logits"),
    ("CategoricalFocalCrossentropy", {"alpha": 0.4}, "categorical"),
    ("Dice", {}, "binary"),
    ("Dice", {"axis": -1}, "binary"),
    ("Tversky", {"alpha": 0.3, "beta": 0.7, "axis": -1}, "binary"),
]
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"]


# The default run checks a few classes; the whole table runs with -m slow.
DEFAULT = {5, 13, 21}
TABLE = [pytest.param(*case, id=f"{case[0]}-{i}", marks=() if i in DEFAULT else pytest.mark.slow)
         for i, case in enumerate(CASES)]


@pytest.mark.parametrize("name, kwargs, kind", TABLE)
def test_builtin_loss_matches_keras_for_every_reduction(name, kwargs, kind):
    y, p = DATA[kind]
    if kind == "categorical" and kwargs.get("from_logits"):
        p = LOGITS
    for reduction in REDUCTIONS:
        ours = getattr(losses, name)(reduction=reduction, **kwargs)
        theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)
        # Keras's configs leave some options out (CosineSimilarity's axis); kfunc's hold them all.
        assert ours.name == theirs.name and theirs.get_config().items() <= ours.get_config().items()
        for weight in (None, WEIGHT):
            np.testing.assert_allclose(np.asarray(ours(y, p, sample_weight=weight)),
                                       np.asarray(theirs(y, p, sample_weight=weight)), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} {reduction} weighted={weight is not None}")
    assert type(ours).from_config(ours.get_config()).get_config() == ours.get_config()


def test_losses_read_the_configured_epsilon():
    y, p = np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    before = float(losses.BinaryCrossentropy()(y, p))
    previous = config.epsilon()
    try:
        config.set_epsilon(1e-3)
        keras.config.set_epsilon(1e-3)
        after = float(losses.BinaryCrossentropy()(y, p))
        assert after == pytest.approx(float(keras.losses.BinaryCrossentropy()(y, p)), rel=1e-5)
    finally:
        config.set_epsilon(previous)
        keras.config.set_epsilon(previous)
    assert after < before


def test_keras_loss_names_resolve_as_in_keras():
    for alias in ["bce", "BCE", "mse", "MAE", "mape", "msle", "kld", "KLD", "log_cosh", "huber", "cosine_similarity",
                  "categorical_hinge", "sparse_categorical_crossentropy", "dice", "tversky",
                  "binary_focal_crossentropy", "categorical_focal_crossentropy"]:
        assert losses.get(alias).__name__ == keras.losses.get(alias).__name__, alias
    for class_name in ["MeanSquaredError", "Huber", "BinaryCrossentropy", "LogCosh"]:
        ours, theirs = losses.get(class_name), keras.losses.get(class_name)
        assert type(ours).__name__ == class_name and theirs.get_config().items() <= ours.get_config().items()


def test_loss_errors_name_the_loss_and_the_fix():
    with pytest.raises(TrainingConfigError, match=r"Loss 'mean_squared_error' \(MeanSquaredError\) got "
                                                  r"reduction='average'; expected one of"):
        losses.MeanSquaredError(reduction="average")

    class NoCall(losses.Loss):
        pass

    with pytest.raises(NotImplementedError, match=r"\(NoCall\) must define call\(y_true, y_pred\)"):
        NoCall()(np.ones((2, 1)), np.ones((2, 1)))

    class TextLoss(losses.Loss):
        def call(self, y_true, y_pred):
            return "loss"

    with pytest.raises(TrainingConfigError, match=r"\(TextLoss\).call returned str; it must return an array"):
        TextLoss(name="text")(np.ones((2, 1)), np.ones((2, 1)))
    inputs = kfunc.Input((2,))
    model = kfunc.Model(inputs, layers.Dense(1)(inputs))
    with pytest.raises(TrainingConfigError, match=r"has reduction='none', so it returns one value per sample"):
        model.compile("sgd", losses.MeanSquaredError(reduction="none"))
    with pytest.raises(TrainingConfigError, match=r"Unknown loss 'mean_square_error'"):
        model.compile("sgd", "mean_square_error")


class ScaledSquaredError(losses.Loss):
    """A Keras 3 style custom loss: ``scale`` times the mean squared error of each sample."""

    def __init__(self, scale=2.0, name="scaled_squared_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * ops.mean(ops.square(y_pred - y_true), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _positives_class(module):
    class Positives(module.metrics.Metric):
        """Counts the predictions above 0.5 (the Keras 3 guide's custom metric pattern)."""

        def __init__(self, name="positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.count.assign_add(module.ops.sum(module.ops.cast(y_pred > 0.5, "float32")))

        def result(self):
            return self.count.value

    return Positives


def _keras_loss():
    class KerasScaledSquaredError(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return 2.0 * keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)

    return KerasScaledSquaredError(name="scaled_squared_error")


def _model(module):
    inputs = module.Input((4,))
    hidden = module.layers.Dense(5, activation="relu")(inputs)
    return module.Model(inputs, module.layers.Dense(1, activation="sigmoid")(hidden))


def test_custom_loss_and_metric_train_as_in_keras():
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    ours, theirs = _model(kfunc), _model(keras)
    theirs.set_weights(ours.get_weights())
    ours.compile(kfunc.optimizers.SGD(0.2), ScaledSquaredError(), metrics=[_positives_class(kfunc)(), "bce"])
    theirs.compile(keras.optimizers.SGD(0.2), _keras_loss(), metrics=[_positives_class(keras)(), "bce"])
    ours_history = ours.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0).history
    theirs_history = theirs.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0).history
    assert set(ours_history) == set(theirs_history) == {"bce", "loss", "positives"}
    for key in theirs_history:
        np.testing.assert_allclose(ours_history[key], theirs_history[key], rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    ours_eval = ours.evaluate(x, y, verbose=0, return_dict=True)
    theirs_eval = theirs.evaluate(x, y, verbose=0, return_dict=True)
    for key in theirs_eval:
        assert ours_eval[key] == pytest.approx(theirs_eval[key], rel=1e-5), key


def test_compile_with_loss_and_metric_objects_survives_a_model_file(tmp_path):
    loss_class = register("test_loss_classes>ScaledSquaredError")(ScaledSquaredError)
    model = _model(kfunc)
    model.compile("adam", loss_class(scale=3.0), metrics=[metrics.Precision(thresholds=[0.3, 0.6]), "mae"],
                  weighted_metrics=[metrics.F1Score(threshold=0.5)])
    model.save(tmp_path / "m.kfunc")
    loaded = kfunc.models.load_model(tmp_path / "m.kfunc")
    spec = loaded._trainer.config.outputs[0]
    assert type(spec.loss) is ScaledSquaredError and spec.loss.scale == 3.0
    restored = [type(m).__name__ if not isinstance(m, str) else m for m in spec.metric_ids]
    assert restored == ["Precision", "mae"] and spec.metric_ids[0].thresholds == [0.3, 0.6]
    assert [type(m).__name__ for m in spec.weighted_metric_ids] == ["F1Score"]
