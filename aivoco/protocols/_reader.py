"""Every agent-call WebSocket in the process read on the shared clock's event loop.

Why not a thread per connection: each agent call had its own reader thread (a blocking
`recv`) and a watchdog thread. With forty calls those eighty threads queued for the
interpreter lock whenever the agents' replies arrived, and the shared clock thread
(`aivoco/audio/clock.py`, every call's uplink) waited 100-400 ms for it between jobs.
Why not one reader thread of its own either (the previous design): each message woke it
and it traded the interpreter lock with the clock's thread, which makes the frames and,
since the writes moved there too (`_outbox.py`), sends them. Here the clock's loop
watches every connection's socket (`add_reader`), reads what arrived without blocking
and runs each connection's timers (the watchdog) as loop timers: reading, writing and
the uplink share one thread, as the sts connections do (docs/performance.md#reader).

A connection (`Served`) reads and parses its own bytes; this module only decides when.
One connection's failure, even a bug of ours, ends that connection (`Served.on_failure`
reports it) and never the loop. Each registration holds the loop (`SharedLoop.acquire`)
until it is removed, so the loop outlives every connection it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Protocol

from aivoco.audio.clock import shared_clock
from aivoco.errors import ProtocolMisuseError
from aivoco.protocols._loop import shared_loop

log = logging.getLogger("aivoco.call")


class Served(Protocol):
    """One connection as the loop serves it (every method runs on the loop's thread)."""

    @property
    def ended(self) -> bool:
        """True once the connection reported its end: the loop forgets it."""

    def fileno(self) -> int: ...

    def on_readable(self, now: float) -> bool:
        """Read and handle what arrived, without blocking; True if more may be waiting
        that the selector cannot see (a turn's limit reached, bytes a TLS layer holds)."""

    def on_timer(self, now: float) -> float | None:
        """Run the connection's timers; the next time to be called (None: no more)."""

    def on_failure(self, exc: Exception) -> None:
        """Serving raised `exc` (a bug): report the connection as ended."""


class Registration:
    """A connection's place on the loop; `gone` is set once the loop let it go."""

    def __init__(self, conn: Served, loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self.loop = loop
        self.gone = threading.Event()
        self.registered = False
        self.released = False  # its hold on the shared loop was given back
        self.fd = -1
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = float("inf")
        self.again = False  # a serve is already scheduled with call_soon


class SharedReader:
    """Registrations of connections on the shared loop (no thread of its own)."""

    def add(self, conn: Served) -> Registration:
        """Serve `conn` (its socket open and non-blocking) on the shared loop."""
        reg = Registration(conn, shared_loop().acquire())
        try:
            reg.loop.call_soon_threadsafe(self._register, reg)
        except RuntimeError:  # the loop closed under us: a bug, reported as the end
            self._release(reg)
            raise ProtocolMisuseError("the shared loop is not running") from None
        return reg

    def remove(self, reg: Registration, timeout_s: float = 2.0) -> bool:
        """Stop serving; returns once the loop will not touch the socket again (so the
        caller may close it), False if that took longer than `timeout_s`. Not from the
        loop's own thread: it would wait for itself."""
        if shared_loop().on_loop():
            raise ProtocolMisuseError("remove() on the loop")
        # A closed loop serves it no more either.
        done = reg.gone.is_set() or shared_loop().call(lambda: self._drop(reg), timeout_s)
        self._release(reg)
        return done or reg.loop.is_closed()

    def schedule(self, reg: Registration, at: float) -> None:
        """Call the connection's `on_timer` at `at` (on the loop: from a callback)."""
        if at >= reg.timer_at or not reg.registered:
            return
        if reg.timer is not None:
            reg.timer.cancel()
        reg.timer_at = at
        # The loop's time is time.monotonic(), the connections' clock.
        reg.timer = reg.loop.call_at(at, self._run_timer, reg)

    @staticmethod
    def _release(reg: Registration) -> None:
        if not reg.released:
            reg.released = True
            shared_loop().release()

    # -- on the loop -----------------------------------------------------------------
    def _register(self, reg: Registration) -> None:
        if reg.gone.is_set():
            return
        try:
            fd = reg.conn.fileno()
            _forget_stale(reg.loop, fd)
            reg.loop.add_reader(fd, self._readable, reg)
        except (OSError, ValueError) as exc:  # closed meanwhile
            self._fail(reg, exc)
            return
        reg.fd, reg.registered = fd, True
        self.schedule(reg, time.monotonic())
        self._serve_soon(reg)  # bytes may have arrived before it was registered

    def _drop(self, reg: Registration) -> None:
        if reg.registered:
            reg.registered = False
            with contextlib.suppress(OSError, ValueError):  # not there any more
                reg.loop.remove_reader(reg.fd)
        if reg.timer is not None:
            reg.timer.cancel()
            reg.timer = None
        reg.gone.set()

    def _serve_soon(self, reg: Registration) -> None:
        if not reg.again:
            reg.again = True
            reg.loop.call_soon(self._serve_queued, reg)

    def _readable(self, reg: Registration) -> None:
        """The selector saw bytes. A serve already queued reads them: serving here as
        well would serve a busy connection twice a turn, and each serve queued one more,
        so a flooding peer took ever more of every turn (tests/test_call_reader.py)."""
        if not reg.again:
            self._serve(reg)

    def _serve_queued(self, reg: Registration) -> None:
        reg.again = False
        self._serve(reg)

    def _serve(self, reg: Registration) -> None:
        if not reg.registered:
            return
        shared_clock().run_if_due()  # the uplinks' frames before the replies' bytes
        try:
            more = reg.conn.on_readable(time.monotonic())
        except Exception as exc:  # one connection's bug must not stop the others
            self._fail(reg, exc)
            return
        if reg.conn.ended:
            self._drop(reg)
        elif more:
            self._serve_soon(reg)

    def _run_timer(self, reg: Registration) -> None:
        reg.timer, reg.timer_at = None, float("inf")
        if not reg.registered:
            return
        try:
            following = reg.conn.on_timer(time.monotonic())
        except Exception as exc:
            self._fail(reg, exc)
            return
        if reg.conn.ended:
            self._drop(reg)
        elif following is not None:
            self.schedule(reg, following)

    def _fail(self, reg: Registration, exc: Exception) -> None:
        try:
            reg.conn.on_failure(exc)
        except Exception:
            log.exception("a call connection could not report its failure")
        self._drop(reg)


def _forget_stale(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """A descriptor still read for a socket closed before it was let go (a removal that
    timed out) would make reading its new owner fail: only this connection's socket has
    the number now, and it is not read yet, so a reader left for it is stale. (Its own
    outbox may already watch it for room: that stays.)"""
    with contextlib.suppress(OSError, ValueError):
        loop.remove_reader(fd)


_shared = SharedReader()


def shared_reader() -> SharedReader:
    return _shared
