"""``Progbar``: the progress bar of ``fit``, ``evaluate`` and ``predict`` (through
``ProgbarLogger``) and of user loops, with Keras 3's arguments, averaging and line format.

``verbose=1``: ``12/50 ━━━━━━━━━━━━━━━━━━━━ 3s 81ms/step - loss: 0.4213`` (the time left while
running, the time taken once finished), redrawn in place on a terminal or in a notebook; elsewhere
(a file, a pipe, interactive logging off) only the finished line is written, with no carriage
returns. ``verbose=2``: one line when finished, ``50/50 - 4s - 80ms/step - loss: 0.4213``.
``verbose=0``: nothing. Values are averaged over the steps they were given for (weighted by the
steps each covers), except the ``stateful_metrics``, shown as given; a finishing update shows
the values it is given, as Keras does.
"""

from __future__ import annotations

import re
import time

import numpy as np

from kfunc.errors import ArgumentError
from kfunc.interactive_logging import print_msg, stdout_is_live

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOLD, _GREEN, _WHITE, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


def _number(value) -> str:
    value = float(np.mean(value))  # a per-class metric (F1Score(average=None)) shows its mean, as in Keras
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _time_left(seconds: float) -> str:
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _per_unit(seconds: float, unit: str) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


class Progbar:
    """A progress bar over ``target`` steps (``None``: unknown, shown as ``12/Unknown``).

    ``update(current, values)`` after step ``current`` (1-based) with ``values`` a list of
    ``(name, value)`` pairs (or a dict); ``add(n, values)`` advances by ``n`` steps. ``interval``:
    the fewest seconds between two redraws. ``stateful_metrics``: names shown as given rather than
    averaged; ``stateless_metrics``: the names that are averaged, every other one shown as given
    (pass one of the two). ``unit_name``: the unit of the time per step (``"step"``, ``"sample"``).
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None, stateless_metrics=None,
                 unit_name="step"):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ArgumentError(
                "Progbar: pass stateful_metrics (the names shown as given) or stateless_metrics (the names averaged), "
                f"not both; received stateful_metrics={stateful_metrics!r} and stateless_metrics={stateless_metrics!r}."
            )
        self.target, self.width, self.verbose = target, width, verbose
        self.interval, self.unit_name = interval, unit_name
        self.stateful_metrics = None if stateless_metrics is not None else set(stateful_metrics or ())
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        self._dynamic_display = stdout_is_live()
        self._seen_so_far = 0
        self._values: dict[str, list] = {}  # name -> [weighted sum, steps], in first-seen order
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def _averaged(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def update(self, current, values=None, finalize=None):
        """Record step ``current`` and ``values`` (``(name, value)`` pairs: the value of the last
        step for averaged names); redraw (``verbose=1``) unless less than ``interval`` seconds
        passed. ``finalize`` (default: ``current >= target``) writes the finished line."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        pairs = values.items() if isinstance(values, dict) else (values or [])
        for name, value in pairs:
            if self._averaged(name) and not finalize:
                steps = max(current - self._seen_so_far, 1)  # at least 1: a repeated update still counts
                total = self._values.setdefault(name, [0.0, 0])
                total[0], total[1] = total[0] + value * steps, total[1] + steps
            else:
                self._values[name] = [value, 1]
        self._seen_so_far = current
        now = time.time()
        per_step = self._step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            if self._dynamic_display or finalize:
                self._write_bar(current, now, per_step, finalize)
        elif self.verbose == 2 and finalize and self.target is not None and self.target > 0:
            digits = len(str(self.target))
            print_msg(f"{current:>{digits}}/{self.target} - {now - self._start:.0f}s - "
                      f"{_per_unit(per_step, self.unit_name)}{self._shown_values()}")
        self._last_update = now

    def add(self, n, values=None):
        """Advance by ``n`` steps: ``update(steps so far + n, values)``."""
        self.update(self._seen_so_far + n, values)

    def _shown_values(self) -> str:
        return "".join(f" - {name}: {_number(total / max(1, count))}" for name, (total, count) in self._values.items())

    def _write_bar(self, current, now: float, per_step: float, finalize: bool) -> None:
        color = self._dynamic_display  # ANSI colors only where the line is drawn on a terminal

        def styled(text: str, style: str) -> str:
            return f"{style}{text}{_RESET}" if color else text

        known = self.target is not None and self.target > 0
        if known:
            digits = len(str(self.target))
            done = min(int(self.width * current / self.target), self.width)
            # Without colors the part still to run is drawn lighter, so the line reads as a bar.
            rest = "━" if color else "─"
            bar = (styled(f"{current:>{digits}}/{self.target}", _BOLD) + " "
                   + (styled("━" * done, _GREEN) if done else "") + styled(rest * (self.width - done), _WHITE))
        else:
            bar = f"{current:7d}/Unknown"
        shown = _time_left(per_step * (self.target - current)) if known and not finalize else f"{now - self._start:.0f}s"
        line = f"{bar} {styled(shown, _BOLD)} {_per_unit(per_step, self.unit_name)}{self._shown_values()}"
        width = len(_ANSI.sub("", line))
        if self._dynamic_display:
            padding = " " * max(self._prev_total_width - width, 0)
            print_msg("\r" + line + padding + ("\n" if finalize else ""), line_break=False)
        else:
            print_msg(line)
        self._prev_total_width = width

    def _step_duration(self, current, now: float) -> float:
        """Seconds per step; past the first step, the first (often a compilation) is left out."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_step = (now - self._time_after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_step
