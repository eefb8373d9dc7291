"""One reader thread for every agent-call WebSocket in the process.

Why not a thread per connection: each agent call had its own reader thread (a blocking
`recv`) and a watchdog thread. With forty calls those eighty threads queued for the
interpreter lock whenever the agents' replies arrived, and the shared clock thread
(`aivoco/audio/clock.py`, every call's uplink) waited 100-400 ms for it between jobs
(docs/performance.md#reader). Here one thread waits on a selector over every
connection's socket, reads what arrived without blocking, and runs each connection's
timers (the watchdog) from one heap: the mirror of the one writer (`_outbox.py`).

A connection (`Served`) reads and parses its own bytes; this module only decides when.
One connection's failure, even a bug of ours, ends that connection (`Served.on_failure`
reports it) and never this thread. The thread starts with the first connection and
stops when the last one is gone.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from typing import Protocol

log = logging.getLogger("aivoco.call")

NAME = "aivoco-call-reader"


class Served(Protocol):
    """One connection as the shared reader serves it (every method runs on its thread)."""

    @property
    def ended(self) -> bool:
        """True once the connection reported its end: the reader forgets it."""

    def fileno(self) -> int: ...

    def on_readable(self, now: float) -> bool:
        """Read and handle what arrived, without blocking; True if more may be waiting
        that the selector cannot see (a turn's limit reached, bytes a TLS layer holds)."""

    def on_timer(self, now: float) -> float | None:
        """Run the connection's timers; the next time to be called (None: no more)."""

    def on_failure(self, exc: Exception) -> None:
        """Serving raised `exc` (a bug): report the connection as ended."""


class Registration:
    """A connection's place in the reader; `gone` is set once the reader let it go."""

    def __init__(self, conn: Served) -> None:
        self.conn = conn
        self.gone = threading.Event()
        self.removed = False  # asked to go (from another thread): not served any more
        self.registered = False
        self.fd = -1
        self.timer_at = float("inf")


class SharedReader:
    def __init__(self, name: str = NAME) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._ops: list[Registration] = []  # to add or remove, in order (under _lock)
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._live: dict[int, Registration] = {}  # id -> registration (reader thread only)
        self._timers: list[tuple[float, int, Registration]] = []
        self._seq = itertools.count()
        self._again: dict[int, Registration] = {}

    # -- any thread ------------------------------------------------------------------
    def add(self, conn: Served) -> Registration:
        """Serve `conn` (its socket open and non-blocking) from the reader thread."""
        reg = Registration(conn)
        with self._lock:
            self._ops.append(reg)
            if self._thread is None:
                self._open()
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            else:
                self._wake()
        return reg

    def remove(self, reg: Registration, timeout_s: float = 2.0) -> bool:
        """Stop serving; returns once the reader will not touch the socket again (so the
        caller may close it), False if that took longer than `timeout_s`."""
        if threading.current_thread() is self._thread:
            self._drop(reg)
            return True
        with self._lock:
            if reg.gone.is_set():
                return True
            reg.removed = True
            self._ops.append(reg)
            self._wake()
        return reg.gone.wait(timeout_s)

    def schedule(self, reg: Registration, at: float) -> None:
        """Call the connection's `on_timer` at `at` (reader thread only: from a callback)."""
        if at < reg.timer_at and not reg.gone.is_set():
            reg.timer_at = at
            heapq.heappush(self._timers, (at, next(self._seq), reg))

    def _open(self) -> None:
        if self._sel is None:
            self._sel = selectors.DefaultSelector()  # epoll: no limit of 1024 descriptors
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._sel.register(self._wake_r, selectors.EVENT_READ, None)

    def _close(self) -> None:
        """Release the selector and the wake-up pair (under _lock, by the last turn)."""
        for closable in (self._sel, self._wake_r, self._wake_w):
            if closable is not None:
                closable.close()
        self._sel = self._wake_r = self._wake_w = None
        self._timers.clear()

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        with contextlib.suppress(OSError):  # full: the reader has a wake-up pending anyway
            self._wake_w.send(b"\0")

    # -- the reader thread -----------------------------------------------------------
    def _run(self) -> None:
        sel = self._sel
        assert sel is not None
        while self._apply_ops():
            try:
                self._turn(sel)
            except Exception:  # a bug of this loop's own: log it, keep serving
                log.exception("the call reader's turn failed")
                time.sleep(0.01)  # not a busy loop if it keeps failing

    def _turn(self, sel: selectors.BaseSelector) -> None:
        """Wait for bytes or the next timer; serve the ready connections, then timers."""
        ready = sel.select(self._timeout())
        now = time.monotonic()
        due, self._again = self._again, {}
        for key, _ in ready:
            reg = key.data
            if reg is None:
                self._drain_wake()
            else:
                due[id(reg)] = reg
        for reg in due.values():
            self._serve(reg, now)
        self._run_timers(time.monotonic())

    def _apply_ops(self) -> bool:
        """Register and drop as asked; False (the thread ends) when nothing is left."""
        with self._lock:
            ops, self._ops = self._ops, []
        for reg in ops:
            if reg.removed:
                self._drop(reg)
            elif not reg.registered and not reg.gone.is_set():
                self._register(reg)
        with self._lock:
            if not self._live and not self._ops:
                self._thread = None
                self._close()
                return False
        return True

    def _register(self, reg: Registration) -> None:
        assert self._sel is not None
        try:
            fd = reg.conn.fileno()
            stale = self._sel.get_map().get(fd)
            if stale is not None:  # its socket was closed before it was let go
                self._drop(stale.data)
            self._sel.register(fd, selectors.EVENT_READ, reg)
        except (OSError, ValueError, KeyError) as exc:  # closed meanwhile
            self._fail(reg, exc)
            return
        reg.fd, reg.registered = fd, True
        self._live[id(reg)] = reg
        self.schedule(reg, time.monotonic())
        self._again[id(reg)] = reg  # bytes may have arrived before it was registered

    def _drop(self, reg: Registration) -> None:
        if reg.registered and self._sel is not None:
            reg.registered = False
            with contextlib.suppress(OSError, ValueError, KeyError):  # not there any more
                self._sel.unregister(reg.fd)
        self._live.pop(id(reg), None)
        self._again.pop(id(reg), None)
        reg.gone.set()

    def _serve(self, reg: Registration, now: float) -> None:
        if reg.removed or not reg.registered:
            return
        try:
            more = reg.conn.on_readable(now)
        except Exception as exc:  # one connection's bug must not stop the others
            self._fail(reg, exc)
            return
        if reg.conn.ended:
            self._drop(reg)
        elif more:
            self._again[id(reg)] = reg

    def _run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            at, _, reg = heapq.heappop(self._timers)
            if at != reg.timer_at or reg.removed or not reg.registered:
                continue  # superseded by an earlier one, or the connection is gone
            reg.timer_at = float("inf")
            try:
                following = reg.conn.on_timer(now)
            except Exception as exc:
                self._fail(reg, exc)
                continue
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

    def _timeout(self) -> float | None:
        if self._again:
            return 0.0
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:  # drained
            pass


_shared = SharedReader()


def shared_reader() -> SharedReader:
    return _shared
