"""The call's lifecycle: every change of phase, and every reason a call ends, is here.

As in h11's `_state.py`, the rules are tables and one class applies them under one
lock; nothing else in aivoco sets a phase. To find *what ends a call*, read
`_TRANSITIONS` and the `Lifecycle` methods below: each one is a fact (the server ended
the session, the connection dropped, we hung up, a part failed) and decides, from the
phase it arrives in, whether the call ends and with which reason and error.

    NEW --start--> CONNECTING --ready--> LIVE --hang_up--> ENDING
                       |                  |  ^                |
                       |             drop |  | ready          |
                       |                  v  |                |
                       |             RECONNECTING             |
                       |                  |                   |
                       +------end---------+------end----------+--> ENDED

Operations the session performs are allowed per phase (`_ALLOWED`); a refused one is
skipped by `permits()`, or raised as `CallStateError` by `require()` (misuse by code).

Reconnecting (`ReconnectPolicy`): a connection that drops while the call is LIVE is
retried when the drop is a lost connection (`ConnectionFailedError`), never after a
refused key, exhausted credits, a usage error or a session the server ended (those are
other errors or `Ended`, and end the call). Each outage gets `tries` attempts, waiting
`delay_s(k)` before attempt k (0.5 s doubling to 8 s); a session that stays live for
`stable_s` starts the next outage's count afresh, so a server that accepts and drops at
once cannot keep a call reconnecting forever. The `Call` carries the attempts out
(`reconnect.py`) and reports each one back here (`went_live`, `retry_failed`,
`disconnected`), and this class decides what follows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from aivoco.errors import AivocoError, CallStateError, ConnectionFailedError
from aivoco.wire import events as ev


class Phase(Enum):
    NEW = "new"
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"  # the connection dropped; a new session is on its way
    ENDING = "ending"  # we said goodbye and wait for the server's final word
    ENDED = "ended"


class Trigger(Enum):
    START = "start"
    READY = "ready"  # the server says the session is live
    HANG_UP = "hang_up"  # we ask for the end
    DROP = "drop"  # the connection dropped and may come back
    END = "end"  # the call is over, for whatever reason


class Op(Enum):
    SEND_AUDIO = "send audio"
    ANSWER_MARK = "answer a mark"
    SEND_FUNCTION_RESULT = "send a function result"
    KEEP_MEDIA = "keep the microphone and speaker running"


class EndReason(str, Enum):
    """Why the call ended, in our words (`SERVER`: in the server's, see `server_reason`)."""

    HANGUP = "hangup"  # hung up from code or a key
    INTERRUPTED = "interrupted"  # Ctrl-C
    IDLE = "idle"  # the input file ended and the agent went quiet
    MAX_DURATION = "max-duration"
    ABORTED = "aborted"  # second Ctrl-C: no goodbye
    ERROR = "error"
    PROTOCOL_ERROR = "protocol-error"
    SERVER = "server"  # the server ended the session (or the agent hung up)


_TRANSITIONS: dict[tuple[Phase, Trigger], Phase] = {
    (Phase.NEW, Trigger.START): Phase.CONNECTING,
    (Phase.NEW, Trigger.END): Phase.ENDED,
    (Phase.CONNECTING, Trigger.READY): Phase.LIVE,
    # Nothing to say goodbye to before the session is live: a hang-up ends at once.
    (Phase.CONNECTING, Trigger.HANG_UP): Phase.ENDED,
    (Phase.CONNECTING, Trigger.END): Phase.ENDED,
    (Phase.LIVE, Trigger.HANG_UP): Phase.ENDING,
    (Phase.LIVE, Trigger.END): Phase.ENDED,
    (Phase.LIVE, Trigger.DROP): Phase.RECONNECTING,
    (Phase.RECONNECTING, Trigger.READY): Phase.LIVE,
    # Nothing to say goodbye to while the connection is down: a hang-up ends at once.
    (Phase.RECONNECTING, Trigger.HANG_UP): Phase.ENDED,
    (Phase.RECONNECTING, Trigger.END): Phase.ENDED,
    (Phase.ENDING, Trigger.END): Phase.ENDED,
}

# Mark answers and function results may still go out while we wait for the server's
# final word: they settle what the agent already asked; new audio may not. While
# reconnecting nothing is sent, but the microphone and the speaker keep running, so the
# recording and the transcript stay on the call's timeline and show the gap.
_ALLOWED: dict[Phase, frozenset[Op]] = {
    Phase.NEW: frozenset(),
    Phase.CONNECTING: frozenset(),
    Phase.LIVE: frozenset(Op),
    Phase.RECONNECTING: frozenset({Op.KEEP_MEDIA}),
    Phase.ENDING: frozenset({Op.ANSWER_MARK, Op.SEND_FUNCTION_RESULT}),
    Phase.ENDED: frozenset(),
}
# The same as tuples, for `permits()`: the uplink asks once or twice a frame, and `in` on
# a short tuple compares by identity in C where a frozenset hashes through Enum's Python
# `__hash__` (docs/performance.md#clock).
_ALLOWED_OPS: dict[Phase, tuple[Op, ...]] = {p: tuple(ops) for p, ops in _ALLOWED.items()}


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a dropped call comes back: `tries` attempts per outage (0: never)."""

    tries: int = 0
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0
    stable_s: float = 10.0  # live this long after coming back: the next drop starts afresh

    def delay_s(self, attempt: int) -> float:
        """The wait before attempt `attempt` (1-based): bounded exponential backoff."""
        return min(self.max_delay_s, self.first_delay_s * 2.0 ** max(0, attempt - 1))


def retryable(e: ev.Disconnected) -> bool:
    """A lost connection may come back; a refusal (key, agent, protocol) may not."""
    return isinstance(e.error, ConnectionFailedError)


@dataclass(frozen=True)
class Outcome:
    """How the call ended: our reason, the first error, and the server's own words."""

    reason: EndReason
    error: AivocoError | None = None
    server_reason: str | None = None
    server_message: str | None = None

    @property
    def label(self) -> str:
        """The reason as printed and in `--json`: ours, or the server's when it ended."""
        if self.reason is EndReason.SERVER and self.server_reason:
            return self.server_reason
        return self.reason.value


Listener = Callable[[Phase, Phase], None]


class Lifecycle:
    def __init__(
        self,
        policy: ReconnectPolicy = ReconnectPolicy(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._attempt = 0  # the reconnect attempt in progress (or the last one made)
        self._attempt_lost = False  # the attempt in progress connected and dropped
        self._live_since = 0.0
        self.reconnects = 0  # sessions that came back
        self.drop: ev.Disconnected | None = None  # the drop being recovered from
        self._lock = threading.Condition()
        self._phase = Phase.NEW
        self._allowed = _ALLOWED_OPS[Phase.NEW]  # set with each phase, read without the lock
        self._reason: EndReason | None = None  # set by the first hang-up or end
        self._error: AivocoError | None = None
        self._server: tuple[str | None, str | None] = (None, None)
        self._listeners: list[Listener] = []
        self._pending: deque[tuple[Phase, Phase]] = deque()
        self._delivering = threading.Lock()

    # -- reading ---------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        with self._lock:
            return self._phase

    @property
    def reason(self) -> EndReason | None:
        """Why the call is ending or ended (the first hang-up's or end's reason)."""
        with self._lock:
            return self._reason

    @property
    def outcome(self) -> Outcome | None:
        """Set once the call has ended."""
        with self._lock:
            if self._phase is not Phase.ENDED or self._reason is None:
                return None
            return Outcome(self._reason, self._error, *self._server)

    def permits(self, op: Op) -> bool:
        # Without the lock: one attribute read is atomic, and the answer is as current
        # as it was under the lock (the phase may change as soon as it is returned).
        return op in self._allowed

    def require(self, op: Op) -> None:
        with self._lock:
            if op not in self._allowed:
                raise CallStateError(f"cannot {op.value} while the call is {self._phase.value}")

    def subscribe(self, listener: Listener) -> None:
        """`listener(old, new)` runs after each change, outside the lock, in order."""
        if self._pending or self._phase is not Phase.NEW:
            raise CallStateError("subscribe to a lifecycle before it starts")
        self._listeners.append(listener)

    def wait_until(self, done: Callable[[Phase], bool], timeout_s: float | None) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: done(self._phase), timeout_s)

    # -- the facts that move a call --------------------------------------------------
    def start(self) -> None:
        if not self._fire(Trigger.START):
            raise CallStateError(f"cannot start a call that is {self.phase.value}")

    def went_live(self) -> bool:
        return self._fire(Trigger.READY)

    def hang_up(self, reason: EndReason) -> bool:
        """We ask for the end. False if the call is already ending or over."""
        return self._fire(Trigger.HANG_UP, reason)

    def end(self, reason: EndReason, error: AivocoError | None = None) -> bool:
        """The one way a call ends: the first reason given (a hang-up's) is kept, and
        the first error too."""
        return self._fire(Trigger.END, reason, error)

    def server_ended(self, e: ev.Ended) -> bool:
        """The server's final word. After our goodbye it is the normal end (our reason
        stays, the server's text beside it); otherwise the session was ended for us."""
        with self._lock:
            self._server = (e.reason, e.message)
            asked = self._phase is Phase.ENDING
            error = e.error or (None if asked else e.error_unless_hung_up)
            changed = self._transition(Trigger.END, EndReason.SERVER, error)
        self._deliver()
        return changed

    def disconnected(self, e: ev.Disconnected) -> bool:
        """The connection is gone: expected after our goodbye, a failure before it,
        and a reason to reconnect while live if the policy allows another try."""
        with self._lock:
            phase = self._phase
            if phase is Phase.RECONNECTING:  # a new session that dropped before it was live
                self._attempt_lost = True
                self._lock.notify_all()
                return False
            if phase is Phase.LIVE and self._may_retry(e):
                self.drop = e
                changed = self._transition(Trigger.DROP, None, None)
            else:
                asked = phase is Phase.ENDING
                reason = EndReason.SERVER if asked else EndReason.ERROR
                error = None if asked else self._flapping(e) or e.error
                changed = self._transition(Trigger.END, reason, error)
        self._deliver()
        return changed

    # -- reconnecting (reported by the call's reconnect thread) ------------------------
    @property
    def attempt(self) -> tuple[int, int]:
        """(the reconnect attempt in progress, the tries allowed per outage)."""
        with self._lock:
            return self._attempt, self.policy.tries

    def _may_retry(self, e: ev.Disconnected) -> bool:
        if not retryable(e):
            return False
        if self._clock() - self._live_since >= self.policy.stable_s:
            self._attempt = 0  # the last session held: a new outage
        if self._attempt >= self.policy.tries:
            return False
        self._attempt += 1
        self._attempt_lost = False
        return True

    def _flapping(self, e: ev.Disconnected) -> AivocoError | None:
        """The error for a drop not retried because every try came back and dropped."""
        if not retryable(e) or self.policy.tries == 0 or self._attempt < self.policy.tries:
            return None
        return ConnectionFailedError(
            f"{e.error}; not retried: the last {self._attempt} sessions dropped within "
            f"{self.policy.stable_s:g} s of coming back"
        )

    def retry_failed(self, error: AivocoError) -> bool:
        """The attempt in progress did not bring the session back. True: try again
        (the attempt number advanced); False: the call is over (tries used up)."""
        with self._lock:
            if self._phase is not Phase.RECONNECTING:
                return False
            if self._attempt < self.policy.tries:
                self._attempt += 1
                self._attempt_lost = False
                return True
            lost = self.drop.error if self.drop is not None else error
            given_up = ConnectionFailedError(
                f"{lost}; {self.policy.tries} tries to reconnect failed (the last: {error})"
            )
            self._transition(Trigger.END, EndReason.ERROR, given_up)
        self._deliver()
        return False

    def wait_reconnected(self, timeout_s: float, outage: int) -> bool | None:
        """After an attempt connected: True once live again (`reconnects` passed
        `outage`, the count when the outage began, even if the call has since moved on),
        False if it dropped or `timeout_s` passed without a session, None if the call
        ended without coming back."""
        with self._lock:
            self._lock.wait_for(
                lambda: self._phase is not Phase.RECONNECTING or self._attempt_lost,
                max(0.0, timeout_s),
            )
            if self.reconnects > outage:
                return True
            return None if self._phase is Phase.ENDED else False

    # -- the table ---------------------------------------------------------------------
    def _fire(
        self, trigger: Trigger, reason: EndReason | None = None, error: AivocoError | None = None
    ) -> bool:
        with self._lock:
            changed = self._transition(trigger, reason, error)
        self._deliver()
        return changed

    def _transition(
        self, trigger: Trigger, reason: EndReason | None, error: AivocoError | None
    ) -> bool:
        old = self._phase
        new = _TRANSITIONS.get((old, trigger))
        if new is None:
            return False
        if reason is not None and self._reason is None:
            self._reason = reason
        if error is not None and self._error is None:
            self._error = error
        if new is Phase.ENDED and self._reason is None:
            self._reason = EndReason.ERROR if self._error else EndReason.HANGUP
        if new is Phase.LIVE:
            self._live_since = self._clock()
            if old is Phase.RECONNECTING:
                self.reconnects += 1
        self._phase = new
        self._allowed = _ALLOWED_OPS[new]
        self._pending.append((old, new))
        self._lock.notify_all()
        return True

    def _deliver(self) -> None:
        """Run listeners for each change in the order the changes happened, one change
        at a time, even when two threads fire at once. Listeners must not fire."""
        with self._delivering:
            while True:
                with self._lock:
                    if not self._pending:
                        return
                    old, new = self._pending.popleft()
                for listener in self._listeners:
                    listener(old, new)
