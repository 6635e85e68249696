"""Where kfunc's progress bars and training messages go: standard output (interactive logging,
the default) or the ``logging`` module's ``"kfunc"`` logger at level INFO, for jobs on a server
whose output is collected by a logging setup (Keras 3's switches of the same names, which send
to ``absl.logging`` instead of the standard library's ``logging``).
"""

from __future__ import annotations

import logging
import sys

_interactive = True
LOGGER = logging.getLogger("kfunc")


def enable_interactive_logging() -> None:
    """Write progress bars and messages to standard output (the default)."""
    global _interactive
    _interactive = True


def disable_interactive_logging() -> None:
    """Send progress bars and messages to the ``logging`` logger ``"kfunc"`` (level INFO), one
    record per finished line; bars are never redrawn in place."""
    global _interactive
    _interactive = False


def is_interactive_logging_enabled() -> bool:
    """Whether messages go to standard output (True) or to the ``logging`` module (False)."""
    return _interactive


def print_msg(message: str, line_break: bool = True) -> None:
    """Write ``message`` to standard output (flushed) or, with interactive logging off, log it."""
    if not _interactive:
        LOGGER.info(message.rstrip("\n"))
        return
    text = message + "\n" if line_break else message
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:  # a terminal or file in an encoding without the bar's characters
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        sys.stdout.write(text.replace("━", "=").replace("─", ".").encode(encoding, "replace").decode(encoding))
    sys.stdout.flush()


def stdout_is_live() -> bool:
    """Whether a line can be redrawn in place: interactive logging to a terminal or a notebook."""
    isatty = getattr(sys.stdout, "isatty", None)
    return _interactive and ((isatty is not None and isatty()) or "ipykernel" in sys.modules)
