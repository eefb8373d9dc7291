"""Running a call from a command: pick the output mode, own Ctrl-C, print the summary.

Building and running the call is `aivoco.session`'s job (`open_call`); this module only
connects it to a terminal: the live view or a printer, the signal handling, the
summary table, and raising the call's error for `errors.guarded` to map to an exit code.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from aivoco.cli.keys import call_keys, check_push_to_talk, terminal_keys_possible
from aivoco.cli.options import OutputMode, OutputOptions, split_options
from aivoco.errors import AudioFileError
from aivoco.redact import RedactingFilter
from aivoco.session.lifecycle import EndReason
from aivoco.session.options import CallOptions
from aivoco.session.summary import CallSummary
from aivoco.wire.driver import ProtocolName

_POLL_S = 0.05


@contextmanager
def log_to_file(path: Path | None) -> Iterator[None]:
    """--log-file: every message at DEBUG, secrets masked by a filter on the handler."""
    if path is None:
        yield
        return
    try:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        raise AudioFileError(f"cannot write log file {path}: {exc.strerror or exc}") from exc
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(threadName)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("aivoco")
    previous = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


class _Interrupts:
    """SIGINT during a call: first press requests a hang-up, the second raises at once."""

    def __init__(self) -> None:
        self.count = 0
        self.requested = threading.Event()
        self._previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.requested.set()
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_command(protocol: ProtocolName, values: dict[str, Any], **extra: Any) -> CallSummary:
    """A call command's body: its option values -> a finished call (or its error)."""
    fields, output = split_options(dict(values))
    return run_call(CallOptions(protocol=protocol, **fields, **extra), output)


def run_call(
    options: CallOptions, output: OutputOptions, console: Console | None = None
) -> CallSummary:
    """Run one call to its end; raise its error (mapped to an exit code) if it failed."""
    from aivoco.session.build import open_call
    from aivoco.ui.live import JsonPrinter, LiveView, PlainPrinter
    from aivoco.ui.widgets import summary_table

    mode = output.mode()
    console = console or Console()
    # Keys (mute, volume, push-to-talk, hang up): live view on a terminal only (keys.py).
    keys = mode is OutputMode.LIVE and terminal_keys_possible()
    check_push_to_talk(options.push_to_talk, keys)
    with log_to_file(output.log_file):
        call = open_call(options)
        view: AbstractContextManager[Any] = nullcontext()
        if mode is OutputMode.JSON:
            call.subscribe(JsonPrinter())
        elif mode is OutputMode.PLAIN:
            call.subscribe(PlainPrinter())
        else:
            view = LiveView(call.state, console)
        with view, call_keys(call, keys):
            # close() runs inside the view, so its last frame shows the final state.
            try:
                with _Interrupts() as interrupts:
                    call.start(wait=False)
                    try:
                        while not call.wait(_POLL_S):
                            if interrupts.requested.is_set():
                                call.hang_up(EndReason.INTERRUPTED)
                    except KeyboardInterrupt:
                        call.abort()
                        raise
            finally:
                result = call.close()
    if mode is not OutputMode.JSON:
        console.print(summary_table(result.summary))
        if call.output_path is not None:
            console.print(f"agent audio written to {call.output_path}")
    if result.error is not None:
        raise result.error
    return result.summary
