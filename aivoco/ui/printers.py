"""`--plain` log lines and `--json` event objects: the record stream as text.

Records arrive redacted (aivoco/session/records.py). What reaches a terminal here goes
through `terminal_safe` (a peer's ESC, BEL, CR or bidi override is shown, never obeyed);
`--json` keeps every character as JSON has it, lone surrogates as `\\udcxx` escapes
(`utf8_line`), so no peer text can make a write fail.

A stream that goes away (stdout piped into `head`, a terminal hung up) sets `gone`:
nothing more is written and the command hangs up and exits quietly, as Unix tools do.

A stream that is there but not read (a pipe into a paused `less`, a CI step that reads
only at the end) fills its buffer, and then a write blocks. Records are written on the
printer's own thread, so the call's threads only queue them and go on: the call keeps
its audio and ends on time. The queue holds PRINT_QUEUE_RECORDS; past that the newest
are dropped and counted (`dropped`), the summary says how many, and the --transcript
file keeps them all.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import IO, Any

from aivoco.text import describe_output_step, terminal_safe, utf8_line
from aivoco.ui.widgets import clock


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _session_ended(r: dict[str, Any]) -> str:
    said = r.get("message") or r.get("reason")
    ours = r.get("hangup_reason")
    text = f"session ended: {ours} (server: {said})" if ours else f"session ended: {said}"
    if r.get("total_credits_used") is not None:
        text += f" | credits used {r['total_credits_used']}, remaining {r.get('remaining_credits')}"
    return text


def _function_report(r: dict[str, Any]) -> str:
    name, kind, detail = r.get("name") or "", r.get("kind"), r.get("detail")
    if kind == "result":  # the server echoes the result we sent: no need to repeat it
        return f"server: received the result of {name}"
    if kind == "billed":
        return f"server: function {name} billed: {_json(detail)}"
    shown = detail if isinstance(detail, str) else _json(detail)
    return f"server: function {name} error: {shown}" if name else f"server: function error: {shown}"


def _ready(r: dict[str, Any]) -> str:
    parts = [r.get("message") or "session ready"]
    for key, label in (
        ("credits_available", "credits"),
        ("cost_per_minute", "cost/min"),
        ("functions_loaded", "functions"),
    ):
        if r.get(key) is not None:
            parts.append(f"{label} {r[key]}")
    return " | ".join(str(p) for p in parts)


def _report(r: dict[str, Any]) -> str:
    warnings = r.get("warnings") or []
    noted = f"; {len(warnings)} warning(s), listed in the page" if warnings else ""
    return (
        f"report written to {r.get('path')} ({r.get('turns')} turn(s), "
        f"{r.get('answered')} answered{noted})"
    )


def describe_record(record: dict[str, Any]) -> str | None:
    """One human line per record for `--plain`; None for records not worth a line.
    The line is raw text: printers make it terminal-safe."""
    r = record
    match r["type"]:
        case "connecting":
            text = f"connecting to {r.get('endpoint')} ({r.get('protocol')})"
            if r.get("input") or r.get("output"):
                text += f"; in: {r.get('input')}; out: {r.get('output')}"
            return text
        case "ready":
            return _ready(r)
        case "agent_text":
            return f"agent: {r.get('text')}"
        case "user_speech_end":
            return f"you: spoke {r.get('duration_s')} s"
        case "turn":
            heard = r.get("first_sound_ms")
            text = f"agent answered after {r.get('latency_ms')} ms"
            return text + (f", heard after {heard} ms" if heard is not None else "")
        case "function_call":
            return f"function call {r.get('name')}({_json(r.get('arguments'))})"
        case "function_result":
            status = "ok" if r.get("ok") else "FAILED"
            return f"function {r.get('name')} {status}: {_json(r.get('result'))}"
        case "function_report":
            return _function_report(r)
        case "mark" | "mark_played" | "credits" | "summary":
            return None
        case "output_step":
            return describe_output_step(
                r.get("step_ms"), r.get("previous_ms"), r.get("output_latency_ms")
            )
        case "underrun":
            return (
                f"playback ran dry ({r.get('total')} in total); "
                f"pre-fill now {r.get('prefill_ms')} ms"
            )
        case "report":  # --report; a failure is shown as the error it is
            return _report(r) if r.get("ok") else None
        case "clear":
            return f"barge-in: cleared {r.get('cleared_ms')} ms of queued agent audio"
        case "protocol_error":
            return f"protocol error: {r.get('message')}"
        case "error":
            return f"error (exit {r.get('exit_code')}): {r.get('message')}"
        case "notice":
            return str(r.get("message"))
        case "input_finished":
            return "input file finished; sending silence until the agent is quiet"
        case "hangup":
            return f"hanging up ({r.get('reason')})"
        case "session_ended":
            return _session_ended(r)
        case "reconnecting":
            return (
                f"connection lost ({r.get('reason')}); reconnecting ({r.get('attempt')}/"
                f"{r.get('of')}) in {r.get('delay_s')} s"
            )
        case "reconnected":
            return f"reconnected after {r.get('gap_s')} s"
        # -- echo control and the keys (docs/echo.md) --
        case "echo":
            note = r.get("note")
            return f"echo control: {r.get('mode')}" + (f" ({note})" if note else "")
        case "barge_in":
            return f"barge-in: you spoke over the agent; cut {r.get('cleared_ms')} ms of its audio"
        case "mute":
            return "microphone muted" if r.get("muted") else "microphone unmuted"
        case "microphone":
            return f"microphone: {r.get('mode')}"
        case "volume":
            return f"volume {r.get('percent')} %"
        case kind:
            return str(kind)


PRINT_QUEUE_RECORDS = 20_000  # records waiting for a slow reader: minutes of a busy call


class _Printer:
    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream or sys.stdout
        self.gone = threading.Event()  # the reader went away: stop writing
        self.written = False  # any record handed to the stream yet
        self.dropped = 0  # records past the queue's bound (a reader far behind)
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(PRINT_QUEUE_RECORDS)
        self._pending = 0  # queued and not yet written
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def _write(self, text: str, data: bytes) -> None:
        """Queue one record for the writer thread; never blocks the caller."""
        if self.gone.is_set():
            return
        with self._cond:
            if self._thread is None:
                # A daemon: a reader that never reads must not keep the process alive
                # past close()'s wait.
                self._thread = threading.Thread(target=self._drain, name="aivoco-print")
                self._thread.daemon = True
                self._thread.start()
            self.written = True
            try:
                self._queue.put_nowait((text, data))
                self._pending += 1
            except queue.Full:
                self.dropped += 1

    def _drain(self) -> None:
        while True:
            text, data = self._queue.get()
            if not self.gone.is_set():
                self._emit(text, data)
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def _emit(self, text: str, data: bytes) -> None:
        try:
            raw = getattr(self.stream, "buffer", None)
            if raw is not None:
                self.stream.flush()
                raw.write(data)
                raw.flush()
            else:
                self.stream.write(text)
                self.stream.flush()
        except (OSError, ValueError):
            self.gone.set()

    def close(self, timeout_s: float | None = None) -> None:
        """Wait until every queued record is written: while the reader does not read
        (as any program writing to a pipe waits), or at most `timeout_s`."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending == 0, timeout_s)
        if self.dropped and not self.gone.is_set():
            sys.stderr.write(
                f"aivoco: {self.dropped} records were not written to stdout (its reader "
                "fell behind); the --transcript file has every record\n"
            )
            self.dropped = 0


class PlainPrinter(_Printer):
    """Timestamped log lines (for `--plain` and any non-terminal stdout)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)

    def on_record(self, record: dict[str, Any]) -> None:
        line = describe_record(record)
        if line is None:
            return
        stamp = str(record.get("time", ""))[11:23]
        text = f"{stamp} [{clock(record.get('t', 0.0))}] {terminal_safe(line)}\n"
        self._write(text, text.encode("utf-8", "backslashreplace"))


class JsonPrinter(_Printer):
    """One JSON object per event on stdout, for scripts."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)

    def on_record(self, record: dict[str, Any]) -> None:
        line = _json(record) + "\n"
        data = utf8_line(line)
        self._write(data.decode("utf-8"), data)
