"""Reconnecting a dropped call: a new session with the same options, on one timeline.

What may be retried, how often and how long to wait is decided in `lifecycle.py`
(`ReconnectPolicy`, `Lifecycle.disconnected/retry_failed`); this module carries it out:

* `DriverSlot` is the driver the session's parts talk to. It holds the current
  connection's driver and can swap in a new one; events are tagged with the
  connection they came from (`Timed.origin`), so a late word from a connection given
  up on (its `Ready`, its drop) cannot move the new session. Its `net` figures add up
  every connection's, so the summary counts the whole call.
* `Reconnector.run()` runs on its own thread once the call enters RECONNECTING: it
  closes the dropped driver, then per attempt waits the backoff, builds a new driver
  (same options, same builder as the first), opens it and waits for its `Ready`. The
  microphone, the speaker, the recording and the transcript keep running meanwhile, so
  the gap is on the call's timeline; `reconnecting` and `reconnected` records say when.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError, ConnectionFailedError
from aivoco.session.lifecycle import EndReason, Lifecycle, Phase
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.wire import events as ev
from aivoco.wire.driver import Driver, NetStats, ProtocolName

log = logging.getLogger("aivoco.session")

# Events that belong to one connection's session: from an older connection they are stale.
_SESSION_EVENTS = (ev.Ready, ev.Ended, ev.Failed, ev.Disconnected)


class _Tagged:
    """The view of the call's queue one connection writes to: its events carry its number."""

    def __init__(self, queue: ev.EventQueue, origin: int) -> None:
        self._queue = queue
        self._origin = origin

    def put(self, event: ev.Event) -> None:
        self._queue.put(event, self._origin)


class DriverSlot:
    """The call's driver, replaceable (implements the `Driver` contract)."""

    def __init__(self, first: Driver) -> None:
        self._current = first
        self.generation = 0  # connections made before the current one
        self._earlier = NetStats()  # the figures of the connections given up on
        self._lock = threading.Lock()
        self._closed = False
        self.endpoint = first.endpoint

    @property
    def current(self) -> Driver:
        return self._current

    @property
    def protocol(self) -> ProtocolName:
        return self._current.protocol

    @property
    def uplink_rate_hz(self) -> int:
        return self._current.uplink_rate_hz

    @property
    def downlink_rate_hz(self) -> int:
        return self._current.downlink_rate_hz

    @property
    def has_credits(self) -> bool:
        return self._current.has_credits

    @property
    def net(self) -> NetStats:
        """Every connection's figures added up (the transport: the current one's)."""
        with self._lock:
            now, earlier = self._current.net, self._earlier
        return _added(earlier, now)

    def is_stale(self, item: ev.Timed) -> bool:
        """A session event from a connection this call has already replaced."""
        return item.origin != self.generation and isinstance(item.event, _SESSION_EVENTS)

    # -- swapping ----------------------------------------------------------------------
    def retire(self) -> None:
        """Close the current connection (its figures are kept for the totals)."""
        with self._lock:
            driver = self._current
        driver.close()

    def replace(self, driver: Driver) -> bool:
        """Make `driver` the current one; False (and `driver` closed) once closed."""
        with self._lock:
            if not self._closed:
                self._earlier = _added(self._earlier, self._current.net)
                self._current = driver
                self.generation += 1
                return True
        driver.close()
        return False

    # -- the Driver contract -------------------------------------------------------------
    def open(self, events: ev.EventSink, timeout_s: float) -> None:
        with self._lock:
            driver, origin = self._current, self.generation
        sink = _Tagged(events, origin) if isinstance(events, ev.EventQueue) else events
        driver.open(sink, timeout_s)

    def send_audio(self, chunk: AudioChunk) -> None:
        self._current.send_audio(chunk)

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        self._current.send_function_result(call_id, name, result)

    def answer_mark(self, name: str) -> None:
        self._current.answer_mark(name)

    def hang_up(self) -> None:
        self._current.hang_up()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            driver = self._current
        driver.close()


def _added(a: NetStats, b: NetStats) -> NetStats:
    """`a` + `b`, field by field (`b` a live object: read once, as a snapshot)."""
    b = dataclasses.replace(b)
    summed = {
        f.name: getattr(a, f.name) + getattr(b, f.name)
        for f in dataclasses.fields(NetStats)
        if f.name != "transport"
    }
    return NetStats(transport=b.transport or a.transport, **summed)


def came_back(state: CallState, bus: RecordBus, attempt: tuple[int, int], gap_s: float) -> None:
    """The view's entry and the record for a session live again after `gap_s` (called
    on the RECONNECTING -> LIVE transition: right after the new session's `ready`,
    before its audio or text, and whatever happens to the call next)."""
    state.set_reconnect(None)
    state.add_entry("info", f"reconnected after {gap_s:.1f} s")
    bus.emit("reconnected", attempt=attempt[0], of=attempt[1], gap_s=round(gap_s, 2))


class Reconnector:
    """One outage: the attempts the lifecycle allows, until the call is live or over."""

    def __init__(
        self,
        slot: DriverSlot,
        build: Callable[[], Driver],
        lifecycle: Lifecycle,
        *,
        events: ev.EventQueue,
        state: CallState,
        bus: RecordBus,
        connect_timeout_s: float,
    ) -> None:
        self.slot = slot
        self.build = build
        self.lifecycle = lifecycle
        self.events = events
        self.state = state
        self.bus = bus
        self.connect_timeout_s = connect_timeout_s
        self._outage = lifecycle.reconnects  # passed when this outage ends in a session

    def run(self) -> None:
        lc = self.lifecycle
        detail = lc.drop.detail if lc.drop is not None else "the connection dropped"
        self.state.session_dropped()
        self.slot.retire()
        what = "connection lost"
        while True:
            attempt, tries = lc.attempt
            delay_s = lc.policy.delay_s(attempt)
            self.state.set_reconnect((attempt, tries))
            self.state.add_entry("error", f"{what} ({detail}); reconnecting {attempt}/{tries}")
            self.bus.emit("reconnecting", attempt=attempt, of=tries, delay_s=delay_s, reason=detail)
            if lc.wait_until(lambda p: p is not Phase.RECONNECTING, delay_s):
                return  # hung up or ended while waiting
            failure = self._attempt()
            if failure is None:
                break
            detail, what = str(failure), f"try {attempt} failed"
            if not lc.retry_failed(failure):
                return
        # "reconnected" is said by the transition itself (`came_back`), so a hang-up
        # right after it cannot lose the record.

    def _attempt(self) -> AivocoError | None:
        """One try: None when it ended the outage (live again, or the call is over),
        else the error that made it fail (and another try may follow)."""
        deadline = time.monotonic() + self.connect_timeout_s
        try:
            driver = self.build()
        except AivocoError as exc:
            self.lifecycle.end(EndReason.ERROR, exc)
            return None
        if not self.slot.replace(driver):
            return None  # the call is being closed
        try:
            self.slot.open(self.events, self.connect_timeout_s)
        except ConnectionFailedError as exc:
            self.slot.retire()
            return exc
        except AivocoError as exc:  # a refused key or agent: no retry loop
            self.lifecycle.end(EndReason.ERROR, exc)
            return None
        live = self.lifecycle.wait_reconnected(deadline - time.monotonic(), self._outage)
        if live is not False:
            return None
        self.slot.retire()
        if time.monotonic() < deadline:
            return ConnectionFailedError("the new connection dropped before its session started")
        return ConnectionFailedError(
            f"{self.slot.endpoint} did not start a new session within {self.connect_timeout_s:g} s"
        )
