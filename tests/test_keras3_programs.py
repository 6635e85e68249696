"""Programs in the style of the current Keras 3 guides, each written once against a module called
``keras`` and run twice: with Keras 3 (JAX backend) and with kfunc (``import kfunc as keras``).
The kfunc model's starting weights are copied into the Keras one; both train on the same data
in the same order; losses, metrics and predictions must agree (float32, 1e-4 relative after a
few optimizer steps)."""

from __future__ import annotations

import numpy as np
import pytest

import kfunc

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = (X[:, :1] - 0.5 * X[:, 1:2] > 0).astype("float32")
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def _compare(build, *, x=X, y=Y, epochs=2, batch_size=16):
    """Build with each library, copy kfunc's starting weights into Keras, fit both without
    shuffling, then compare the histories and predictions."""
    results = {}
    ours = build(kfunc)
    theirs = build(keras)
    for model in (ours, theirs):
        if not model.built or not model.weights:
            model(x[:1])  # builds a deferred Sequential or a subclassed model (Keras's build() does not)
    theirs.set_weights(ours.get_weights())
    for name, model in (("kfunc", ours), ("keras", theirs)):
        history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
        results[name] = (history.history, np.asarray(model.predict(x, batch_size=batch_size, verbose=0)))
    (our_history, our_predictions), (their_history, their_predictions) = results["kfunc"], results["keras"]
    assert sorted(our_history) == sorted(their_history)
    for key in their_history:
        np.testing.assert_allclose(our_history[key], their_history[key], **TOLERANCE, err_msg=key)
    np.testing.assert_allclose(our_predictions, their_predictions, **TOLERANCE)
    return our_history


def test_custom_linear_layer_with_add_weight_and_ops():
    def build(k):
        class Linear(k.layers.Layer):
            def __init__(self, units=32, **kwargs):
                super().__init__(**kwargs)
                self.units = units

            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal",
                                         trainable=True)
                self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

            def call(self, inputs):
                return k.ops.matmul(inputs, self.w) + self.b

        inputs = k.Input(shape=(8,))
        x = k.ops.relu(Linear(16)(inputs))
        model = k.Model(inputs, k.layers.Dense(1, activation="sigmoid")(x))
        model.compile(optimizer=k.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy",
                      metrics=["accuracy"])
        return model

    _compare(build)


def test_functional_model_mixing_operators_slicing_and_ops():
    def build(k):
        inputs = k.Input(shape=(8,))
        h = k.layers.Dense(16)(inputs)
        mixed = k.ops.concatenate([k.ops.relu(h), k.ops.mean(h, axis=-1, keepdims=True)], axis=-1)
        z = mixed[:, :4] * 2.0 + 1.0 - h[:, 4:8] / 3.0
        z = -k.ops.abs(z) + inputs[:, ::2] ** 2
        model = k.Model(inputs, k.layers.Dense(1)(z))
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        return model

    _compare(build)


def test_metric_subclass_counting_positives():
    def build(k):
        class BinaryTruePositives(k.metrics.Metric):
            def __init__(self, name="binary_true_positives", **kwargs):
                super().__init__(name=name, **kwargs)
                self.true_positives = self.add_variable(shape=(), initializer="zeros", name="true_positives")

            def update_state(self, y_true, y_pred, sample_weight=None):
                y_true = k.ops.cast(y_true, "bool")
                y_pred = k.ops.cast(y_pred > 0.5, "bool")
                values = k.ops.cast(k.ops.logical_and(y_true, y_pred), self.dtype)
                if sample_weight is not None:
                    values = values * k.ops.cast(sample_weight, self.dtype)
                self.true_positives.assign_add(k.ops.sum(values))

            def result(self):
                # Keras 3.15 on JAX fails in fit when result() returns the Variable itself (kfunc
                # accepts both); .value runs on both.
                return self.true_positives.value

            def reset_state(self):
                self.true_positives.assign(0.0)

        inputs = k.Input(shape=(8,))
        model = k.Model(inputs, k.layers.Dense(1, activation="sigmoid")(inputs))
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[BinaryTruePositives()])
        return model

    history = _compare(build)
    assert history["binary_true_positives"][-1] > 0


def test_loss_subclass():
    def build(k):
        class CustomMSE(k.losses.Loss):
            def __init__(self, regularization_factor=0.1, name="custom_mse"):
                super().__init__(name=name)
                self.regularization_factor = regularization_factor

            def call(self, y_true, y_pred):
                mse = k.ops.mean(k.ops.square(y_true - y_pred), axis=-1)
                reg = k.ops.mean(k.ops.square(0.5 - y_pred), axis=-1)
                return mse + reg * self.regularization_factor

        inputs = k.Input(shape=(8,))
        model = k.Model(inputs, k.layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss=CustomMSE())
        return model

    _compare(build)


def test_model_trained_on_add_loss_only():
    def build(k):
        class ActivityRegularization(k.layers.Layer):
            def __init__(self, rate=1e-2, **kwargs):
                super().__init__(**kwargs)
                self.rate = rate

            def call(self, inputs):
                self.add_loss(self.rate * k.ops.sum(k.ops.square(inputs)))
                return inputs

        inputs = k.Input(shape=(8,))
        x = k.layers.Dense(4)(inputs)
        model = k.Model(inputs, ActivityRegularization()(x))
        model.compile(optimizer="sgd")
        return model

    history = _compare(build, y=None)
    assert history["loss"][-1] < history["loss"][0]


def test_subclassed_mlp():
    def build(k):
        class MLP(k.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.hidden = k.layers.Dense(16, activation="relu")
                self.dropout = k.layers.Dropout(0.0)
                self.head = k.layers.Dense(1, activation="sigmoid")

            def call(self, inputs, training=False):
                return self.head(self.dropout(self.hidden(inputs), training=training))

        model = MLP()
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return model

    _compare(build)


def test_sequential_built_when_the_data_arrives():
    def build(k):
        model = k.Sequential([k.layers.Dense(8, activation="relu"), k.layers.Dense(1)])
        model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
        return model

    _compare(build)
