"""Quickstart: the guide's dense network, trained on real handwritten digits.

scikit-learn ships the 8x8 digits data set (1,797 images), so nothing is downloaded. The model
is the functional-API guide's first example: Input -> Dense(64, relu) -> Dense(64, relu) ->
Dense(10, softmax), compiled with rmsprop and categorical cross-entropy.

    pip install "kfunc[examples]" && python examples/quickstart.py
"""

import sys
import time

import numpy as np

import kfunc
from kfunc.layers import Dense, Input
from kfunc.models import Model

try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError:
    sys.exit("The quickstart reads scikit-learn's digits data: pip install 'kfunc[examples]' (or scikit-learn).")

kfunc.utils.set_random_seed(0)

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)  # (1797, 64), pixel values scaled to [0, 1]
labels = np.eye(10, dtype=np.float32)[digits.target]  # one-hot, (1797, 10)
x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.25, random_state=0, stratify=digits.target)

# This returns a tensor.
inputs = Input(shape=(64,))
# A layer instance is callable on a tensor, and returns a tensor.
x = Dense(64, activation="relu")(inputs)
x = Dense(64, activation="relu")(x)
predictions = Dense(10, activation="softmax")(x)
# This creates a model that includes the Input layer and three Dense layers.
model = Model(inputs=inputs, outputs=predictions)
model.summary()

model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
started = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=32, epochs=40, validation_split=0.1)
print(f"Trained in {time.perf_counter() - started:.1f} s")

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test accuracy on {len(x_test)} held-out digits: {accuracy:.4f} (loss {loss:.4f})")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, key in zip(axes, ("loss", "accuracy"), strict=True):
        axis.plot(history.history[key], label="train")
        axis.plot(history.history[f"val_{key}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    figure.tight_layout()
    figure.savefig("quickstart_curves.png", dpi=100)
    print("Learning curves saved to quickstart_curves.png")
except ImportError:
    print("Install matplotlib to save the learning curves as a picture.")

if accuracy < 0.95:
    sys.exit(f"Expected a test accuracy of at least 0.95, got {accuracy:.4f}.")
