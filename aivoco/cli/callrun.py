"""Running a call from a command: shared by `aivoco sts`, `aivoco call` and `aivoco demo`.

Builds the source and player from the options, opens the output files before
connecting (bad paths fail fast), runs the session under the chosen output mode, owns
Ctrl-C (first: graceful hang-up; second: leave at once) and prints the summary.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from aivoco.audio.files import FileSource
from aivoco.audio.playout import ClockPlayer
from aivoco.errors import AudioFileError, DeviceError, PortAudioMissingError, UsageError
from aivoco.redact import RedactingFilter
from aivoco.session.core import CallSession, SessionOptions
from aivoco.session.events import Driver
from aivoco.session.interfaces import FunctionRunner, PlayerLike, Source
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.ui.live import JsonPrinter, LiveView, PlainPrinter
from aivoco.ui.widgets import summary_table


@dataclass
class CommonOptions:
    input_device: str | None = None
    output_device: str | None = None
    input_file: Path | None = None
    output_file: Path | None = None
    record_file: Path | None = None
    transcript_file: Path | None = None
    idle_timeout_s: float = 3.0
    max_duration_s: float | None = None
    chunk_ms: int = 20
    plain: bool = False
    json: bool = False
    log_file: Path | None = None
    function_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    speaker_fallback_file: Path | None = None

    def validate(self) -> None:
        if self.plain and self.json:
            raise UsageError("--plain and --json cannot be used together")
        if self.input_file is not None and self.input_device is not None:
            raise UsageError("--input and --input-device cannot be used together")
        if self.output_file is not None and self.output_device is not None:
            raise UsageError("--output and --output-device cannot be used together")
        outputs = [p for p in (self.output_file, self.record_file, self.transcript_file) if p]
        if self.input_file is not None and any(_same_file(self.input_file, p) for p in outputs):
            raise UsageError("an output file would overwrite the --input file")

    def mode(self) -> str:
        if self.json:
            return "json"
        if self.plain or not sys.stdout.isatty():
            return "plain"
        return "live"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


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


def build_source(opts: CommonOptions, rate_hz: int) -> tuple[Source, str]:
    if opts.input_file is not None:
        return FileSource(opts.input_file, rate_hz, opts.chunk_ms), str(opts.input_file)
    from aivoco.audio.engine import MicCapture

    mic = MicCapture(opts.input_device, rate_hz, opts.chunk_ms)
    return mic, f"mic {mic.device.name} @ {mic.device_rate_hz} Hz"


def build_player(opts: CommonOptions, rate_hz: int) -> tuple[PlayerLike, str, Path | None]:
    """(player, label, file written) for --output FILE or the speaker.

    With `speaker_fallback_file` (the demo), a speaker that cannot be opened is
    replaced by that file instead of failing the call.
    """
    if opts.output_file is not None:
        return ClockPlayer(rate_hz, opts.output_file), str(opts.output_file), opts.output_file
    from aivoco.audio.engine import DevicePlayer

    try:
        spk: DevicePlayer[str] = DevicePlayer(opts.output_device)
    except (PortAudioMissingError, DeviceError) as exc:
        fallback = opts.speaker_fallback_file
        if fallback is None:
            raise
        label = f"{fallback} (no speaker: {exc})"
        return ClockPlayer(rate_hz, fallback), label, fallback
    return spk, f"speaker {spk.device.name} @ {spk.clock_rate_hz} Hz", None


class _Interrupts:
    """SIGINT while live: first press requests a hang-up, the second raises at once."""

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


def run_call(
    driver: Driver,
    opts: CommonOptions,
    label: str,
    functions: FunctionRunner | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run one call to its end; raise its error (mapped to an exit code) if it failed."""
    opts.validate()
    console = console or Console()
    mode = opts.mode()
    with log_to_file(opts.log_file):
        source, in_label = build_source(opts, driver.uplink_rate_hz)
        try:
            player, out_label, written = build_player(opts, driver.downlink_rate_hz)
        except BaseException:
            source.close()
            raise
        state = CallState(
            driver.protocol,
            driver.endpoint,
            label,
            has_credits=driver.has_credits,
            input_label=in_label,
            output_label=out_label,
        )
        bus = RecordBus()
        view: LiveView | None = None
        if mode == "json":
            bus.subscribe(JsonPrinter())
        elif mode == "plain":
            bus.subscribe(PlainPrinter())
        else:
            view = LiveView(state, console)
        session = CallSession(
            driver,
            source,
            player,
            state=state,
            bus=bus,
            options=SessionOptions(
                chunk_ms=opts.chunk_ms,
                idle_timeout_s=opts.idle_timeout_s,
                max_duration_s=opts.max_duration_s,
                function_timeout_s=opts.function_timeout_s,
                connect_timeout_s=opts.connect_timeout_s,
                record_path=opts.record_file,
                transcript_path=opts.transcript_file,
            ),
            functions=functions,
        )
        with view if view is not None else nullcontext():
            # close() runs inside the view, so its last frame shows the final state.
            try:
                session.open_files()
                session.start()
                with _Interrupts() as interrupts:
                    try:
                        while not session.done.wait(0.05):
                            if interrupts.requested.is_set():
                                session.request_hangup("interrupted")
                    except KeyboardInterrupt:
                        session.abort()
                        raise
            finally:
                result = session.close()
    if mode != "json":
        console.print(summary_table(result.summary))
        if written is not None:
            console.print(f"agent audio written to {written}")
    if result.error is not None:
        raise result.error
    return result.summary
