"""What protocol drivers hand to the session: one vocabulary for both protocols.

Drivers translate their wire messages (protocol notes sections 1 and 2) into these
events, so the session, UI and files are written once. Events go through one bounded
`EventQueue` (python-socketio and websocket-client call handlers on their own threads;
handlers only enqueue).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError


@dataclass(frozen=True)
class Ready:
    """The call is live. Credit fields are None where the protocol has no credits."""

    message: str | None = None
    credits_available: float | None = None
    cost_per_minute: float | None = None
    functions_loaded: int | None = None


@dataclass(frozen=True)
class CreditsInfo:
    credits: float | None


@dataclass(frozen=True)
class AgentAudio:
    chunk: AudioChunk


@dataclass(frozen=True)
class AgentText:
    text: str


@dataclass(frozen=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class FunctionReport:
    """The server's own account of a function call (result, error or billing)."""

    kind: str  # "result" | "error" | "billed"
    name: str | None
    detail: Any


@dataclass(frozen=True)
class PlaybackMark:
    """Answer `name` once the audio queued before it has played (call protocol)."""

    name: str


@dataclass(frozen=True)
class PlaybackClear:
    """Barge-in: flush queued playback now."""


@dataclass(frozen=True)
class Ended:
    """The session ended. `error` is set when the end is a failure (exit non-zero)."""

    reason: str
    message: str | None = None
    total_credits_used: float | None = None
    remaining_credits: float | None = None
    error: AivocoError | None = None


@dataclass(frozen=True)
class Failed:
    """The call cannot go on: refused credentials, service error, dropped connection."""

    error: AivocoError


@dataclass(frozen=True)
class ProtocolIssue:
    """A malformed or unexpected message: logged, counted, and the call goes on."""

    message: str


@dataclass(frozen=True)
class Notice:
    """Informational (unknown events, transport details)."""

    message: str


Event = (
    Ready
    | CreditsInfo
    | AgentAudio
    | AgentText
    | FunctionCall
    | FunctionReport
    | PlaybackMark
    | PlaybackClear
    | Ended
    | Failed
    | ProtocolIssue
    | Notice
)


@dataclass(frozen=True)
class Timed:
    """An event with its arrival time (time.monotonic())."""

    at: float
    event: Event


EVENT_QUEUE_LIMIT = 4096


class EventQueue:
    """Bounded FIFO from driver threads to the session's event thread.

    Overflow policy: agent audio that finds the queue full is dropped and counted
    (the session thread stalled for minutes; freshness beats completeness); a control
    event waits up to 1 s for room, and only then is dropped (and counted) too.
    """

    def __init__(self, limit: int = EVENT_QUEUE_LIMIT) -> None:
        self._q: queue.Queue[Timed] = queue.Queue(maxsize=limit)
        self.dropped = 0
        self._lock = threading.Lock()

    def put(self, event: Event) -> None:
        item = Timed(time.monotonic(), event)
        if isinstance(event, AgentAudio):
            try:
                self._q.put_nowait(item)
            except queue.Full:
                with self._lock:
                    self.dropped += 1
            return
        try:
            self._q.put(item, timeout=1.0)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def get(self, timeout: float) -> Timed | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None


@dataclass
class NetStats:
    """Wire counters, updated by the driver's threads (plain int adds)."""

    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    audio_ms_sent: float = 0.0
    audio_ms_received: float = 0.0
    transport: str = ""
    uplink_dropped: int = 0  # frames not sent because the link was backed up


class Driver(Protocol):
    """A protocol driver owns the connection and its threads (codecs stay pure)."""

    protocol: str  # "sts" | "call"
    endpoint: str  # display form: host (and agent), never the key
    uplink_rate_hz: int
    downlink_rate_hz: int
    has_credits: bool
    net: NetStats

    def connect(self, events: EventQueue, timeout_s: float) -> None:
        """Connect and start the session; return once it is live (Ready was queued).

        Raises AuthError, CreditsError, ConnectionFailedError, ProtocolError, ServiceError.
        """

    def send_audio(self, chunk: AudioChunk) -> None: ...

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        """Send a function's result; a failure already has the failure_result() shape."""

    def answer_mark(self, name: str) -> None: ...

    def hang_up(self, timeout_s: float) -> None:
        """Graceful end: tell the server, wait up to timeout_s for its final word."""

    def close(self) -> None:
        """Release the connection at once (idempotent)."""
