"""The call's lifecycle: every change of phase, and every reason a call ends, is here.

As in h11's `_state.py`, the rules are tables and one class applies them under one
lock; nothing else in aivoco sets a phase. To find *what ends a call*, read
`_TRANSITIONS` and the `Lifecycle` methods below: each one is a fact (the server ended
the session, the connection dropped, we hung up, a part failed) and decides, from the
phase it arrives in, whether the call ends and with which reason and error.

    NEW --start--> CONNECTING --ready--> LIVE --hang_up--> ENDING
                       |                   |                  |
                       +------end----------+-------end--------+--> ENDED

Operations the session performs are allowed per phase (`_ALLOWED`); a refused one is
skipped by `permits()`, or raised as `CallStateError` by `require()` (misuse by code).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from aivoco.errors import AivocoError, CallStateError
from aivoco.wire import events as ev


class Phase(Enum):
    NEW = "new"
    CONNECTING = "connecting"
    LIVE = "live"
    ENDING = "ending"  # we said goodbye and wait for the server's final word
    ENDED = "ended"


class Trigger(Enum):
    START = "start"
    READY = "ready"  # the server says the session is live
    HANG_UP = "hang_up"  # we ask for the end
    END = "end"  # the call is over, for whatever reason


class Op(Enum):
    SEND_AUDIO = "send audio"
    ANSWER_MARK = "answer a mark"
    SEND_FUNCTION_RESULT = "send a function result"


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
    (Phase.ENDING, Trigger.END): Phase.ENDED,
}

# Mark answers and function results may still go out while we wait for the server's
# final word: they settle what the agent already asked; new audio may not.
_ALLOWED: dict[Phase, frozenset[Op]] = {
    Phase.NEW: frozenset(),
    Phase.CONNECTING: frozenset(),
    Phase.LIVE: frozenset(Op),
    Phase.ENDING: frozenset({Op.ANSWER_MARK, Op.SEND_FUNCTION_RESULT}),
    Phase.ENDED: frozenset(),
}


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
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._phase = Phase.NEW
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
        with self._lock:
            return op in _ALLOWED[self._phase]

    def require(self, op: Op) -> None:
        with self._lock:
            if op not in _ALLOWED[self._phase]:
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
        """The connection is gone: expected after our goodbye, a failure before it."""
        with self._lock:
            asked = self._phase is Phase.ENDING
            reason = EndReason.SERVER if asked else EndReason.ERROR
            changed = self._transition(Trigger.END, reason, None if asked else e.error)
        self._deliver()
        return changed

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
        self._phase = new
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
