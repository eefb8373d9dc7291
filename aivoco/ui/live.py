"""The live view: the call state drawn on the terminal, only what changed, and sized to it.

What it costs (issue 13, bench/RESULTS.md): one thread (`aivoco-view`) wakes 10 times a
second, builds the frame from a snapshot, rebuilding only the parts whose content
changed (aivoco/ui/frame.py), and writes only the lines that differ from the screen
(aivoco/ui/screen.py). So the meters, the phase, the controls line and the transcript
show within 0.1 s; the clock and the running figures, which change with time alone, are
redrawn twice a second; an idle call writes nothing but its clock. Every `REPAINT_S`
the whole frame is drawn again, so a stray message from another program on the
terminal does not stay.

Three things keep the picture intact on a real terminal:
* each update is written in one piece, inside the "synchronized output" markers (DEC
  private mode 2026; terminals without it ignore them), so a terminal never shows a
  frame drawn half-way;
* while the view is up, the terminal does not echo keys (termios ECHO off): a `^C`
  echoed after the last line would shift the frame by a line and leave a stale status
  line above the final frame. Echo and the cursor are restored on every way out
  (including SIGTERM, which the command turns into a normal exit);
* the view fits the terminal (frame.py), and a new terminal size (SIGWINCH: the size is
  read on every frame) draws the frame whole, from the top-left corner.
A terminal that goes away (hang-up) stops the drawing quietly. Consoles that cannot be
driven with escape sequences (legacy Windows consoles) keep Rich's `Live`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.live import Live

from aivoco.session.state import CallState
from aivoco.ui.frame import FrameBuilder
from aivoco.ui.screen import HIDE_CURSOR, SHOW_CURSOR, Screen
from aivoco.ui.widgets import call_view

FRAME_S = 0.1  # 10 frames a second (the clock and running figures: 2, frame.py)
REPAINT_S = 10.0  # the whole frame again
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
    """Draws the call state until exit; restores the terminal on any exit."""

    def __init__(self, state: CallState, console: Console | None = None) -> None:
        self.state = state
        self.writer: FrameWriter | None = None
        if console is None:
            self.writer = FrameWriter(sys.stdout)
            console = Console(file=self.writer)  # type: ignore[arg-type] # a TextIOBase
        self.console = console
        self._echo = _NoEcho()
        self.screen = Screen(console)
        self._rich: Live | None = None
        if console.legacy_windows or not console.is_terminal:
            self._rich = Live(
                get_renderable=self._rich_frame,
                console=console,
                refresh_per_second=1 / FRAME_S,
                redirect_stdout=False,
                redirect_stderr=False,
                vertical_overflow="crop",
            )
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aivoco-view", daemon=True)
        self._failed: BaseException | None = None
        self._lock = threading.Lock()  # one writer: the thread, or the way out
        self._builder = FrameBuilder()
        self._repainted_at = 0.0

    @property
    def gone(self) -> bool:
        return self.writer is not None and self.writer.gone

    def on_record(self, record: dict[str, Any]) -> None:
        """Records are not printed: the view reads the state instead."""

    # -- drawing -----------------------------------------------------------------------
    def draw(self, now: float, final: bool = False) -> str:
        """The output that brings the screen up to the state ('' if nothing changed).
        `final` builds every part afresh (the last frame shows the exact end state)."""
        size = self.console.size
        builder = FrameBuilder() if final else self._builder
        lines = builder.frame(self.state.snapshot(), size.width, size.height, now)
        repaint = now >= self._repainted_at + REPAINT_S
        if repaint:
            self._repainted_at = now
        return self.screen.update(lines, (size.width, size.height), repaint=repaint)

    def _write(self, text: str) -> None:
        if text and not self.gone:
            self.console.file.write(text)
            self.console.file.flush()  # FrameWriter: one write, in the sync markers

    def _run(self) -> None:
        try:
            while not self._done.wait(FRAME_S) and not self.gone:
                with self._lock:
                    if not self._done.is_set():
                        self._write(self.draw(time.monotonic()))
        except BaseException as exc:  # a bug: shown when the view ends, not mid-frame
            self._failed = exc

    def _rich_frame(self) -> Any:
        width, height = self.console.size
        return call_view(self.state.snapshot(), width, height)

    # -- the terminal ------------------------------------------------------------------
    def __enter__(self) -> LiveView:
        self._echo.__enter__()
        try:
            if self._rich is not None:
                self._rich.start(refresh=True)
                return self
            now = time.monotonic()
            self._write(HIDE_CURSOR + self.draw(now, final=True))
            self._thread.start()
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._rich is not None:
                self._rich.stop()
                return
            self._done.set()
            if self._thread.is_alive() and self._thread is not threading.current_thread():
                self._thread.join()
        finally:
            self._restore(final=self._failed is None)
        if self._failed is not None and exc is None:
            raise self._failed

    def _restore(self, final: bool = False) -> None:
        """The final state drawn whole (`final`), the cursor below the view and visible
        again, the terminal's echo back: in one write, whatever fails on the way."""
        try:
            if self._rich is None:
                with self._lock:
                    out = ""
                    try:
                        if final:
                            out = self.draw(time.monotonic(), final=True)
                    finally:
                        self._write(out + self.screen.leave() + SHOW_CURSOR)
        finally:
            self._echo.__exit__()
