"""Guide section 4: one LSTM shared by two inputs, one set of weights.

Pairs of "tweets" (sequences of 64-dimensional character vectors, generated here) are encoded
by the same LSTM; a classifier on the two encodings says whether they come from the same
"author" (here: the same underlying pattern). As in the shared vision example, one hidden Dense
layer sits before the guide's logistic regression: a logistic regression directly on the
concatenation scores each tweet separately and cannot express "the same".
"""

import numpy as np

import kfunc as keras
from kfunc.layers import LSTM, Dense, Input
from kfunc.models import Model

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
steps, features, pairs = 20, 64, 1024

authors = rng.random((8, features), dtype=np.float32)  # each author's habit: a typical vector
first = rng.integers(0, 8, pairs)
same = rng.random(pairs) < 0.5
second = np.where(same, first, (first + rng.integers(1, 8, pairs)) % 8)


def tweets(author_ids):
    noise = rng.random((len(author_ids), steps, features), dtype=np.float32)
    return 0.5 * noise + authors[author_ids][:, None, :]


data_a, data_b, labels = tweets(first), tweets(second), same.astype(np.float32)

tweet_a = Input(shape=(steps, features))
tweet_b = Input(shape=(steps, features))
# When we reuse the same layer instance multiple times, the weights are also being reused.
shared_lstm = LSTM(32)
encoded_a = shared_lstm(tweet_a)
encoded_b = shared_lstm(tweet_b)
merged_vector = keras.layers.concatenate([encoded_a, encoded_b], axis=-1)
hidden = Dense(32, activation="relu")(merged_vector)
predictions = Dense(1, activation="sigmoid")(hidden)
model = Model(inputs=[tweet_a, tweet_b], outputs=predictions)
model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])

print(f"the shared LSTM is one layer with {shared_lstm.count_params():,} weights; the model has "
      f"{model.count_params():,} in all")
history = model.fit([data_a, data_b], labels, epochs=10, verbose=0)
print("accuracy per epoch:", " ".join(f"{a:.2f}" for a in history.history["accuracy"]))
assert history.history["accuracy"][-1] > 0.9, "the shared LSTM should learn to compare the tweets"
