"""Guide sections 9 and 10: visual and video question answering, at small sizes.

A Sequential vision model (built with .add, the first layer given input_shape) encodes an
image; an Embedding + LSTM encodes the question; a softmax over the answers sits on top. Then
the trained vision model runs on every frame of a video (TimeDistributed) and the question
encoder, cut out of the VQA graph as a Model, is reused with its weights.
"""

import numpy as np

import kfunc as keras
from kfunc.layers import LSTM, Conv2D, Dense, Embedding, Flatten, Input, MaxPooling2D, TimeDistributed
from kfunc.models import Model, Sequential

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
size, words, vocabulary, answers = 32, 10, 100, 50  # the guide: 224x224 images, 100 words, 10000, 1000

# First, let's define a vision model using a Sequential model.
vision_model = Sequential()
vision_model.add(Conv2D(16, (3, 3), activation="relu", padding="same", input_shape=(size, size, 3)))
vision_model.add(Conv2D(16, (3, 3), activation="relu"))
vision_model.add(MaxPooling2D((2, 2)))
vision_model.add(Conv2D(32, (3, 3), activation="relu", padding="same"))
vision_model.add(Conv2D(32, (3, 3), activation="relu"))
vision_model.add(MaxPooling2D((2, 2)))
vision_model.add(Flatten())

# Now let's get a tensor with the output of our vision model:
image_input = Input(shape=(size, size, 3))
encoded_image = vision_model(image_input)

# Next, let's define a language model to encode the question into a vector.
question_input = Input(shape=(words,), dtype="int32")
embedded_question = Embedding(input_dim=vocabulary, output_dim=32, input_length=words)(question_input)
encoded_question = LSTM(32)(embedded_question)

# Let's concatenate the question vector and the image vector, and train a classifier on top:
merged = keras.layers.concatenate([encoded_question, encoded_image])
output = Dense(answers, activation="softmax")(merged)
vqa_model = Model(inputs=[image_input, question_input], outputs=output)
print(f"VQA model: image {image_input.shape} + question {question_input.shape} -> {output.shape}")

images = rng.random((256, size, size, 3), dtype=np.float32)
questions = rng.integers(1, vocabulary, (256, words)).astype(np.int32)
answers_given = np.eye(answers, dtype=np.float32)[questions[:, 0] % answers]
vqa_model.compile(optimizer="adam", loss="categorical_crossentropy")
history = vqa_model.fit([images, questions], answers_given, epochs=3, batch_size=32, verbose=0)
print("VQA training losses:", " ".join(f"{v:.3f}" for v in history.history["loss"]))

# Video QA: the vision model on every frame (weights reused), an LSTM over the frames.
video_input = Input(shape=(4, size, size, 3))
encoded_frame_sequence = TimeDistributed(vision_model)(video_input)
encoded_video = LSTM(32)(encoded_frame_sequence)
# A model-level representation of the question encoder, reusing the same weights as before:
question_encoder = Model(inputs=question_input, outputs=encoded_question)
video_question_input = Input(shape=(words,), dtype="int32")
encoded_video_question = question_encoder(video_question_input)
merged = keras.layers.concatenate([encoded_video, encoded_video_question])
output = Dense(answers, activation="softmax")(merged)
video_qa_model = Model(inputs=[video_input, video_question_input], outputs=output)
print(f"video QA model: frames {encoded_frame_sequence.shape} -> video {encoded_video.shape}; output {output.shape}")

in_vqa = Model(vqa_model.inputs[1], encoded_question).predict(questions[:4])
print(f"question encoder cut from the VQA graph gives the VQA model's encodings: "
      f"{np.array_equal(question_encoder.predict(questions[:4]), in_vqa)}")
videos = rng.random((2, 4, size, size, 3), dtype=np.float32)
print(f"video QA predictions: {video_qa_model.predict([videos, questions[:2]]).shape}")
