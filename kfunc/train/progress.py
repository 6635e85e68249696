"""The progress display of fit and evaluate, in Keras's format.

``verbose=1``: a bar updated in place with ETA and running logs on a terminal; when the output
is not a terminal, only the finished line of each epoch (no carriage returns).
``verbose=2``: one line per epoch. ``verbose=0``: nothing.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {_number(v)}" for k, v in logs.items())


def _number(value) -> str:
    value = float(np.mean(value))  # a per-class metric (F1Score(average=None)) shows its mean, as in Keras
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4e}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    if seconds >= 1:
        return f"{seconds:.0f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}us"


class Progress:
    """One epoch's display. ``update(step, logs)`` after each dispatch; ``finish(logs)`` at the end."""

    def __init__(self, total_steps: int | None, verbose: int, stream=None):
        self.total = total_steps
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.interactive = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.start = time.perf_counter()
        self.width = 30

    def header(self, epoch: int, epochs: int) -> None:
        if self.verbose:
            self.stream.write(f"Epoch {epoch + 1}/{epochs}\n")
            self.stream.flush()

    def _bar(self, step: int) -> str:
        if not self.total:
            return f"{step}"
        done = int(self.width * step / self.total)
        arrow = ">" if step < self.total else "="
        bar = "=" * max(done - 1, 0) + (arrow if done else "") + "." * (self.width - done)
        digits = len(str(self.total))
        return f"{step:>{digits}}/{self.total} [{bar}]"

    def update(self, step: int, logs: dict | None) -> None:
        if not self.interactive:
            return
        elapsed = time.perf_counter() - self.start
        line = self._bar(step)
        if self.total and step < self.total:
            line += f" - ETA: {_duration(elapsed / max(step, 1) * (self.total - step))}"
        if logs:
            line += " - " + format_logs(logs)
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def finish(self, step: int, logs: dict) -> None:
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.start
        per_step = _duration(elapsed / max(step, 1)) + "/step"
        text = f"{_duration(elapsed)} {per_step}"
        if logs:
            text += " - " + format_logs(logs)
        if self.verbose == 1:
            text = self._bar(step) + " - " + text
        self.stream.write(("\r" if self.interactive else "") + text + ("\x1b[K" if self.interactive else "") + "\n")
        self.stream.flush()
