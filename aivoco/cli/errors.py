"""How a command ends: a friendly message on stderr and the exit code.

The exception -> exit code table is `aivoco.errors.exit_code_for` (the session uses the
same one for its `error` records). `guarded()` prints the message (secrets redacted,
control characters shown, never interpreted) and exits with the code. Anything else is a
bug: a short message that asks for a report, the traceback only with AIVOCO_DEBUG=1.

Output that cannot be written (stdout piped into `head`, a terminal that went away)
ends the command quietly, as Unix tools do: that is not an error of ours to report.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import typer

from aivoco.errors import AivocoError, ExitCode, error_label, exit_code_for
from aivoco.redact import redact
from aivoco.text import terminal_safe

__all__ = ["ExitCode", "SignalExit", "exit_code_for", "guarded", "report", "user_message"]

R = TypeVar("R")
_GONE = (errno.EPIPE, errno.EIO, errno.ENXIO)  # the reader or the terminal went away


class SignalExit(BaseException):
    """SIGTERM/SIGHUP ended the command: after a graceful hang-up (`graceful`), or at
    once on a second signal. The exit code is 128 + the signal's number."""

    def __init__(self, signum: int, graceful: bool = False) -> None:
        super().__init__(signum)
        self.signum = signum
        self.graceful = graceful

    @property
    def code(self) -> int:
        return 128 + int(self.signum)

    def describe(self) -> str:
        name = signal.Signals(self.signum).name
        if self.graceful:
            return f"aivoco: {name} received; the call was hung up"
        return f"aivoco: {name} received again; left at once"


def user_message(exc: BaseException) -> str:
    """`label: message`, as printed on stderr and kept in records (redacted, one line,
    the label not repeated when the message already starts with it)."""
    label = error_label(exc)
    text = redact(str(exc)) if isinstance(exc, AivocoError) else redact(repr_error(exc))
    if text.casefold().startswith(label.casefold()):
        return text
    return f"{label}: {text}"


def repr_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _write_err(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr is gone too: the exit code is all that is left


def _styled(text: str, style: str) -> str:
    """Bold red / yellow on a terminal that can show it, plain elsewhere."""
    use = sys.stderr.isatty() and os.environ.get("TERM", "") not in ("dumb", "unknown")
    if not use or "NO_COLOR" in os.environ:
        return text
    codes = {"error": "1;31", "warning": "33"}[style]
    return f"\x1b[{codes}m{text}\x1b[0m"


def report(exc: BaseException) -> ExitCode:
    """Print a friendly, redacted, terminal-safe message for `exc`; return its code."""
    code = exit_code_for(exc)
    if isinstance(exc, AivocoError):
        message = terminal_safe(user_message(exc))
        head, _, rest = message.partition(": ")
        _write_err(f"{_styled('aivoco: ' + head + ':', 'error')} {rest}" if rest else message)
    elif code is ExitCode.INTERRUPTED:
        _write_err(_styled("aivoco: interrupted", "warning"))
    else:
        detail = terminal_safe(redact(repr_error(exc)))
        _write_err(
            f"{_styled('aivoco: internal error:', 'error')} {detail}\n"
            "This is a bug in aivoco; please report it (set AIVOCO_DEBUG=1 for a traceback)."
        )
        if os.environ.get("AIVOCO_DEBUG"):
            tb = "".join(traceback.format_exception(exc))
            _write_err(terminal_safe(redact(tb), one_line=False))
    return code


def output_gone(exc: BaseException) -> bool:
    """True for a write to a closed pipe or a vanished terminal."""
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno in _GONE and not isinstance(exc, AivocoError)
    )


def quiet_exit_for_closed_output() -> None:
    """Stdout's reader is gone: stop writing there, also at interpreter exit (whose
    final flush would raise BrokenPipeError again), as Python's docs advise."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def guarded(fn: Callable[[], R]) -> R:
    """Run a command body; map any failure to its message and exit code."""
    try:
        return fn()
    except (typer.Exit, typer.Abort):
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, SignalExit):
            _write_err(_styled(exc.describe(), "warning"))
            raise typer.Exit(exc.code) from None
        if output_gone(exc):
            quiet_exit_for_closed_output()
            # 141 = 128 + SIGPIPE: what a shell reports for a tool killed by the closed pipe.
            raise typer.Exit(128 + 13) from None
        code = report(exc)
        raise typer.Exit(int(code)) from None
