"""Keys during a live call: the terminal in cbreak mode, one reader thread, restored on exit.

Only with the live view, and only when stdin and stdout are both terminals: `--plain`,
`--json` and pipes never touch the terminal mode. POSIX terminals (termios); elsewhere
the call runs without keys and the view does not offer them.

The terminal's settings are saved first and restored on every way out of the block:
the call's end, an exception, a second Ctrl-C (KeyboardInterrupt passes through the
`with`), and interpreter exit (atexit) as a last resort; also while the call is
suspended (Ctrl-Z), and taken again when it continues. In between, ECHO and ICANON are
off, so keys are read one at a time and never reach the screen; ISIG stays on, so Ctrl-C
is still SIGINT and keeps its meaning (hang up, twice: leave). Escape sequences (arrow
and function keys) are consumed whole and ignored, never read as letters.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from types import FrameType
from typing import Any

from aivoco.errors import UsageError

log = logging.getLogger("aivoco.cli")

_POLL_S = 0.1


class Key(Enum):
    MUTE = "mute"
    VOLUME_UP = "volume up"
    VOLUME_DOWN = "volume down"
    PUSH_TO_TALK = "push-to-talk"
    OPEN_MIC = "open mic"
    HANG_UP = "hang up"
    HELP = "help"


KEYMAP = {
    "m": Key.MUTE,
    "M": Key.MUTE,
    "+": Key.VOLUME_UP,
    "=": Key.VOLUME_UP,  # `+` without shift on most layouts
    "-": Key.VOLUME_DOWN,
    "_": Key.VOLUME_DOWN,
    " ": Key.PUSH_TO_TALK,
    "o": Key.OPEN_MIC,
    "O": Key.OPEN_MIC,
    "q": Key.HANG_UP,
    "Q": Key.HANG_UP,
    "?": Key.HELP,
    "h": Key.HELP,
}


class KeyParser:
    """Bytes typed -> keys, with escape sequences (ESC [ ... final, ESC O x, ESC x)
    skipped whole, also when a read splits them."""

    def __init__(self) -> None:
        self._state = ""  # "" | "esc" | "csi" | "ss3"

    def feed(self, text: str) -> list[Key]:
        keys: list[Key] = []
        for ch in text:
            if self._state == "esc":
                self._state = "csi" if ch == "[" else "ss3" if ch == "O" else ""
            elif self._state == "csi":
                if "@" <= ch <= "~":  # the final byte of a control sequence
                    self._state = ""
            elif self._state == "ss3":
                self._state = ""
            elif ch == "\x1b":
                self._state = "esc"
            elif ch in KEYMAP:
                keys.append(KEYMAP[ch])
        return keys


def terminal_keys_possible() -> bool:
    """stdin and stdout are terminals on a POSIX system."""
    try:
        import termios  # noqa: F401
    except ImportError:
        return False
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class KeyReader:
    """Reads keys from `fd` on a daemon thread and hands each to `on_key`."""

    def __init__(self, on_key: Callable[[Key], object], fd: int) -> None:
        self.on_key = on_key
        self.fd = fd
        self._saved: list[Any] | None = None
        self._keys_mode: list[Any] | None = None
        self._previous_tstp: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aivoco-keys", daemon=True)
        self._parser = KeyParser()

    def __enter__(self) -> KeyReader:
        import termios

        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ECHO | termios.ICANON)  # lflags: no echo, byte by byte
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        self._keys_mode = mode
        atexit.register(self.restore)
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        self._handle_suspend()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        if self._previous_tstp is not None:
            signal.signal(signal.SIGTSTP, self._previous_tstp)
            self._previous_tstp = None
        self.restore()

    def _handle_suspend(self) -> None:
        """Ctrl-Z: give the shell its terminal back before stopping, and take the keys
        mode again when continued (`fg`); shells do not do either for us."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_tstp = signal.signal(signal.SIGTSTP, self._on_suspend)

    def _on_suspend(self, signum: int, frame: FrameType | None) -> None:
        import termios

        saved, mode = self._saved, self._keys_mode
        with contextlib.suppress(termios.error):
            if saved is not None:
                termios.tcsetattr(self.fd, termios.TCSANOW, saved)
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)  # stops here until continued
            signal.signal(signal.SIGTSTP, self._on_suspend)
            if mode is not None and self._saved is not None:
                termios.tcsetattr(self.fd, termios.TCSANOW, mode)

    def restore(self) -> None:
        """Put the terminal back as it was (idempotent)."""
        saved, self._saved = self._saved, None
        if saved is None:
            return
        import termios

        # TCSAFLUSH also drops keys typed but not read, so they cannot land in the shell
        # after the call. A terminal that is gone (closed window) needs no restoring.
        with contextlib.suppress(termios.error):
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, saved)
        atexit.unregister(self.restore)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], _POLL_S)
                if not ready:
                    continue
                data = os.read(self.fd, 64)
            except (OSError, ValueError):
                return  # the terminal went away; the call goes on without keys
            if not data:
                return  # end of input
            for key in self._parser.feed(data.decode("utf-8", "replace")):
                try:
                    self.on_key(key)
                except Exception:  # a key must never take the reader (or the call) down
                    log.exception("internal error handling the %s key", key.value)


def check_push_to_talk(push_to_talk: bool, keys: bool) -> None:
    """--push-to-talk starts with the microphone closed: without keys it would stay so."""
    if push_to_talk and not keys:
        raise UsageError(
            "--push-to-talk needs the keys of the live view: stdin and stdout must be a "
            "terminal, without --plain or --json"
        )


@contextmanager
def call_keys(call: Any, enabled: bool) -> Iterator[KeyReader | None]:
    """Keys for `call` (a session.Call) while the block runs, if `enabled`."""
    if not enabled:
        yield None
        return
    from aivoco.session.lifecycle import EndReason

    controls = call.controls
    actions: dict[Key, Callable[[], object]] = {
        Key.MUTE: controls.toggle_mute,
        Key.VOLUME_UP: lambda: controls.step_volume(1),
        Key.VOLUME_DOWN: lambda: controls.step_volume(-1),
        Key.PUSH_TO_TALK: controls.push_to_talk,
        Key.OPEN_MIC: controls.open_mic,
        Key.HANG_UP: lambda: call.hang_up(EndReason.HANGUP),
        Key.HELP: controls.toggle_help,
    }
    with KeyReader(lambda key: actions[key](), sys.stdin.fileno()) as reader:
        controls.set_keys_active(True)
        try:
            yield reader
        finally:
            controls.set_keys_active(False)
