"""Guide section 2: every model is callable like a layer, weights and all.

A trained digit classifier is called on a new input (same weights), then wrapped in
TimeDistributed to classify every frame of a sequence in one line.
"""

import numpy as np

import kfunc
from kfunc.layers import Dense, Input, TimeDistributed
from kfunc.models import Model

kfunc.utils.set_random_seed(0)
rng = np.random.default_rng(0)

inputs = Input(shape=(784,))
x = Dense(64, activation="relu")(inputs)
x = Dense(64, activation="relu")(x)
predictions = Dense(10, activation="softmax")(x)
model = Model(inputs=inputs, outputs=predictions)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
images = rng.random((512, 784), dtype=np.float32)
labels = np.eye(10, dtype=np.float32)[(images[:, :10].argmax(axis=1))]  # a learnable rule
model.fit(images, labels, epochs=5, verbose=0)

# This works, and returns the 10-way softmax we defined above.
x = Input(shape=(784,))
y = model(x)
reused = Model(x, y)
same = np.array_equal(reused.predict(images[:8]), model.predict(images[:8]))
print(f"model(x) on a new Input: output {y.shape}, same predictions as the trained model: {same}")

# Input tensor for sequences of 20 timesteps, each containing a 784-dimensional vector.
input_sequences = Input(shape=(20, 784))
# This applies our previous model to every timestep in the input sequences.
processed_sequences = TimeDistributed(model)(input_sequences)
print(f"TimeDistributed(model): {input_sequences.shape} -> {processed_sequences.shape}")

video = Model(input_sequences, processed_sequences)
frames = rng.random((3, 20, 784), dtype=np.float32)
per_frame = model.predict(frames.reshape(60, 784)).reshape(3, 20, 10)
print(f"Per-frame classification equals the classifier on each frame: {np.allclose(video.predict(frames), per_frame, atol=1e-6)}")
print(f"Weights shared by all three models: {model.count_params():,} parameters, counted once in each")
