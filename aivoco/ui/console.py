"""The Rich console for what commands print after a call (the summary, tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class QuietConsole(Console):
    """A console whose closed pipe is an ordinary `BrokenPipeError` for the command to
    end on quietly (aivoco/cli/errors.py): Rich's default exits with status 1, the code
    of an internal error here."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("the output was closed")


def make_console(**options: Any) -> Console:
    return QuietConsole(**options)
