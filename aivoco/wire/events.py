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
    dropped: if the queue is full it is queued past the bound, after everything before
    it (the first one only; a call ends once).

    Underneath is `queue.SimpleQueue`, whose put and blocking get are C: an agent call
    hands every message across (about 50 a second), and `queue.Queue`'s Python
    conditions made each hand-off cost as much as the clock's own wake-up
    (bench/bench_wakeups.py, docs/performance.md#floor). It has no bound of its own, so
    the bound is checked here before each put; with several producers it can be passed
    by at most one event per producer, which is still bounded.
    """

    def __init__(self, limit: int = EVENT_QUEUE_LIMIT) -> None:
        self._q: queue.SimpleQueue[Timed] = queue.SimpleQueue()
        self._limit = limit
        self._audio_limit = max(1, limit - CONTROL_RESERVE)
        self.dropped = 0
        self._lock = threading.Lock()
        self._last_kept = False  # a last word went past the bound

    def put(self, event: Event, origin: int = 0) -> None:
        size = self._q.qsize()
        if size < self._audio_limit or (size < self._limit and not isinstance(event, AgentAudio)):
            self._q.put(Timed(time.monotonic(), event, origin))
            return
        with self._lock:
            if not isinstance(event, _LAST_WORDS):
                self.dropped += 1
                return
            if self._last_kept:
                return  # a call ends once: the first last word is kept
            self._last_kept = True
        self._q.put(Timed(time.monotonic(), event, origin))

    def get(self, timeout: float | None) -> Timed | None:
        """The next event; None after `timeout` (None: wait for one) or after `wake()`."""
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if item.event is _WAKE else item

    def wake(self) -> None:
        """Make a waiting `get()` return None (the consumer then checks why), so the
        consumer can block without a timeout and never wakes up for nothing."""
        self._q.put(Timed(time.monotonic(), _WAKE))
