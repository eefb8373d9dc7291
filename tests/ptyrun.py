"""Run the real `aivoco` command on a pseudo-terminal, and read the screen a user sees.

The command gets a pty of a given size as its controlling terminal (so Ctrl-C typed as
`\\x03` reaches it as SIGINT, as on a real terminal, echo included); what it writes is
kept raw and also fed to pyte, a VT100 emulator, whose screen is what a terminal would
show at the end. The pty's slave side stays open here, so its termios settings can be
read after the command exited (was echo restored?).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyte

Step = tuple[Callable[[bytes], bool], Callable[["PtyRun"], None]]


@dataclass
class PtyRun:
    proc: subprocess.Popen[bytes]
    master: int
    slave: int
    raw: bytearray = field(default_factory=bytearray)
    returncode: int | None = None
    echo_after: bool | None = None
    screen_lines: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    # (bytes of output read so far, columns, rows) at each resize(): pyte follows them
    resizes: list[tuple[int, int, int]] = field(default_factory=list)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, columns: int, rows: int) -> None:
        """A new terminal size, as a terminal window does it: the kernel sends SIGWINCH."""
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.resizes.append((len(self.raw), columns, rows))

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


def run_in_pty(
    args: list[str],
    *,
    env: dict[str, str],
    columns: int = 80,
    rows: int = 24,
    steps: list[Step] | None = None,
    timeout: float = 60.0,
    size_in_env: bool = True,
) -> PtyRun:
    """Run `aivoco ARGS`; each step's action runs once its condition on the output so
    far holds, in order. Returns after the command exited and its output was read.
    `size_in_env=False` leaves COLUMNS and LINES out: the size then comes from the
    terminal alone, and `PtyRun.resize` is seen."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    child_env = {**env, "COLUMNS": str(columns), "LINES": str(rows)}
    if not size_in_env:
        del child_env["COLUMNS"], child_env["LINES"]

    def controlling_tty() -> None:  # in the child, after setsid (start_new_session)
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "aivoco", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=child_env,
        start_new_session=True,
        preexec_fn=controlling_tty,  # noqa: PLW1509 - a test helper; no threads at stake
    )
    run = PtyRun(proc, master, slave)
    pending = list(steps or [])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                run.raw.extend(chunk)
            while pending and pending[0][0](bytes(run.raw)):
                pending.pop(0)[1](run)
            if proc.poll() is not None and not ready:
                break
        else:
            proc.kill()
            raise TimeoutError(f"aivoco {' '.join(args)} did not end within {timeout} s")
        run.returncode = proc.wait(timeout=10)
        run.echo_after = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
    finally:
        os.close(master)
        os.close(slave)
    screen = pyte.HistoryScreen(columns, rows, history=2000)
    stream = pyte.ByteStream(screen)
    fed = 0
    for at, new_columns, new_rows in run.resizes:
        stream.feed(bytes(run.raw[fed:at]))
        screen.resize(new_rows, new_columns)
        fed, columns = at, new_columns
    stream.feed(bytes(run.raw[fed:]))
    run.screen_lines = [line.rstrip() for line in screen.display]
    run.history = [_history_line(line, columns) for line in screen.history.top]
    return run


def _history_line(line: object, columns: int) -> str:
    chars = line  # a pyte StaticDefaultDict: column -> Char
    return "".join(chars[x].data for x in range(columns)).rstrip()  # type: ignore[index]


_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def seen(text: str) -> Callable[[bytes], bool]:
    """Once `text` was written (styles between its characters ignored)."""
    needle = text.encode()
    return lambda out: needle in _ANSI.sub(b"", out)
