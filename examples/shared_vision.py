"""Guide section 8: a shared vision model tells whether two digits are the same.

Pairs are built from scikit-learn's 8x8 digits (no download): half the pairs show the same
digit, half different ones. One vision model (Conv2D, Conv2D, MaxPooling2D, Flatten) encodes
both images with the same weights, and a classifier on the two encodings decides. Test pairs
are made from digits the model never saw.

Two changes to the guide's code make it learn: ReLU activations in the convolutions, and one
hidden Dense layer before the logistic regression (a logistic regression directly on the
concatenated encodings adds a score for each image separately, which cannot express "the same").
"""

import sys

import numpy as np

import kfunc as keras
from kfunc.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from kfunc.models import Model

try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError:
    sys.exit("This example reads scikit-learn's digits: pip install 'kfunc[examples]'.")

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
digits = load_digits()
images = (digits.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1)
train_images, test_images, train_labels, test_labels = train_test_split(
    images, digits.target, test_size=0.3, random_state=0, stratify=digits.target
)


def pairs(images, labels, count):
    """``count`` pairs, half of the same digit; returns ([a, b], same)."""
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    first = rng.integers(0, len(labels), count)
    same = np.arange(count) % 2 == 0
    second = np.empty(count, np.int64)
    for i, (index, is_same) in enumerate(zip(first, same, strict=True)):
        digit = labels[index] if is_same else (labels[index] + rng.integers(1, 10)) % 10
        second[i] = rng.choice(by_digit[digit])
    return [images[first], images[second]], same.astype(np.float32)


# First, define the vision module.
digit_input = Input(shape=(8, 8, 1))
x = Conv2D(64, (3, 3), activation="relu")(digit_input)
x = Conv2D(64, (3, 3), activation="relu")(x)
x = MaxPooling2D((2, 2))(x)
out = Flatten()(x)
vision_model = Model(digit_input, out)

# Then define the tell-digits-apart model.
digit_a = Input(shape=(8, 8, 1))
digit_b = Input(shape=(8, 8, 1))
# The vision model will be shared, weights and all.
out_a = vision_model(digit_a)
out_b = vision_model(digit_b)
concatenated = keras.layers.concatenate([out_a, out_b])
hidden = Dense(64, activation="relu")(concatenated)
out = Dense(1, activation="sigmoid")(hidden)
classification_model = Model([digit_a, digit_b], out)

classification_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
x_train, y_train = pairs(train_images, train_labels, 8000)
x_test, y_test = pairs(test_images, test_labels, 2000)
classification_model.fit(x_train, y_train, batch_size=64, epochs=10, verbose=2)
loss, accuracy = classification_model.evaluate(x_test, y_test, verbose=0)
print(f"same-or-different accuracy on pairs of unseen digits: {accuracy:.3f}")
print(f"the vision model's {vision_model.count_params():,} weights are stored once in "
      f"{classification_model.count_params():,}")
if accuracy < 0.9:
    sys.exit(f"expected at least 0.9, got {accuracy:.3f}")
