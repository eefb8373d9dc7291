"""The record stream: one JSON-able dict per call event, fanned out to its consumers.

Consumers: the `--transcript` JSON Lines file, the `--plain` / `--json` printers and
the debug log. The Live UI does not consume records; it reads the call state.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, Protocol

from aivoco.errors import AivocoError
from aivoco.session.files import TranscriptWriter

log = logging.getLogger("aivoco.session")


class RecordConsumer(Protocol):
    def on_record(self, record: dict[str, Any]) -> None: ...


class RecordBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._consumers: list[RecordConsumer] = []
        self._writers: list[TranscriptWriter] = []
        self._t0: float | None = None
        self.error: AivocoError | None = None  # first failed write (ends the call)

    def subscribe(self, consumer: RecordConsumer) -> None:
        self._consumers.append(consumer)

    def add_writer(self, writer: TranscriptWriter) -> None:
        self._writers.append(writer)

    def start_clock(self) -> None:
        """`t` in records counts from here: the moment the call went live."""
        self._t0 = time.monotonic()

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        now = time.monotonic()
        record: dict[str, Any] = {
            "type": type_,
            "t": round(now - self._t0, 3) if self._t0 is not None else 0.0,
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            **fields,
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
