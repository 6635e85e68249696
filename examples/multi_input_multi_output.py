"""Guide section 3: a two-input, two-output model trained with weighted losses.

A headline (a sequence of word indices) and extra features predict one label; an auxiliary
output on the LSTM's encoding regularizes the embedding and LSTM. The total loss is
main_output_loss + 0.2 * aux_output_loss, whether losses and weights are given as lists or dicts.
"""

import numpy as np

import kfunc as keras
from kfunc.layers import LSTM, Dense, Embedding, Input
from kfunc.models import Model

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
words, vocabulary, samples = 20, 1000, 1024

# Headline input: sequences of integers between 1 and `vocabulary`.
main_input = Input(shape=(words,), dtype="int32", name="main_input")
x = Embedding(output_dim=64, input_dim=vocabulary, input_length=words)(main_input)
lstm_out = LSTM(32)(x)
auxiliary_output = Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
auxiliary_input = Input(shape=(5,), name="aux_input")
x = keras.layers.concatenate([lstm_out, auxiliary_input])
x = Dense(64, activation="relu")(x)
x = Dense(64, activation="relu")(x)
main_output = Dense(1, activation="sigmoid", name="main_output")(x)
model = Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])

headline_data = rng.integers(1, vocabulary, (samples, words)).astype(np.int32)
additional_data = rng.random((samples, 5), dtype=np.float32)
labels = (headline_data[:, :3].mean(axis=1) > vocabulary / 2).astype(np.float32)  # learnable from the words

model.compile(optimizer="rmsprop", loss="binary_crossentropy", loss_weights=[1.0, 0.2], metrics=["accuracy"])
history = model.fit([headline_data, additional_data], [labels, labels], epochs=8, batch_size=32, verbose=0)
print("epoch losses:", " ".join(f"{v:.3f}" for v in history.history["loss"]))

result = model.evaluate([headline_data, additional_data], [labels, labels], verbose=0, return_dict=True)
weighted = result["main_output_loss"] + 0.2 * result["aux_output_loss"]
print(f"loss {result['loss']:.4f} = main_output_loss {result['main_output_loss']:.4f} "
      f"+ 0.2 * aux_output_loss {result['aux_output_loss']:.4f} ({weighted:.4f})")
print(f"main_output accuracy {result['main_output_accuracy']:.3f}")

# The same with dicts keyed by the inputs' and outputs' names.
model.compile(
    optimizer="rmsprop",
    loss={"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
    loss_weights={"main_output": 1.0, "aux_output": 0.2},
)
model.fit({"main_input": headline_data, "aux_input": additional_data},
          {"main_output": labels, "aux_output": labels}, epochs=1, batch_size=32, verbose=0)
print("trained again with dict inputs, targets, losses and loss weights")
assert history.history["loss"][-1] < history.history["loss"][0]
assert abs(result["loss"] - weighted) < 1e-4
