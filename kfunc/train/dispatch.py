"""How many training steps each dispatch of the compiled loop runs."""

from __future__ import annotations

DISPATCH_SECONDS = 0.15  # with a progress bar, aim for this much work per dispatch


class DispatchPlanner:
    """How many steps the next dispatch runs: ``steps_per_execution`` if set (callbacks' batch
    hooks then fire once per execution, as in Keras 3); otherwise one when the host needs every
    step's logs; the rest of the epoch when nothing is shown; otherwise enough for about
    ``DISPATCH_SECONDS`` so the progress bar moves a few times a second. With ``stop_every=n``
    (mid-epoch backups) no dispatch runs past a multiple of ``n`` steps."""

    def __init__(self, steps_per_execution, *, every_step: bool, live_display: bool, stop_every: int | None = None):
        self.fixed = None if steps_per_execution == "auto" else int(steps_per_execution)
        self.every_step, self.live_display = every_step, live_display
        self.stop_every = stop_every
        self.seconds_per_step: float | None = None

    @property
    def one_at_a_time(self) -> bool:
        """Every dispatch is one step: compile that step alone."""
        return self.fixed == 1 or (self.every_step and self.fixed is None)

    @property
    def steps_per_callback(self) -> int:
        """Steps between two ``on_train_batch_end`` calls: one execution (Keras 3)."""
        return self.fixed or 1

    def next(self, remaining: int, step: int) -> int:
        """Steps for the next dispatch, ``remaining`` left in the epoch, ``step`` done in the run."""
        if self.stop_every is not None:
            remaining = min(remaining, self.stop_every - step % self.stop_every)
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if self.every_step:
            return 1
        if not self.live_display:
            return remaining
        if self.seconds_per_step is None:
            return 1
        return max(1, min(remaining, int(DISPATCH_SECONDS / max(self.seconds_per_step, 1e-7))))

    def at_stop(self, step: int) -> bool:
        """Whether the run has just reached a multiple of ``stop_every`` steps."""
        return self.stop_every is not None and step % self.stop_every == 0

    def observe(self, steps: int, seconds: float) -> None:
        if steps:
            self.seconds_per_step = seconds / steps
