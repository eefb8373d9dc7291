"""Running a call from a command: pick the output mode, own the signals, print the summary.

Building and running the call is `aivoco.session`'s job (`open_call`); this module only
connects it to a terminal: the live view or a printer, the signal handling, the
summary table, and raising the call's error for `errors.guarded` to map to an exit code.

Signals: SIGINT (Ctrl-C), SIGTERM (`timeout`, `docker stop`, CI cancellation) and
SIGHUP (the terminal closed) all end a call the same way: the first asks for a graceful
hang-up (the protocol's goodbye, a bounded wait for the server's totals, the summary,
final records), a second leaves at once. After SIGTERM or SIGHUP the command exits with
128 + the signal's number (143, 129) unless the call failed with an error of its own.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from aivoco.cli.errors import SignalExit, user_message
from aivoco.cli.keys import call_keys, check_push_to_talk, terminal_keys_possible
from aivoco.cli.options import OutputMode, OutputOptions, split_options
from aivoco.errors import AivocoError, AudioFileError
from aivoco.redact import MIN_SAFE_LENGTH, RedactingFilter, is_short
from aivoco.session.lifecycle import EndReason
from aivoco.session.options import CallOptions
from aivoco.session.report import CallReport, prepare_report
from aivoco.session.summary import CallSummary
from aivoco.text import terminal_safe
from aivoco.wire.driver import ProtocolName

if TYPE_CHECKING:
    from aivoco.session.call import Call, CallResult

# How often the main thread looks at signals, a closed output and log errors while the
# call runs: a Ctrl-C is acted on within this (the handler only sets a flag).
_POLL_S = 0.1
PRINTER_ABORT_WAIT_S = 2.0  # records still queued when a run is torn down: a short wait
_SIGNALS = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
    if s is not None
)  # fmt: skip


class _SafeFormatter(logging.Formatter):
    """Log lines as a terminal may show them (`tail -f`): peer text cannot drive it."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record), one_line=False)


class LogFileHandler(logging.FileHandler):
    """--log-file: a write that fails (a full disk) is remembered once, as a file error
    the call ends with, and nothing more is attempted; logging's own handleError would
    print a traceback for every record after it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8", errors="backslashreplace")
        self.error: AudioFileError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.error is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        exc = sys.exc_info()[1]
        if self.error is None:
            reason = getattr(exc, "strerror", None) or exc
            self.error = AudioFileError(f"cannot write log file {self.baseFilename}: {reason}")
        with suppress(OSError):
            self.close()


@contextmanager
def log_to_file(path: Path | None) -> Iterator[LogFileHandler | None]:
    """--log-file: every message at DEBUG, secrets masked by a filter on the handler."""
    if path is None:
        yield None
        return
    try:
        handler = LogFileHandler(path)
    except OSError as exc:
        raise AudioFileError(f"cannot write log file {path}: {exc.strerror or exc}") from exc
    handler.setFormatter(
        _SafeFormatter("%(asctime)s %(levelname)-7s %(name)s %(threadName)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("aivoco")
    previous = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        with suppress(OSError):
            handler.close()


class _Signals:
    """SIGINT/SIGTERM/SIGHUP during a call: the first requests a graceful hang-up, a
    second leaves at once (KeyboardInterrupt for Ctrl-C, SignalExit for the others)."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.requested = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.first is None:
            self.first = signum
            self.requested.set()
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SignalExit(signum)

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous.clear()

    @property
    def reason(self) -> EndReason:
        return EndReason.INTERRUPTED if self.first == signal.SIGINT else EndReason.HANGUP

    def exit_signal(self) -> int | None:
        """The signal whose exit code the command ends with (not Ctrl-C: a normal end)."""
        return None if self.first in (None, signal.SIGINT) else self.first


def run_command(protocol: ProtocolName, values: dict[str, Any], **extra: Any) -> CallSummary:
    """A call command's body: its option values -> a finished call (or its error)."""
    from aivoco.cli.configured import with_config

    values = with_config(values, command=protocol.value, protocol=protocol)
    fields, output = split_options(values)
    return run_call(CallOptions(protocol=protocol, **fields, **extra), output)


def _warn_short_key(options: CallOptions) -> None:
    key = (options.key or "").strip()
    if is_short(key):
        sys.stderr.write(
            f"aivoco: warning: the API key has {len(key)} characters; keys shorter than "
            f"{MIN_SAFE_LENGTH} are masked in output only where they stand alone\n"
        )


def run_call(options: CallOptions, output: OutputOptions, console: Any = None) -> CallSummary:
    """Run one call to its end; raise its error (mapped to an exit code) if it failed."""
    from aivoco.ui.printers import JsonPrinter

    mode = output.mode()
    printer = JsonPrinter() if mode is OutputMode.JSON else None
    try:
        options.check(extra_outputs={"--log-file": output.log_file})
        # Keys (mute, volume, push-to-talk, hang up): live view on a terminal only (keys.py).
        keys = mode is OutputMode.LIVE and terminal_keys_possible()
        check_push_to_talk(options.push_to_talk, keys)
        _warn_short_key(options)
        options, report = prepare_report(options)
        with _Signals() as signals, log_to_file(output.log_file) as log_file, _scratch(report):
            runner = _Runner(options, mode, signals, log_file, console, keys=keys, report=report)
            return runner.run(printer)
    except AivocoError as exc:
        if printer is not None and not printer.written:
            # Failed before any call existed (bad options, device, input): still a record.
            from aivoco.session.records import RecordBus, error_fields

            bus = RecordBus()
            bus.subscribe(printer)
            bus.emit("error", **error_fields(exc))
            printer.close()
        raise


@contextmanager
def _scratch(report: CallReport | None) -> Iterator[None]:
    """The report's temporary files go, however the command ends (also with no call)."""
    try:
        yield
    finally:
        if report is not None:
            report.close()


class _Runner:
    def __init__(
        self,
        options: CallOptions,
        mode: OutputMode,
        signals: _Signals,
        log_file: LogFileHandler | None,
        console: Any,
        *,
        keys: bool = False,
        report: CallReport | None = None,
    ) -> None:
        self.options = options
        self.report = report
        self.keys = keys
        self.mode = mode
        self.signals = signals
        self.log_file = log_file
        self.console = console

    def _log_error(self) -> AudioFileError | None:
        return None if self.log_file is None else self.log_file.error

    def run(self, printer: Any) -> CallSummary:
        from aivoco.session.build import open_call
        from aivoco.ui.live import LiveView
        from aivoco.ui.printers import PlainPrinter

        call = open_call(self.options)
        if self.signals.requested.is_set():  # a signal while the call was being built
            call.close()
            raise SignalExit(self.signals.first or signal.SIGTERM, graceful=True)
        view: AbstractContextManager[Any] = nullcontext()
        sink: Any = printer
        if printer is None and self.mode is OutputMode.PLAIN:
            sink = PlainPrinter()
        elif printer is None:
            view = sink = LiveView(call.state, self.console)
            self.console = self.console or sink.console
        if not isinstance(sink, LiveView):
            call.subscribe(sink)
        try:
            with view, call_keys(call, self.keys):
                # close() runs inside the view, so its last frame shows the final state.
                result = self._wait(call, sink)
        except BaseException:
            self._finish_report(call, sink, call_failed=True)  # a second signal, too
            _flush(sink, PRINTER_ABORT_WAIT_S)
            raise
        _flush(sink, None)  # every record out before the summary and the exit code
        gone = _gone(sink)  # a closed pipe, or the terminal of a SIGHUP
        if not gone:
            self._print_summary(call, result.summary)
        failed = result.error or self._log_error()
        report_error = self._finish_report(call, sink, call_failed=failed is not None)
        _flush(sink, None)  # the report's record
        error = failed or report_error
        if error is not None:
            raise error
        exit_signal = self.signals.exit_signal()
        if exit_signal is not None:
            raise SignalExit(exit_signal, graceful=True)
        if gone:
            raise BrokenPipeError("the output was closed")
        return result.summary

    def _wait(self, call: Call, sink: Any) -> CallResult:
        try:
            call.start(wait=False)
            try:
                while not call.wait(_POLL_S):
                    log_error = self._log_error()
                    if log_error is not None:
                        call.bus.fail(log_error)
                    if self.signals.requested.is_set() or _gone(sink):
                        call.hang_up(self.signals.reason)
            except (KeyboardInterrupt, SignalExit):
                call.abort()
                raise
        finally:
            error = self._log_error()
            if error is not None:
                call.bus.fail(error)
            result = call.close()
        return result

    def _finish_report(self, call: Call, sink: Any, *, call_failed: bool) -> AivocoError | None:
        """--report: draw the ended call; its failure is the command's error only when
        the call itself succeeded (the call's own error keeps its exit code)."""
        from aivoco.ui.printers import describe_record

        if self.report is None:
            return None
        outcome = self.report.write()
        if not _gone(sink):
            record = call.bus.emit("report", **outcome.record())  # --json and --plain
            line = describe_record(record)
            if self.mode is OutputMode.LIVE and line is not None:
                console = self.console or _stdout_console()
                console.print(terminal_safe(line), highlight=False, soft_wrap=True, markup=False)
        if outcome.error is None:
            return None
        if call_failed:
            message = terminal_safe(user_message(outcome.error))
            with suppress(OSError, ValueError):
                sys.stderr.write(f"aivoco: warning: report not written: {message}\n")
            return None
        call.bus.emit_error(outcome.error)
        return outcome.error

    def _print_summary(self, call: Call, summary: CallSummary) -> None:
        if self.mode is OutputMode.JSON:
            return
        from aivoco.ui.widgets import summary_table

        console = self.console or _stdout_console()
        console.print(summary_table(summary))
        if call.output_path is not None:
            # One line, however long: the path is there to be copied.
            console.print(
                f"agent audio written to {call.output_path}", highlight=False, soft_wrap=True
            )


def _flush(sink: Any, timeout_s: float | None) -> None:
    """A printer's queued records written out (aivoco/ui/printers.py); a live view has
    none. Unbounded after a normal end, as any program writing to a pipe; bounded when
    the run is being torn down (a second Ctrl-C)."""
    from aivoco.ui.printers import JsonPrinter, PlainPrinter

    if isinstance(sink, (JsonPrinter, PlainPrinter)):
        sink.close(timeout_s)


def _stdout_console() -> Any:
    from aivoco.ui.console import make_console

    return make_console()


def _gone(sink: Any) -> bool:
    gone = getattr(sink, "gone", False)
    return bool(gone.is_set() if isinstance(gone, threading.Event) else gone)
