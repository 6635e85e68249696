"""Every section of the functional-API guide, as written (keras -> kfunc), at small sizes.

Sizes the guide gives (784 features, 224x224 images, 10000 words) are kept where building is
cheap, and shrunk where the test would compute on them; shapes, parameter counts, weight sharing
and the node API are asserted.
"""

import jax
import numpy as np
import pytest

import kfunc as keras
from kfunc.layers import (
    LSTM,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    Input,
    MaxPooling2D,
    TimeDistributed,
)
from kfunc.models import Model, Sequential

rng = np.random.default_rng(0)


def dense_network():
    inputs = Input(shape=(784,))
    x = Dense(64, activation="relu")(inputs)
    x = Dense(64, activation="relu")(x)
    predictions = Dense(10, activation="softmax")(x)
    return Model(inputs=inputs, outputs=predictions)


def test_section1_dense_network():
    model = dense_network()
    assert model.output_shape == (None, 10)
    assert model.count_params() == 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10
    probabilities = model.predict(rng.random((5, 784), dtype=np.float32))
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_section2_model_called_like_a_layer_reuses_weights():
    model = dense_network()
    x = Input(shape=(784,))
    y = model(x)
    assert y.shape == (None, 10)
    reuse = Model(x, y)
    data = rng.random((4, 784), dtype=np.float32)
    np.testing.assert_array_equal(reuse.predict(data), model.predict(data))
    # One set of weights: changing them through the original changes the reuse.
    first_dense = model.layers[1]
    first_dense.set_weights([np.zeros((784, 64), np.float32), np.zeros(64, np.float32)])
    np.testing.assert_array_equal(reuse.predict(data), model.predict(data))
    assert reuse.count_params() == model.count_params()


def test_section2_time_distributed_model():
    model = dense_network()
    input_sequences = Input(shape=(20, 784))
    processed_sequences = TimeDistributed(model)(input_sequences)
    assert processed_sequences.shape == (None, 20, 10)
    video = Model(input_sequences, processed_sequences)
    frames = rng.random((2, 20, 784), dtype=np.float32)
    per_step = model.predict(frames.reshape(40, 784)).reshape(2, 20, 10)
    np.testing.assert_allclose(video.predict(frames), per_step, rtol=1e-5, atol=1e-6)


def headline_model(words=100, vocabulary=10000, embedding=512, units=32, hidden=(64, 64, 64)):
    """The guide's two-input, two-output model; other tests build it smaller."""
    main_input = Input(shape=(words,), dtype="int32", name="main_input")
    x = Embedding(output_dim=embedding, input_dim=vocabulary, input_length=words)(main_input)
    lstm_out = LSTM(units)(x)
    auxiliary_output = Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    auxiliary_input = Input(shape=(5,), name="aux_input")
    x = keras.layers.concatenate([lstm_out, auxiliary_input])
    for width in hidden:
        x = Dense(width, activation="relu")(x)
    main_output = Dense(1, activation="sigmoid", name="main_output")(x)
    return Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])


def test_section3_multi_input_multi_output_structure():
    model = headline_model()
    assert model.input_names == ["main_input", "aux_input"]
    assert model.output_names == ["main_output", "aux_output"]
    assert model.output_shape == [(None, 1), (None, 1)]
    lstm_params = 4 * (512 * 32 + 32 * 32 + 32)
    dense_params = (37 * 64 + 64) + 2 * (64 * 64 + 64) + (64 + 1) + (32 + 1)
    assert model.count_params() == 10000 * 512 + lstm_params + dense_params
    headlines = rng.integers(1, 10000, (3, 100)).astype(np.int32)
    extra = rng.random((3, 5), dtype=np.float32)
    by_list = model.predict([headlines, extra])
    by_name = model.predict({"main_input": headlines, "aux_input": extra})
    for a, b in zip(by_list, by_name, strict=True):
        assert a.shape == (3, 1)
        np.testing.assert_array_equal(a, b)


def test_section4_shared_lstm_is_one_set_of_weights():
    tweet_a = Input(shape=(280, 256))
    tweet_b = Input(shape=(280, 256))
    shared_lstm = LSTM(64)
    encoded_a = shared_lstm(tweet_a)
    encoded_b = shared_lstm(tweet_b)
    merged_vector = keras.layers.concatenate([encoded_a, encoded_b], axis=-1)
    predictions = Dense(1, activation="sigmoid")(merged_vector)
    model = Model(inputs=[tweet_a, tweet_b], outputs=predictions)
    assert model.count_params() == 4 * (256 * 64 + 64 * 64 + 64) + 129
    params, _ = model.get_variables()
    assert set(params) == {shared_lstm.name, model.layers[-1].name}
    # The same tweet on both sides encodes identically: the halves of the merge are equal.
    encoder = Model([tweet_a, tweet_b], merged_vector)
    tweet = rng.random((2, 280, 256), dtype=np.float32)
    merged = encoder.predict([tweet, tweet])
    np.testing.assert_array_equal(merged[:, :64], merged[:, 64:])


def test_section5_node_api_single_and_multiple_nodes():
    a = Input(shape=(280, 256))
    lstm = LSTM(32)
    encoded_a = lstm(a)
    assert lstm.output == encoded_a
    assert lstm.output is encoded_a

    a = Input(shape=(280, 256))
    b = Input(shape=(280, 256))
    lstm = LSTM(32)
    encoded_a = lstm(a)
    encoded_b = lstm(b)
    with pytest.raises(AttributeError, match=r"Layer lstm_1 has multiple inbound nodes.*get_output_at\(node_index\)"):
        lstm.output
    assert lstm.get_output_at(0) == encoded_a
    assert lstm.get_output_at(1) == encoded_b
    assert lstm.get_input_at(0) is a
    assert lstm.get_input_at(1) is b
    with pytest.raises(AttributeError, match=r"get_input_at\(node_index\)"):
        lstm.input
    # Shapes agree across both nodes, so the shape properties stay defined.
    assert lstm.input_shape == (None, 280, 256)
    assert lstm.output_shape == (None, 32)


def test_section5_conv_node_shapes():
    a = Input(shape=(32, 32, 3))
    b = Input(shape=(64, 64, 3))
    conv = Conv2D(16, (3, 3), padding="same")
    conved_a = conv(a)
    assert conv.input_shape == (None, 32, 32, 3)
    conved_b = conv(b)
    assert conv.get_input_shape_at(0) == (None, 32, 32, 3)
    assert conv.get_input_shape_at(1) == (None, 64, 64, 3)
    assert conv.get_output_shape_at(1) == (None, 64, 64, 16)
    assert conved_a.shape == (None, 32, 32, 16) and conved_b.shape == (None, 64, 64, 16)
    with pytest.raises(AttributeError, match=r"different input shapes.*get_input_shape_at\(node_index\)"):
        conv.input_shape
    with pytest.raises(AttributeError, match=r"get_output_shape_at"):
        conv.output_shape


def test_section6_inception_module():
    input_img = Input(shape=(256, 256, 3))
    tower_1 = Conv2D(64, (1, 1), padding="same", activation="relu")(input_img)
    tower_1 = Conv2D(64, (3, 3), padding="same", activation="relu")(tower_1)
    tower_2 = Conv2D(64, (1, 1), padding="same", activation="relu")(input_img)
    tower_2 = Conv2D(64, (5, 5), padding="same", activation="relu")(tower_2)
    tower_3 = MaxPooling2D((3, 3), strides=(1, 1), padding="same")(input_img)
    tower_3 = Conv2D(64, (1, 1), padding="same", activation="relu")(tower_3)
    output = keras.layers.concatenate([tower_1, tower_2, tower_3], axis=1)
    assert output.shape == (None, 768, 256, 64)
    model = Model(input_img, output)
    assert len(model.layers) == 1 + 6 + 1


def test_section7_residual_connection():
    x = Input(shape=(256, 256, 3))
    y = Conv2D(3, (3, 3), padding="same")(x)
    z = keras.layers.add([x, y])
    assert z.shape == (None, 256, 256, 3)
    small = Input(shape=(8, 8, 3))
    conv = Conv2D(3, (3, 3), padding="same")
    model = Model(small, keras.layers.add([small, conv(small)]))
    image = rng.random((2, 8, 8, 3), dtype=np.float32)
    conv_only = Model(small, conv.get_output_at(0))
    np.testing.assert_allclose(model.predict(image), image + conv_only.predict(image), rtol=1e-6, atol=1e-6)


def shared_vision(size=27):
    digit_input = Input(shape=(size, size, 1))
    x = Conv2D(64, (3, 3))(digit_input)
    x = Conv2D(64, (3, 3))(x)
    x = MaxPooling2D((2, 2))(x)
    out = Flatten()(x)
    vision_model = Model(digit_input, out)
    digit_a = Input(shape=(size, size, 1))
    digit_b = Input(shape=(size, size, 1))
    out_a = vision_model(digit_a)
    out_b = vision_model(digit_b)
    concatenated = keras.layers.concatenate([out_a, out_b])
    out = Dense(1, activation="sigmoid")(concatenated)
    return vision_model, Model([digit_a, digit_b], out)


def test_section8_shared_vision_model():
    vision_model, classification_model = shared_vision()
    assert vision_model.output_shape == (None, 11 * 11 * 64)
    vision_params = (9 * 64 + 64) + (9 * 64 * 64 + 64)
    assert vision_model.count_params() == vision_params
    assert classification_model.count_params() == vision_params + 2 * 11 * 11 * 64 + 1
    params, _ = classification_model.get_variables()
    assert vision_model.name in params and len(params) == 2
    # Swapping the two digits swaps the halves of the shared encoding: the weights are shared.
    encoder = Model(classification_model.inputs, classification_model.layers[-1].input)
    a, b = rng.random((2, 1, 27, 27, 1), dtype=np.float32)
    ab = encoder.predict([a, b])
    ba = encoder.predict([b, a])
    half = 11 * 11 * 64
    np.testing.assert_array_equal(ab[:, :half], ba[:, half:])


def vqa(image=224, words=100, vocabulary=10000):
    vision_model = Sequential()
    vision_model.add(Conv2D(64, (3, 3), activation="relu", padding="same", input_shape=(image, image, 3)))
    vision_model.add(Conv2D(64, (3, 3), activation="relu"))
    vision_model.add(MaxPooling2D((2, 2)))
    vision_model.add(Conv2D(128, (3, 3), activation="relu", padding="same"))
    vision_model.add(Conv2D(128, (3, 3), activation="relu"))
    vision_model.add(MaxPooling2D((2, 2)))
    vision_model.add(Conv2D(256, (3, 3), activation="relu", padding="same"))
    vision_model.add(Conv2D(256, (3, 3), activation="relu"))
    vision_model.add(Conv2D(256, (3, 3), activation="relu"))
    vision_model.add(MaxPooling2D((2, 2)))
    vision_model.add(Flatten())
    image_input = Input(shape=(image, image, 3))
    encoded_image = vision_model(image_input)
    question_input = Input(shape=(words,), dtype="int32")
    embedded_question = Embedding(input_dim=vocabulary, output_dim=256, input_length=words)(question_input)
    encoded_question = LSTM(256)(embedded_question)
    merged = keras.layers.concatenate([encoded_question, encoded_image])
    output = Dense(1000, activation="softmax")(merged)
    vqa_model = Model(inputs=[image_input, question_input], outputs=output)
    return vision_model, question_input, encoded_question, vqa_model


def test_section9_visual_question_answering_at_guide_size():
    vision_model, _, encoded_question, vqa_model = vqa()
    assert vision_model.output_shape == (None, 25 * 25 * 256)  # 224 -> 222 -> 111 -> 109 -> 54 -> 52 -> 50 -> 25
    assert encoded_question.shape == (None, 256)
    assert vqa_model.output_shape == (None, 1000)
    # The vision model is one layer of the VQA model (its convolutions stay inside it), counted once.
    assert [layer for layer in vqa_model.layers if layer is vision_model] == [vision_model]
    assert not any(isinstance(layer, Conv2D) for layer in vqa_model.layers)
    question_params = 10000 * 256 + 4 * 256 * (256 + 256 + 1)  # Embedding, LSTM(256)
    classifier_params = (256 + 25 * 25 * 256) * 1000 + 1000
    assert vqa_model.count_params() == vision_model.count_params() + question_params + classifier_params


def test_section10_video_question_answering_reuses_weights():
    vision_model, question_input, encoded_question, vqa_model = vqa(image=32, words=6, vocabulary=50)
    video_input = Input(shape=(3, 32, 32, 3))
    encoded_frame_sequence = TimeDistributed(vision_model)(video_input)
    encoded_video = LSTM(256)(encoded_frame_sequence)
    question_encoder = Model(inputs=question_input, outputs=encoded_question)
    video_question_input = Input(shape=(6,), dtype="int32")
    encoded_video_question = question_encoder(video_question_input)
    merged = keras.layers.concatenate([encoded_video, encoded_video_question])
    output = Dense(1000, activation="softmax")(merged)
    video_qa_model = Model(inputs=[video_input, video_question_input], outputs=output)
    assert video_qa_model.output_shape == (None, 1000)

    questions = rng.integers(0, 50, (2, 6)).astype(np.int32)
    encoded_in_vqa = Model(vqa_model.inputs[1], encoded_question).predict(questions)
    np.testing.assert_array_equal(question_encoder.predict(questions), encoded_in_vqa)
    # The encoder cut from the VQA graph holds the VQA model's own weight objects.
    vqa_weights = {id(w) for w in vqa_model.weights}
    assert all(id(w) in vqa_weights for w in question_encoder.weights)
    video_weights = {id(w) for w in video_qa_model.weights}
    assert all(id(w) in video_weights for w in vision_model.weights)
    frames = rng.random((2, 3, 32, 32, 3), dtype=np.float32)
    probabilities = video_qa_model.predict([frames, questions])
    assert probabilities.shape == (2, 1000)
    assert np.all(np.isfinite(probabilities))


def test_import_kfunc_as_keras_spelling():
    assert keras.layers.concatenate is not None and keras.layers.add is not None
    assert keras.Input is keras.layers.Input
    assert keras.Model is keras.models.Model and keras.Sequential is keras.models.Sequential
    variables = dense_network().init(jax.random.key(0))
    assert set(variables.params) == {"dense", "dense_1", "dense_2"}


def test_section1_compile_and_fit_as_written():
    model = dense_network()
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    data = rng.random((64, 784), dtype=np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    history = model.fit(data, labels, verbose=0)  # starts training
    assert set(history.history) == {"loss", "accuracy"}
    loss, accuracy = model.evaluate(data, labels, verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0


def test_section4_shared_lstm_trains_with_accuracy():
    tweet_a = Input(shape=(12, 16))
    tweet_b = Input(shape=(12, 16))
    shared_lstm = LSTM(8)
    merged_vector = keras.layers.concatenate([shared_lstm(tweet_a), shared_lstm(tweet_b)], axis=-1)
    predictions = Dense(1, activation="sigmoid")(merged_vector)
    model = Model(inputs=[tweet_a, tweet_b], outputs=predictions)
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    data_a = rng.random((96, 12, 16), dtype=np.float32)
    data_b = rng.random((96, 12, 16), dtype=np.float32)
    labels = (data_a.mean(axis=(1, 2)) > data_b.mean(axis=(1, 2))).astype(np.float32)
    before = shared_lstm.get_weights()
    history = model.fit([data_a, data_b], labels, epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.array_equal(before[0], shared_lstm.get_weights()[0])


def test_section8_classifier_trains_the_shared_vision_weights():
    vision_model, classification_model = shared_vision(size=9)
    classification_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    digits_a = rng.random((32, 9, 9, 1), dtype=np.float32)
    digits_b = rng.random((32, 9, 9, 1), dtype=np.float32)
    same = rng.integers(0, 2, 32).astype(np.float32)
    before = [w.copy() for w in vision_model.get_weights()]
    classification_model.fit([digits_a, digits_b], same, epochs=2, batch_size=8, verbose=0)
    after = vision_model.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # The vision model on its own computes with the trained weights.
    encoder = Model(classification_model.inputs[0], vision_model(classification_model.inputs[0]))
    np.testing.assert_allclose(encoder.predict(digits_a), vision_model.predict(digits_a), rtol=1e-6)
