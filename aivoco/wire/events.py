"""What a protocol codec makes of the peer's messages: one vocabulary for both protocols.

Codecs decode wire messages (docs/protocols.md#sts-server-events, #call-media) into
these events, drivers queue them, and the session, UI and files are written once
against them. An event says what the peer did; what it means for the call (is a
dropped connection an error, or the end we asked for?) is decided by the session's
lifecycle (`aivoco/session/lifecycle.py`), never by a driver.

Events go through one bounded `EventQueue`: python-socketio and websocket-client call
handlers on their own threads, and handlers only decode and enqueue.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError


@dataclass(frozen=True)
class Ready:
    """The call is live: audio may flow both ways.

    sts: the server's `session_ready`. call: the WebSocket is open and `start` went
    out (the protocol has no acknowledgement, docs/protocols.md#call-handshake).
    Credit fields are None where the protocol has no credits.
    """

    message: str | None = None
    credits_available: float | None = None
    cost_per_minute: float | None = None
    functions_loaded: int | None = None


@dataclass(frozen=True)
class CreditsInfo:
    """The account balance the server reported on authentication (sts)."""

    credits: float | None


@dataclass(frozen=True)
class AgentAudio:
    chunk: AudioChunk


@dataclass(frozen=True)
class AgentText:
    text: str


@dataclass(frozen=True)
class FunctionCall:
    """The agent asks the client to run a custom function (docs/protocols.md#sts-functions)."""

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
    """Answer `name` once the audio queued before it has played (docs/protocols.md#call-mark)."""

    name: str


@dataclass(frozen=True)
class PlaybackClear:
    """Barge-in: flush queued playback now (docs/protocols.md#call-clear)."""


@dataclass(frozen=True)
class Ended:
    """The server ended the session.

    `error` applies whatever we did (e.g. credits ran out); `error_unless_hung_up`
    applies only when we had not asked for the end ourselves (sts: a session the server
    ended by itself is a service error; after our `stop_call` it is the normal end).
    """

    reason: str
    message: str | None = None
    total_credits_used: float | None = None
    remaining_credits: float | None = None
    error: AivocoError | None = None
    error_unless_hung_up: AivocoError | None = None


@dataclass(frozen=True)
class Failed:
    """The call cannot go on: refused credentials, a service error."""

    error: AivocoError


@dataclass(frozen=True)
class Disconnected:
    """The connection is gone. `error` is what it means if we were not hanging up."""

    detail: str
    error: AivocoError


@dataclass(frozen=True)
class ProtocolIssue:
    """A malformed or unexpected message: logged, counted, and the call goes on."""

    message: str


@dataclass(frozen=True)
class Notice:
    """Informational (a server greeting, transport details)."""

    message: str


@dataclass(frozen=True)
class UnknownEvent:
    """An event the protocol reference does not list: not an error, noted and ignored."""

    name: str
    data: Any = field(default=None, compare=False)


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
    | Disconnected
    | ProtocolIssue
    | Notice
    | UnknownEvent
)


@dataclass(frozen=True)
class Timed:
    """An event with its arrival time (time.monotonic()) and the connection it came
    from (`origin`: the session's count of connections, so a reconnected call can tell
    a late word from a connection it already gave up on)."""

    at: float
    event: Event
    origin: int = 0


class EventSink(Protocol):
    """Where a driver puts what it decoded (an `EventQueue`, or a view of one)."""

    def put(self, event: Event) -> None: ...


EVENT_QUEUE_LIMIT = 4096
# Room kept for everything but agent audio: a flood of audio cannot crowd out a mark,
# a transcript or the end of the call.
CONTROL_RESERVE = 256
_WAKE = Notice("(wake-up)")  # put by EventQueue.wake(); get() turns it into None
# What ends a call is never dropped (see EventQueue).
_LAST_WORDS = (Ended, Failed, Disconnected)


class EventQueue:
    """Bounded FIFO from driver threads to the session's event thread.

    `put` never blocks: the drivers put from threads every call in the process shares
    (the shared clock's event loop, for sts and agent calls alike), so a call
    whose event thread stalled must not hold up the others (docs/performance.md#reader).

    Overflow policy: agent audio is taken while the queue holds fewer than
    `limit - CONTROL_RESERVE` events, other events up to `limit`; past that they are
    dropped and counted (the session thread stalled for minutes: freshness beats
    completeness). The call's last word (`Ended`, `Failed`, `Disconnected`) is never
    dropped: if the queue is full it waits in a slot of its own, and `get` returns it
    once the queue is empty (the first one kept; a call ends once).
    """

    def __init__(self, limit: int = EVENT_QUEUE_LIMIT) -> None:
        self._q: queue.Queue[Timed] = queue.Queue(maxsize=limit)
        self._audio_limit = max(1, limit - CONTROL_RESERVE)
        self.dropped = 0
        self._lock = threading.Lock()
        self._last: Timed | None = None

    def put(self, event: Event, origin: int = 0) -> None:
        item = Timed(time.monotonic(), event, origin)
        if isinstance(event, AgentAudio) and self._q.qsize() >= self._audio_limit:
            self._count_drop()
            return
        try:
            self._q.put_nowait(item)
        except queue.Full:
            if not isinstance(event, _LAST_WORDS):
                self._count_drop()
                return
            with self._lock:
                if self._last is None:
                    self._last = item

    def _count_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def get(self, timeout: float | None) -> Timed | None:
        """The next event; None after `timeout` (None: wait for one) or after `wake()`."""
        try:
            item = self._q.get_nowait()
        except queue.Empty:
            with self._lock:
                last, self._last = self._last, None
            if last is not None:
                return last
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                return None
        return None if item.event is _WAKE else item

    def wake(self) -> None:
        """Make a waiting `get()` return None (the consumer then checks why), so the
        consumer can block without a timeout and never wakes up for nothing."""
        with contextlib.suppress(queue.Full):  # a full queue wakes its consumer anyway
            self._q.put_nowait(Timed(time.monotonic(), _WAKE))
