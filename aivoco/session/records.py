"""The record stream: one JSON-able dict per call event, fanned out to its consumers.

Consumers: the `--transcript` JSON Lines file, the `--plain` / `--json` printers and
the debug log. The Live UI does not consume records; it reads the call state.

Every record is redacted here, once, before any consumer sees it (aivoco/redact.py):
a key the server echoes back reaches no sink. Text stays otherwise intact (JSON sinks
escape it; terminal sinks neutralise it with `aivoco.text.terminal_safe`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, Protocol

from aivoco.errors import AivocoError, exit_code_for
from aivoco.redact import redact_value
from aivoco.session.files import TranscriptWriter

log = logging.getLogger("aivoco.session")


def error_fields(error: BaseException) -> dict[str, Any]:
    """The fields of an `error` record: the message, the error's kind and the exit code
    the command ends with (README: "Exit codes")."""
    return {
        "message": str(error),
        "kind": type(error).__name__,
        "exit_code": int(exit_code_for(error)),
    }


class RecordConsumer(Protocol):
    def on_record(self, record: dict[str, Any]) -> None: ...


class RecordBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._consumers: list[RecordConsumer] = []
        self._writers: list[TranscriptWriter] = []
        self._t0: float | None = None
        self.error: AivocoError | None = None  # first failed write (ends the call)
        self._error_emitted = False

    def emit_error(self, error: BaseException) -> bool:
        """The call's `error` record, with the exit code it leads to: once per call (the
        first failure is the one reported), so always before the summary. True if
        emitted now."""
        with self._lock:
            if self._error_emitted:
                return False
            self._error_emitted = True
        self.emit("error", **error_fields(error))
        return True

    def subscribe(self, consumer: RecordConsumer) -> None:
        self._consumers.append(consumer)

    def add_writer(self, writer: TranscriptWriter) -> None:
        self._writers.append(writer)

    def fail(self, error: AivocoError) -> None:
        """A sink outside the bus failed (the --log-file): the call ends with it."""
        with self._lock:
            if self.error is None:
                self.error = error

    def start_clock(self) -> None:
        """`t` in records counts from here: the moment the call went live."""
        self._t0 = time.monotonic()

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        now = time.monotonic()
        record: dict[str, Any] = {
            "type": type_,
            "t": round(now - self._t0, 3) if self._t0 is not None else 0.0,
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            **redact_value(fields),
        }
        with self._lock:
            log.debug("record %s", record)
            for writer in self._writers:
                try:
                    writer.write(record)
                except AivocoError as exc:
                    if self.error is None:
                        self.error = exc
            for consumer in self._consumers:
                consumer.on_record(record)
        return record

    def close(self) -> None:
        with self._lock:
            for writer in self._writers:
                writer.close()
