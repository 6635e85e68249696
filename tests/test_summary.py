"""summary(): rows, shapes, parameter counts and connections of the guide's models."""

from kfunc.layers import Dense
from kfunc.models import Sequential
from test_guide import headline_model, shared_vision


def rows_of(text):
    return [line for line in text.splitlines() if "(" in line and ")" in line and not line.startswith(("Model", "Total", "Trainable", "Non-", "Layer (type)"))]


def test_summary_of_the_multi_input_model():
    model = headline_model()
    lines = []
    text = model.summary(print_fn=lines.append)
    assert text.splitlines() == lines
    rows = rows_of(text)
    assert [r.split()[0] for r in rows] == [layer.name for layer in model.layers]
    assert rows[1].split()[1:] == ["(Embedding)", "(None,", "100,", "512)", "5,120,000", "main_input[0][0]"]
    concat = text.splitlines().index(next(r for r in rows if r.startswith("concatenate")))
    assert text.splitlines()[concat].endswith("lstm[0][0]") and text.splitlines()[concat + 1].strip() == "aux_input[0][0]"
    assert "Total params: 5,200,610 (19.84 MB)" in text
    assert "Non-trainable params: 0 (0.00 B)" in text


def test_summary_of_the_shared_vision_model_shows_both_calls():
    vision, model = shared_vision()
    text = model.summary(print_fn=lambda line: None)
    assert f"{vision.name}[0][0]" in text and f"{vision.name}[1][0]" in text
    assert f"{vision.name} (Model)" in text and "37,568" in text
    expanded = model.summary(expand_nested=True, print_fn=lambda line: None)
    assert "  conv2d (Conv2D)" in expanded and "(None, 25, 25, 64)" in expanded


def test_summary_counts_frozen_weights_as_non_trainable():
    model = Sequential([Dense(3, input_shape=(4,), trainable=False), Dense(1)])
    text = model.summary(print_fn=lambda line: None)
    assert "Trainable params: 4 (16.00 B)" in text and "Non-trainable params: 15 (60.00 B)" in text
