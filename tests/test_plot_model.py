"""plot_model / to_dot: the DOT text of every guide model, parsed back and checked against the
model's own nodes; nested clusters, label escaping, and the files plot_model writes."""

import itertools
import os
import re
import shutil
from collections import Counter

import pytest
from test_guide import headline_model, shared_vision, vqa

import kfunc
import kfunc as keras
from kfunc.layers import LSTM, Conv2D, Dense, Input, MaxPooling2D, TimeDistributed
from kfunc.models import Model, Sequential
from kfunc.utils import plot_model

QUOTED = r'"((?:[^"\\]|\\.)*)"'


def unquote(text):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse_dot(text):
    """``(labels by node id, [(source id, target id, edge label)], {cluster: (label, [ids])})``."""
    labels, edges, clusters, open_clusters = {}, [], {}, []
    for line in text.splitlines()[1:]:
        line = line.strip()
        if match := re.fullmatch(rf"subgraph {QUOTED} {{", line):
            open_clusters.append(unquote(match.group(1)))
            clusters[open_clusters[-1]] = [None, []]
        elif line == "}":
            if open_clusters:
                open_clusters.pop()
        elif match := re.fullmatch(rf"label={QUOTED};", line):
            clusters[open_clusters[-1]][0] = unquote(match.group(1))
        elif match := re.fullmatch(rf"{QUOTED} -> {QUOTED}(?: \[label={QUOTED}\])?;", line):
            edges.append((unquote(match.group(1)), unquote(match.group(2)), unquote(match.group(3) or "")))
        elif match := re.fullmatch(rf"{QUOTED} \[label={QUOTED}\];", line):
            node_id, label = unquote(match.group(1)), unquote(match.group(2))
            labels[node_id] = label
            for name in open_clusters:
                clusters[name][1].append(node_id)
        else:
            assert line.startswith(("graph [", "node [", "edge [", "style=")), line
    return labels, edges, {k: tuple(v) for k, v in clusters.items()}


def name_of(label):
    return label.split("\n")[0].rsplit(" (", 1)[0]


def drawn(model, **options):
    """Node names and the multiset of (source name, target name) edges of ``model.to_dot()``."""
    labels, edges, _ = parse_dot(model.to_dot(**options))
    names = [name_of(label) for label in labels.values()]
    return names, Counter((name_of(labels[s]), name_of(labels[t])) for s, t, _ in edges)


def expected_edges(model):
    """From each layer's own call list: the calls this model runs, one edge per distinct input."""
    layers = model._graph().plan.layers
    in_model = {id(layer) for layer in layers}
    runs = {id(node) for node in model._graph().plan.nodes}
    edges = Counter()
    for layer in layers:
        for node in layer._inbound_nodes:
            if id(node) in runs:
                distinct = {id(t): t for t in node.inputs}.values()
                edges.update((t.layer.name, layer.name) for t in distinct if id(t.layer) in in_model)
    return edges


def shared_lstm_model():
    tweet_a, tweet_b = Input(shape=(7, 5)), Input(shape=(7, 5))
    shared = LSTM(4)
    merged = keras.layers.concatenate([shared(tweet_a), shared(tweet_b)], axis=-1)
    return Model([tweet_a, tweet_b], Dense(1, activation="sigmoid")(merged))


def inception_model():
    image = Input(shape=(8, 8, 3))
    tower_1 = Conv2D(4, (1, 1), padding="same")(image)
    tower_1 = Conv2D(4, (3, 3), padding="same")(tower_1)
    tower_2 = Conv2D(4, (1, 1), padding="same")(image)
    tower_2 = Conv2D(4, (5, 5), padding="same")(tower_2)
    tower_3 = MaxPooling2D((3, 3), strides=(1, 1), padding="same")(image)
    tower_3 = Conv2D(4, (1, 1), padding="same")(tower_3)
    return Model(image, keras.layers.concatenate([tower_1, tower_2, tower_3], axis=1))


def residual_model():
    x = Input(shape=(8, 8, 3))
    return Model(x, keras.layers.add([x, Conv2D(3, (3, 3), padding="same")(x)]))


def sequential_model():
    return Sequential([Dense(8, input_shape=(4,), activation="relu"), Dense(8), Dense(1)])


def vqa_model():
    return vqa(image=32, words=6, vocabulary=50)[3]


def video_qa_model():
    vision_model, question_input, encoded_question, _ = vqa(image=32, words=6, vocabulary=50)
    video = Input(shape=(3, 32, 32, 3))
    encoded_video = LSTM(8)(TimeDistributed(vision_model)(video))
    question = Input(shape=(6,), dtype="int32")
    encoded = Model(question_input, encoded_question)(question)
    merged = keras.layers.concatenate([encoded_video, encoded])
    return Model([video, question], Dense(10, activation="softmax")(merged))


GUIDE_MODELS = {
    "multi_input_multi_output": headline_model,
    "shared_lstm": shared_lstm_model,
    "shared_vision": lambda: shared_vision(size=9)[1],
    "inception": inception_model,
    "residual": residual_model,
    "sequential": sequential_model,
    "vqa": vqa_model,
    "video_qa": video_qa_model,
}


@pytest.mark.parametrize("build", GUIDE_MODELS.values(), ids=GUIDE_MODELS.keys())
def test_one_node_per_layer_and_one_edge_per_connection(build):
    model = build()
    names, edges = drawn(model)
    assert sorted(names) == sorted(layer.name for layer in model._graph().plan.layers)
    assert edges == expected_edges(model)
    assert sum(edges.values()) >= len(names) - len(model.inputs)


def test_the_multi_input_model_edges_by_name():
    names, edges = drawn(headline_model())
    assert set(names) == {"main_input", "embedding", "lstm", "aux_output", "aux_input", "concatenate",
                          "dense", "dense_1", "dense_2", "main_output"}
    assert edges == Counter([
        ("main_input", "embedding"), ("embedding", "lstm"), ("lstm", "aux_output"), ("lstm", "concatenate"),
        ("aux_input", "concatenate"), ("concatenate", "dense"), ("dense", "dense_1"), ("dense_1", "dense_2"),
        ("dense_2", "main_output"),
    ])


def test_a_shared_layer_is_one_node_with_labelled_edges_per_call():
    model = shared_lstm_model()
    labels, edges, _ = parse_dot(model.to_dot())
    assert list(labels).count("lstm") == 1
    into_merge = sorted((s, label) for s, t, label in edges if t == "concatenate")
    assert into_merge == [("lstm", "[0][0]"), ("lstm", "[1][0]")]
    assert sorted(s for s, t, _ in edges if t == "lstm") == ["input_layer", "input_layer_1"]


def test_the_sequential_model_is_a_chain_from_its_input():
    model = sequential_model()
    labels, edges, _ = parse_dot(model.to_dot())
    chain = [model._graph().plan.layers[0].name, "dense", "dense_1", "dense_2"]
    assert [(s, t) for s, t, _ in edges] == list(itertools.pairwise(chain))
    assert labels["dense"] == "dense (Dense)"


def test_nested_model_is_one_box_or_a_cluster_wired_through():
    vision, model = shared_vision(size=9)
    labels, _, clusters = parse_dot(model.to_dot())
    assert labels[vision.name] == f"{vision.name} (Model)" and not clusters

    labels, edges, clusters = parse_dot(model.to_dot(expand_nested=True))
    label, members = clusters[f"cluster_{vision.name}"]
    assert label == f"{vision.name} (Model)"
    assert sorted(name_of(labels[m]) for m in members) == sorted(layer.name for layer in vision.layers)
    assert vision.name not in labels
    inner_input = f"{vision.name}/{vision.layers[0].name}"
    outer_inputs = sorted(t.name for t in model.inputs)
    assert sorted(s for s, t, _ in edges if t == inner_input) == outer_inputs
    assert sorted(label for s, t, label in edges if s == f"{vision.name}/flatten") == ["[0][0]", "[1][0]"]
    assert all(t == "concatenate" for s, t, _ in edges if s == f"{vision.name}/flatten")


def test_a_nested_model_cut_from_an_intermediate_tensor_is_wired_to_its_first_layer():
    x = Input(shape=(3,))
    hidden = Dense(4)(x)
    cut = Model(hidden, Dense(2, name="head")(hidden), name="cut")
    y = Input(shape=(3,), name="y")
    model = Model(y, cut(Dense(4, name="pre")(y)))
    _, edges, _ = parse_dot(model.to_dot())
    assert [(s, t) for s, t, _ in edges] == [("y", "pre"), ("pre", "cut")]
    _, edges, clusters = parse_dot(model.to_dot(expand_nested=True))
    assert clusters["cluster_cut"] == ("cut (Model)", ["cut/head"])
    assert [(s, t) for s, t, _ in edges] == [("y", "pre"), ("pre", "cut/head")]


def test_a_nested_sequential_expands_in_the_vqa_model():
    vision_model, _, _, model = vqa(image=32, words=6, vocabulary=50)
    labels, edges, clusters = parse_dot(model.to_dot(expand_nested=True, show_shapes=True))
    _, members = clusters[f"cluster_{vision_model.name}"]
    assert len(members) == len(vision_model.layers) + 1  # the Sequential's input layer too
    assert labels[f"{vision_model.name}/flatten"].startswith("flatten (Flatten)\ninput: (None, 1, 1, 256)")
    assert (f"{vision_model.name}/flatten", "concatenate", "") in edges
    assert all(s in labels and t in labels for s, t, _ in edges)


def test_shapes_and_dtypes_in_labels():
    model = headline_model()
    labels, _, _ = parse_dot(model.to_dot(show_shapes=True, show_dtype=True))
    assert labels["concatenate"] == (
        "concatenate (Concatenate)\ninput: [(None, 32), (None, 5)]\noutput: (None, 37)\ndtype: float32"
    )
    assert labels["main_input"] == (
        "main_input (InputLayer)\ninput: (None, 100)\noutput: (None, 100)\ndtype: int32"
    )
    labels, _, _ = parse_dot(model.to_dot(show_layer_names=False))
    assert labels["lstm"] == "LSTM"


def test_a_shared_layer_with_different_shapes_shows_multiple():
    a, b = Input(shape=(8, 8, 3)), Input(shape=(6, 6, 3))
    conv = Conv2D(2, (3, 3), padding="same")
    model = Model([a, b], [conv(a), conv(b)])
    labels, _, _ = parse_dot(model.to_dot(show_shapes=True))
    assert labels["conv2d"] == "conv2d (Conv2D)\ninput: multiple\noutput: multiple"
    labels, _, _ = parse_dot(Model(a, conv.get_output_at(0)).to_dot(show_shapes=True))
    assert labels["conv2d"] == "conv2d (Conv2D)\ninput: (None, 8, 8, 3)\noutput: (None, 8, 8, 2)"


def test_labels_and_ids_are_escaped():
    awkward = 'say "hi" <b> & {x|y} \\ back\nslash'
    inputs = Input(shape=(3,), name="in<put>")
    model = Model(inputs, Dense(2, name=awkward)(inputs), name='the "model"')
    text = model.to_dot(show_shapes=True)
    assert text.startswith('digraph "the \\"model\\"" {')
    assert "\nslash" not in text  # a name's line break stays inside its quoted string
    labels, edges, _ = parse_dot(text)
    assert labels[awkward].startswith(f"{awkward} (Dense)\ninput: (None, 3)")
    assert edges == [("in<put>", awkward, "")]


def test_wrapped_layers_name_their_inner_layer_type():
    frames = Input(shape=(4, 3))
    model = Model(frames, TimeDistributed(Dense(2))(frames))
    labels, _, _ = parse_dot(model.to_dot())
    assert labels["time_distributed"] == "time_distributed (TimeDistributed(Dense))"


def test_rankdir_and_dpi_go_into_the_graph_attributes():
    text = residual_model().to_dot(rankdir="LR", dpi=200)
    assert "rankdir=LR, dpi=200" in text
    expected = r"rankdir must be one of \['TB', 'LR', 'BT', 'RL'\], received 'left'"
    with pytest.raises(ValueError, match=expected):
        residual_model().to_dot(rankdir="left")
    with pytest.raises(ValueError, match=r"dpi must be a positive number, received 0"):
        residual_model().to_dot(dpi=0)


@pytest.mark.parametrize("extension", [".dot", ".gv"])
def test_plot_model_writes_dot_text_without_graphviz(tmp_path, monkeypatch, extension):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = headline_model()
    target = tmp_path / f"model{extension}"
    assert plot_model(model, to_file=str(target), show_shapes=True, rankdir="LR") is None
    assert target.read_text() == model.to_dot(show_shapes=True, rankdir="LR")
    assert os.listdir(tmp_path) == [target.name]


def test_plot_model_without_graphviz_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    target = tmp_path / "model.png"
    expected = r"needs Graphviz to write a \.png file: install Graphviz \(`apt-get install graphviz`.*\.dot"
    with pytest.raises(ImportError, match=expected):
        plot_model(headline_model(), to_file=str(target))
    assert os.listdir(tmp_path) == []
    target.write_bytes(b"old picture")
    with pytest.raises(ImportError, match="brew install graphviz"):
        plot_model(headline_model(), to_file=target)
    assert target.read_bytes() == b"old picture"


def test_plot_model_reports_a_failing_dot_program_and_leaves_no_file(tmp_path, monkeypatch):
    failing = shutil.which("false")
    if failing is None:
        pytest.skip("no `false` program to stand in for a failing Graphviz")
    monkeypatch.setattr(shutil, "which", lambda name: failing)
    with pytest.raises(RuntimeError, match=r"Graphviz `dot -Tsvg` failed \(exit status 1\)"):
        plot_model(residual_model(), to_file=str(tmp_path / "model.svg"))
    assert os.listdir(tmp_path) == []


def test_plot_model_rejects_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"the extension \.txt is not one of \['\.dot', '\.gv', '\.png'"):
        plot_model(residual_model(), to_file=str(tmp_path / "model.txt"))


def test_plot_model_is_exported_from_utils():
    assert "plot_model" in kfunc.utils.__all__ and kfunc.utils.plot_model is plot_model


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` program is not installed")
def test_plot_model_renders_svg_with_graphviz(tmp_path):
    vision, model = shared_vision(size=9)
    target = tmp_path / "model.svg"
    plot_model(model, to_file=str(target), show_shapes=True, expand_nested=True)
    text = target.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg")) and "<svg" in text
    # expand_nested draws the vision model as a Graphviz cluster holding each of its layers.
    assert re.search(rf'<g id="clust\d+" class="cluster">\s*<title>cluster_{re.escape(vision.name)}</title>', text)
    for layer in vision.layers:
        assert f"<title>{vision.name}/{layer.name}</title>" in text
    plot_model(model, to_file=str(tmp_path / "model.png"))
    assert (tmp_path / "model.png").read_bytes().startswith(b"\x89PNG")
