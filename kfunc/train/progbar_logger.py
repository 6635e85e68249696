"""``ProgbarLogger``: the callback that shows ``fit``, ``evaluate`` and ``predict`` progress with a
``Progbar`` (Keras 3's hooks and output)."""

from __future__ import annotations

from kfunc.interactive_logging import print_msg
from kfunc.train.callbacks import Callback
from kfunc.train.progress import Progbar


class ProgbarLogger(Callback):
    """Prints a progress bar per epoch (``Epoch 3/10`` above it when there are several), per
    ``evaluate`` and per ``predict``, at the ``verbose`` of the call. ``fit``, ``evaluate`` and
    ``predict`` add one when ``verbose`` is set and none is among their callbacks; one passed in
    callbacks is used instead. Validation inside ``fit`` is not shown.

    A display, not a participant: its batch hooks never make ``fit`` run one step per dispatch;
    they run when the loop reads the logs anyway (between compiled dispatches while a bar is
    redrawn live, after each batch when another callback needs every batch, and once at the end
    of an epoch of unknown length). When ``fit`` reports an epoch's logs after dispatching the
    next epoch (it does so when nothing else needs the host between epochs), this callback sees
    ``on_epoch_begin`` of the next epoch before ``on_epoch_end`` of the previous; it then writes
    the next epoch's header with its finished line, so the output reads in order.
    """

    shows_progress = True  # see CallbackList.uses_batch_hooks

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False
        self._open: dict[int, tuple[Progbar, bool]] = {}  # epoch -> (its bar, header already written)

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _new_progbar(self) -> Progbar:
        return Progbar(target=self.target, verbose=self.verbose, unit_name="step", stateless_metrics=set())

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = self._new_progbar()

    def _header(self, epoch: int) -> None:
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}")

    # ------------------------------------------------------------------ fit
    def on_train_begin(self, logs=None):
        self._called_in_fit = True  # validation inside fit is silent
        self._open = {}

    def on_train_end(self, logs=None):
        self._called_in_fit = False
        self._open = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        # An earlier epoch still open: fit reports late and this header goes with this epoch's line.
        write_now = not self._open
        if write_now:
            self._header(epoch)
        self._open[epoch] = (self.progbar, write_now)

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        progbar, header_written = self._open.pop(epoch, (self.progbar, True))
        if not header_written:
            self._header(epoch)
        self.progbar = progbar
        self._finalize_progbar(logs)

    # ------------------------------------------------------------------ evaluate
    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    # ------------------------------------------------------------------ predict
    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)  # the batch's outputs are not shown

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    # ------------------------------------------------------------------ the bar
    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.progbar.target is None:  # an epoch of unknown length: later ones are taken to be as long
            self.target = self.progbar.target = self.seen
        self.progbar.update(self.progbar.target, list((logs or {}).items()), finalize=True)


def with_progbar(callbacks, verbose) -> list:
    """``callbacks`` (a list) with a ``ProgbarLogger`` appended when ``verbose`` is set and none is
    among them, as Keras 3 adds one."""
    callbacks = list(callbacks or [])
    if verbose and not any(isinstance(c, ProgbarLogger) for c in callbacks):
        callbacks.append(ProgbarLogger())
    return callbacks
