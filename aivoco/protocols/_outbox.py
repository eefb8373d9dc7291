"""Every agent-call WebSocket's writes, made on the shared clock's event loop.

Why not write from the caller: the uplink's frames come from the process's shared clock
(`aivoco/audio/clock.py`), which runs every call's jobs on one thread, and a blocking
`send()` there paid for every other call: a peer that stops reading (its TCP window
full) blocked the write, and with it every call's uplink, speaker and timers, for as
long as the peer wished. Why not a writer thread (the previous design): the clock's
thread made each frame and woke the writer to send it, a second thread and a trade of
the interpreter lock on every 20 ms step (docs/performance.md#writer).

Here callers only queue whole frames (`Outbox.put`, from any thread), in order. The
frames are written on the clock's loop, the thread that made most of them: a put from
a clock job is written once the clock's batch is done, without a wake-up; a put from
another thread wakes the loop once per batch (`SharedLoop.submit`). A write never
blocks: the socket is non-blocking, what it does not take now waits, and the loop
watches the socket for room (`add_writer`) for that connection only, so a stalled peer
holds up its own queue and nobody else's. The driver sees the backlog
(`Outbox.pending`) and drops audio rather than queue it without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable

from aivoco.errors import ProtocolMisuseError
from aivoco.protocols._loop import shared_loop

log = logging.getLogger("aivoco.call")

# Frames one connection may have waiting; past it `put` refuses (control messages
# included: the peer has not read for a long while, and the watchdog will drop it).
MAX_PENDING = 2000
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Outbox:
    """One connection's frames to write, in the order they were put. The socket is
    non-blocking and used only on the loop (and by its owner once `discard` returned)."""

    def __init__(self, sock: Callable[[], socket.socket | None], lock: threading.Lock) -> None:
        self._sock = sock  # the connection's socket now (None once it is gone)
        self._io = lock  # the connection's lock around socket calls
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._queue: collections.deque[memoryview] = collections.deque()
        # A write is coming (asked of the loop, or the loop watches the socket for room):
        # a frame put meanwhile goes with it. Set and cleared under `_lock`, so no frame
        # is put after the last write looked at the queue and before it stood down.
        self._armed = False
        self._watching: tuple[asyncio.AbstractEventLoop, int] | None = None  # loop only
        self._closed = False
        self.refused = 0

    @property
    def pending(self) -> int:
        """Frames not completely written yet."""
        return len(self._queue)

    def put(self, data: bytes) -> bool:
        """Queue a frame (False, counted, if MAX_PENDING are already waiting)."""
        with self._lock:
            if self._closed:
                return False
            if len(self._queue) >= MAX_PENDING:
                self.refused += 1
                return False
            self._queue.append(memoryview(data))
            if self._armed:
                return True
            self._armed = True
        shared_loop().submit(self._write)
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued so far was written (or dropped with a failed
        socket); False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: not self._queue, timeout_s)

    def discard(self, timeout_s: float = 1.0) -> None:
        """Forget what is still queued and stop watching the socket (the connection is
        being torn down): once this returns the loop does not touch the socket again."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._done.notify_all()
        if shared_loop().on_loop():
            self._unwatch()
            return
        # On the loop, after any write in progress there (it may be about to watch).
        with contextlib.suppress(ProtocolMisuseError):  # no loop: nothing watches
            shared_loop().call(self._unwatch, timeout_s)

    # -- on the loop -----------------------------------------------------------------
    def _write(self) -> None:
        """Write what the socket takes now; watch it for room if frames are left."""
        sock = self._sock()
        try:
            left = self._write_some(sock)
        except OSError as exc:  # the connection failed: its reader reports the end
            log.info("send failed: %s", type(exc).__name__)
            self._drop_all()
            left = False
        if left and sock is not None and self._watch(sock):
            return
        self._unwatch()

    def _drop_all(self) -> None:
        """Nothing queued can be written any more: forget it and stand down."""
        with self._lock:
            self._queue.clear()
            self._armed = False
            self._done.notify_all()

    def _write_some(self, sock: socket.socket | None) -> bool:
        """Frames in order until the socket is full (True: some are left, and the box
        stays armed); False once the queue is empty (the box stood down)."""
        if sock is None:
            raise ConnectionError("the connection is closed")
        while True:
            with self._lock:
                if not self._queue or self._closed:
                    self._armed = False
                    self._done.notify_all()
                    return False
                data = self._queue[0]
            try:
                with self._io:
                    sent = sock.send(data)
            except _WOULD_BLOCK:
                return True  # an SSL write is retried with the same bytes, as it must be
            with self._lock:
                if self._queue and self._queue[0] is data:
                    if sent < len(data):
                        self._queue[0] = data[sent:]
                    else:
                        self._queue.popleft()
            if sent < len(data):
                return True

    def _watch(self, sock: socket.socket) -> bool:
        """Have the loop call `_write` when the socket has room (False: it cannot)."""
        if self._watching is not None:
            return True
        loop = asyncio.get_running_loop()
        try:
            if self._closed:  # discarded meanwhile: the socket is about to close
                raise ValueError("discarded")
            fd = sock.fileno()
            loop.add_writer(fd, self._write)
        except (OSError, ValueError):
            # Closed under us: drop (the reader reports the end) rather than spin.
            self._drop_all()
            return False
        self._watching = (loop, fd)
        return True

    def _unwatch(self) -> None:
        if self._watching is None:
            return
        loop, fd = self._watching
        self._watching = None
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            loop.remove_writer(fd)
