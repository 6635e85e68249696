"""kfunc.utils.Progbar and kfunc.callbacks.ProgbarLogger against Keras 3's: the same lines (timings
aside) for the same updates, the display of fit/evaluate/predict, and no per-step host sync."""

import contextlib
import io
import logging
import re

import numpy as np
import pytest

import kfunc
from kfunc.callbacks import ProgbarLogger
from kfunc.testing import count_compilations
from kfunc.utils import Progbar

keras = pytest.importorskip("keras")

TIMES = re.compile(r"\b\d+(:\d\d)*(s|ms|us)\b")  # elapsed, ETA and per-step times


def _final_line(text: str) -> str:
    """The last line as it shows on screen: escapes and redraws removed, times replaced by ``T``,
    the bar's part still to run as Keras draws it (``━`` in grey; ``─`` where kfunc has no colors)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\b", "").replace("─", "━")
    line = [part for part in re.split(r"[\r\n]", text) if part.strip()][-1]
    return TIMES.sub("T", line.rstrip())


def _printed(make, updates, **kwargs) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        bar = make(**kwargs)
        for method, *args in updates:
            getattr(bar, method)(*args)
    return buffer.getvalue()


UPDATES = {
    "averaged and stateful": [("update", 1, [("loss", 0.5), ("acc", 0.1)]), ("update", 3, [("loss", 0.25), ("acc", 0.4)]),
                              ("add", 1, [("loss", 0.125), ("acc", 0.6)]), ("update", 5, [("loss", 0.1), ("acc", 0.7)])],
    "finalized early": [("update", 1, [("loss", 2.0)]), ("update", 2, [("loss", 1.0)], True)],
    "tiny values": [("update", 2, [("loss", 1e-5)]), ("update", 5, [("loss", 3e-4)])],
}


@pytest.mark.parametrize("case", list(UPDATES))
@pytest.mark.parametrize("verbose", [1, 2])
def test_the_same_line_as_keras(case, verbose):
    kwargs = {"target": 5, "verbose": verbose, "interval": 0, "stateful_metrics": ["acc"]}
    theirs = _printed(keras.utils.Progbar, UPDATES[case], **kwargs)
    ours = _printed(Progbar, UPDATES[case], **kwargs)
    assert _final_line(ours) == _final_line(theirs)
    if verbose == 2:
        assert TIMES.sub("T", ours) == TIMES.sub("T", theirs)  # one line, byte for byte
    else:  # not a terminal: the finished line only, no redraws, no colors
        assert ours.count("\n") == 1 and "\r" not in ours and "\x1b" not in ours


def test_unknown_target_and_stateless_metrics_as_keras():
    updates = [("update", 1, [("loss", 1.0), ("n", 4)]), ("update", 2, [("loss", 3.0), ("n", 8)]),
               ("update", 2, [("loss", 3.0), ("n", 8)], True)]
    kwargs = {"target": None, "verbose": 1, "interval": 0, "stateless_metrics": ["loss"]}
    line = _final_line(_printed(Progbar, updates, **kwargs))
    assert line == _final_line(_printed(keras.utils.Progbar, updates, **kwargs))
    assert line.startswith("      2/Unknown T T/step - loss: 3.0000 - n: 8.0000")


def test_a_live_bar_redraws_in_place_with_the_time_left(monkeypatch):
    monkeypatch.setattr("kfunc.train.progress.stdout_is_live", lambda: True)
    out = _printed(Progbar, [("update", 1, [("loss", 1.0)]), ("update", 2, [("loss", 0.5)])], target=4, interval=0)
    frames = out.split("\r")[1:]
    assert len(frames) == 2 and not out.endswith("\n")  # not finished: no line break yet
    plain = re.sub(r"\x1b\[[0-9;]*m", "", frames[1])
    assert re.fullmatch(r"2/4 ━{10}━{10} \d+s \d+(us|ms|s)/step - loss: 0\.7500", plain.rstrip())


def test_stateful_and_stateless_together_are_refused():
    with pytest.raises(kfunc.errors.ArgumentError, match="pass stateful_metrics .* or stateless_metrics .*not both"):
        Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


def test_without_interactive_logging_lines_go_to_the_logging_module(caplog, capsys):
    assert kfunc.utils.is_interactive_logging_enabled() and kfunc.config.is_interactive_logging_enabled()
    kfunc.config.disable_interactive_logging()
    try:
        with caplog.at_level(logging.INFO, logger="kfunc"):
            bar = Progbar(2, verbose=2)
            bar.update(2, [("loss", 0.5)])
        assert not kfunc.utils.is_interactive_logging_enabled()
    finally:
        kfunc.utils.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    assert [TIMES.sub("T", r.getMessage()) for r in caplog.records] == ["2/2 - T - T/step - loss: 0.5000"]


# ---------------------------------------------------------------------- ProgbarLogger in fit, evaluate, predict
X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
Y = np.random.default_rng(1).normal(size=(40, 1)).astype("float32")


@pytest.fixture(scope="module")
def model():
    kfunc.utils.set_random_seed(0)
    model = kfunc.Sequential([kfunc.layers.Input(shape=(4,)), kfunc.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


class RecordingLogger(ProgbarLogger):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("begin", epoch))
        super().on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch", batch))
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("end", epoch))
        super().on_epoch_end(epoch, logs)


def test_fit_prints_a_header_per_epoch_and_one_line_each_with_the_fused_step(model, capsys):
    logger = RecordingLogger()
    with count_compilations() as compiles:
        model.fit(X, Y, batch_size=8, epochs=3, verbose=2, callbacks=[logger])
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert len(lines) == 6  # the passed logger replaced the automatic one: no line twice
    assert re.fullmatch(r"5/5 - T - T/step - loss: \d\.\d{4} - mae: \d\.\d{4}", TIMES.sub("T", lines[1]))
    # A display: the fused loop ran (no step-by-step compile), no batch hook was called, and the
    # epochs were reported one late (begin 1 before end 0), in order on screen.
    assert compiles.of("run_one_train_step") == 0
    assert [c for c in logger.calls if c[0] == "batch"] == []
    assert sorted(logger.calls, key=lambda c: (c[1], c[0] == "end")) == [
        ("begin", 0), ("end", 0), ("begin", 1), ("end", 1), ("begin", 2), ("end", 2)]
    model.fit(X, Y, batch_size=8, epochs=1, verbose=2)
    assert not capsys.readouterr().out.startswith("Epoch")  # no header for a single epoch, as Keras


def test_a_live_bar_is_updated_between_dispatches_only(model, monkeypatch, capsys):
    monkeypatch.setattr("kfunc.train.loop.stdout_is_live", lambda: True)
    monkeypatch.setattr("kfunc.train.progress.stdout_is_live", lambda: True)
    logger = RecordingLogger()
    model.fit(X, Y, batch_size=2, epochs=1, verbose=1, callbacks=[logger])
    batches = [c[1] for c in logger.calls if c[0] == "batch"]
    assert batches[-1] == 19 and batches == sorted(set(batches))
    assert len(batches) < 20  # the first dispatch is one step, the next ones span several
    out = capsys.readouterr().out
    assert "\r" in out and out.endswith("\n") and "20/20" in out


def test_every_step_callbacks_give_the_display_each_batch(model):
    logger, seen = RecordingLogger(), []
    other = kfunc.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    model.fit(X, Y, batch_size=8, epochs=1, verbose=1, callbacks=[other, logger])
    assert seen == [0, 1, 2, 3, 4] and [c[1] for c in logger.calls if c[0] == "batch"] == [0, 1, 2, 3, 4]


def test_an_epoch_of_unknown_length_shows_its_count(model, capsys):
    def batches():
        for start in range(0, 40, 8):
            yield X[start:start + 8], Y[start:start + 8]

    class Batches:
        def __iter__(self):
            return batches()

    model.fit(Batches(), epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("5/5 - ") and lines[3].startswith("5/5 - ")


def test_evaluate_prints_keras_3s_line(model, capsys):
    clone = keras.Sequential([keras.layers.Input(shape=(4,)), keras.layers.Dense(1)])
    clone.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    clone.set_weights(model.get_weights())
    clone.evaluate(X, Y, batch_size=8, verbose=2)
    theirs = capsys.readouterr().out
    model.evaluate(X, Y, batch_size=8, verbose=2)
    ours = capsys.readouterr().out
    assert TIMES.sub("T", ours) == TIMES.sub("T", theirs)
    model.evaluate(X, Y, batch_size=8, verbose=1)
    assert _final_line(capsys.readouterr().out).startswith("5/5 " + "━" * 20 + " T T/step - loss: ")
    model.evaluate(X, Y, batch_size=8, verbose=0, callbacks=[ProgbarLogger()])
    assert capsys.readouterr().out == ""  # a passed logger follows the call's verbose


def test_predict_shows_a_bar_when_verbose(model, capsys):
    model.predict(X, batch_size=8, verbose=1)
    assert _final_line(capsys.readouterr().out) == "5/5 " + "━" * 20 + " T T/step"
    model.predict(X, batch_size=8)  # Keras 3's default, verbose="auto": a bar too
    assert _final_line(capsys.readouterr().out) == "5/5 " + "━" * 20 + " T T/step"
    model.predict(X, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""
