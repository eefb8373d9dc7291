"""Scripted stand-ins for a call's parts, to test the call core in-process in milliseconds.

In the spirit of h11's `ConnectionPair`: `ScriptedDriver` implements the session's
`Driver` contract without a socket; the test plays the server by pushing events and
reads back everything the call sent. `MemorySource` feeds frames from memory, paced in
audio time only if asked. Nothing here pretends to be a network: protocol behaviour is
tested against real servers elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError
from aivoco.wire import events as ev
from aivoco.wire.driver import NetStats, ProtocolName


@dataclass
class Sent:
    audio: list[AudioChunk] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    function_results: list[tuple[str, str, Any]] = field(default_factory=list)
    goodbyes: int = 0
    after_close: int = 0  # audio handed over after close(): dropped, as real drivers do


class ScriptedDriver:
    """A driver whose server is the test: `on_open` events are queued when the call
    opens; `push()` queues more at any time; `on_goodbye` answers a hang-up."""

    endpoint = "scripted.test"

    def __init__(
        self,
        protocol: ProtocolName = ProtocolName.STS,
        *,
        on_open: Sequence[ev.Event] = (ev.Ready("ready"),),
        on_goodbye: Callable[[], Sequence[ev.Event]] | None = None,
        open_error: AivocoError | None = None,
        open_delay_s: float = 0.0,
        goodbye_error: AivocoError | None = None,
    ) -> None:
        self.protocol = protocol
        self.uplink_rate_hz = 16000 if protocol is ProtocolName.STS else 8000
        self.downlink_rate_hz = 24000 if protocol is ProtocolName.STS else 8000
        self.has_credits = protocol is ProtocolName.STS
        self.net = NetStats(transport="scripted")
        self.sent = Sent()
        self.closed = threading.Event()
        self._on_open = list(on_open)
        self._on_goodbye = on_goodbye
        self._open_error = open_error
        self._open_delay_s = open_delay_s
        self._goodbye_error = goodbye_error
        self._events: ev.EventSink | None = None
        self._lock = threading.Lock()
        self.opened_at: float | None = None  # time.monotonic() when the call opened it

    # -- the test's side ---------------------------------------------------------------
    def push(self, *events: ev.Event) -> None:
        assert self._events is not None, "the call has not opened the driver yet"
        for e in events:
            self._events.put(e)

    # -- the Driver contract -------------------------------------------------------------
    def open(self, events: ev.EventSink, timeout_s: float) -> None:
        self.opened_at = time.monotonic()
        self._events = events
        if self._open_delay_s:
            time.sleep(min(self._open_delay_s, timeout_s))
        if self._open_error is not None:
            raise self._open_error
        self.push(*self._on_open)

    def send_audio(self, chunk: AudioChunk) -> None:
        with self._lock:
            if self.closed.is_set():  # the session may race its own hang-up or a drop
                self.sent.after_close += 1
                return
            self.sent.audio.append(chunk)
            self.net.audio_ms_sent += chunk.duration_ms

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        with self._lock:
            self.sent.function_results.append((call_id, name, result))

    def answer_mark(self, name: str) -> None:
        with self._lock:
            self.sent.marks.append(name)

    def hang_up(self) -> None:
        with self._lock:
            self.sent.goodbyes += 1
        if self._goodbye_error is not None:
            raise self._goodbye_error
        if self._on_goodbye is not None:
            self.push(*self._on_goodbye())

    def close(self) -> None:
        self.closed.set()


class DriverSupply:
    """Scripted drivers for a call that reconnects: `next()` hands out the prepared ones
    in order (the first is the call's first driver), and counts what was asked for."""

    def __init__(self, *drivers: ScriptedDriver) -> None:
        self.drivers = list(drivers)
        self.built = 1  # the first driver goes to open_call directly

    @property
    def first(self) -> ScriptedDriver:
        return self.drivers[0]

    @property
    def latest(self) -> ScriptedDriver:
        return self.drivers[self.built - 1]

    def next(self) -> ScriptedDriver:
        assert self.built < len(self.drivers), "the call asked for more drivers than scripted"
        self.built += 1
        return self.drivers[self.built - 1]


class MemorySource:
    """Frames from memory, then silence; paced at `pace` x real time (0: unpaced for
    the given frames, but silence is always paced so a call does not spin)."""

    def __init__(
        self, frames: Sequence[AudioChunk], *, rate_hz: int, frame_ms: int = 20, pace: float = 1.0
    ) -> None:
        self.frames = list(frames)
        self.rate_hz = self.sample_rate_hz = rate_hz
        self.frame_ms = frame_ms
        self.pace = pace
        self.finished = False
        self.lost_frames = 0
        self.started = threading.Event()
        self._closed = threading.Event()

    def start(self) -> None:
        self.started.set()

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[AudioChunk]:
        step_s = self.frame_ms / 1000.0
        for frame in self.frames:
            if self._closed.is_set():
                return
            if self.pace:
                self._closed.wait(step_s / self.pace)
            yield frame
        self.finished = True
        silence = AudioChunk.silence(self.rate_hz * self.frame_ms // 1000, self.rate_hz)
        while not self._closed.wait(step_s / (self.pace or 1.0)):
            yield silence
