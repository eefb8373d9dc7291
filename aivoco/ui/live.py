"""The live view: Rich `Live` drawing `call_view` ~10 times a second, sized to the terminal.

Three things keep the picture intact on a real terminal:
* each frame is written in one piece, inside the "synchronized output" markers (DEC
  private mode 2026; terminals without it ignore them), so a terminal never shows a
  frame drawn half-way;
* while the view is up, the terminal does not echo keys (termios ECHO off): a `^C`
  echoed after the last line would shift the frame by a line and leave a stale status
  line above the final frame. Echo is restored on every way out (including SIGTERM,
  which the command turns into a normal exit);
* the view fits the terminal (`call_view(..., width, height)`), so Rich never cuts the
  bottom (the newest transcript lines) with "...".
A terminal that goes away (hang-up) stops the drawing quietly.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.live import Live

from aivoco.session.state import CallState
from aivoco.ui.widgets import call_view

REFRESH_PER_SECOND = 10
SYNC_BEGIN = "\x1b[?2026h"
SYNC_END = "\x1b[?2026l"


class FrameWriter(io.TextIOBase):
    """A console file that sends each flushed frame in one write, wrapped in the
    synchronized-output markers. Rich flushes once per frame."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self._stream = stream
        self._parts: list[str] = []
        self.gone = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        data, self._parts = "".join(self._parts), []
        if not data or self.gone:
            return
        payload = (SYNC_BEGIN + data + SYNC_END).encode("utf-8", "backslashreplace")
        try:
            self._stream.flush()
            raw = getattr(self._stream, "buffer", None)
            if raw is None:
                self._stream.write(payload.decode("utf-8"))
                self._stream.flush()
                return
            raw.write(payload)
            raw.flush()
        except (OSError, ValueError):
            self.gone = True  # the terminal hung up: nothing more to draw on


class _NoEcho:
    """Turn the terminal's echo off on stdin while the view is up (POSIX terminals)."""

    def __init__(self) -> None:
        self._saved: Any = None

    def __enter__(self) -> _NoEcho:
        try:
            import termios

            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return self
            saved = termios.tcgetattr(fd)
            quiet = list(saved)
            quiet[3] &= ~(termios.ECHO | getattr(termios, "ECHOCTL", 0))
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._saved = (fd, saved)
        except (ImportError, OSError, ValueError, AttributeError):
            self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        import termios

        fd, saved = self._saved
        self._saved = None
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


class LiveView:
    """Renders the call state ~10 times a second; restores the terminal on any exit."""

    def __init__(self, state: CallState, console: Console | None = None) -> None:
        self.state = state
        self.writer: FrameWriter | None = None
        if console is None:
            self.writer = FrameWriter(sys.stdout)
            console = Console(file=self.writer)  # type: ignore[arg-type] # a TextIOBase
        self.console = console
        self._echo = _NoEcho()
        self._live = Live(
            get_renderable=self._frame,
            console=self.console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        )

    def _frame(self) -> Any:
        width, height = self.console.size
        return call_view(self.state.snapshot(), width, height)

    @property
    def gone(self) -> bool:
        return self.writer is not None and self.writer.gone

    def on_record(self, record: dict[str, Any]) -> None:
        """Records are not printed: the view reads the state instead."""

    def __enter__(self) -> LiveView:
        self._echo.__enter__()
        try:
            self._live.start(refresh=True)
        except BaseException:
            self._echo.__exit__()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._live.stop()
        finally:
            self._echo.__exit__()
