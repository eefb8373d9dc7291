"""One writer thread for every agent-call WebSocket in the process.

Why not write from the caller: the uplink's frames come from the process's shared clock
(`aivoco/audio/clock.py`), which runs every call's jobs on one thread. A blocking
`send()` there paid for every other call: the socket write releases the interpreter
lock, and with fifty calls the clock thread queued behind the readers for it fifty times
per 20 ms step; and a peer that stops reading (its TCP window full) blocked the write,
and with it every call's uplink, speaker and timers, for as long as the peer wished.

Here callers only queue (`Outbox.put`), in order, and one thread writes. It writes to
a socket only when the socket can take more (`poll`: writable means a third of its send
buffer is free, more than any frame we send), so a stalled peer holds up its own queue
and nobody else's; the driver sees the backlog (`Outbox.pending`) and drops audio
rather than queue it without bound (docs/performance.md#writer). A message larger than
that free space may still block the writer until the peer reads or is dropped. A put
from the shared clock wakes the writer once the clock's batch is done
(docs/performance.md#batch).
"""

from __future__ import annotations

import collections
import logging
import select
import socket
import threading
from collections.abc import Callable

from aivoco.audio.clock import shared_clock

log = logging.getLogger("aivoco.call")

Write = Callable[[], None]
# How long a stalled socket waits before it is asked again (only while one is stalled).
RETRY_S = 0.01
# Messages one connection may have waiting; past it `put` refuses (control messages
# included: the peer has not read for a long while, and the watchdog will drop it).
MAX_PENDING = 2000
# Writes to one connection per turn: what a 20 ms step queues (a frame, a mark answer),
# and far less than the third of a send buffer that `poll` promises is free.
BATCH = 4


class Outbox:
    """One connection's queue of writes, in the order they were put."""

    def __init__(self, writer: SharedWriter, sock: Callable[[], socket.socket | None]) -> None:
        self._writer = writer
        self._sock = sock  # the connection's socket now (None once it is gone)
        self._queue: collections.deque[Write] = collections.deque()
        self._done = threading.Condition(writer.lock)
        self._writing = False  # a write taken from the queue is still going on
        self.refused = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def put(self, write: Write) -> bool:
        """Queue a write (False, counted, if MAX_PENDING are already waiting)."""
        return self._writer.put(self, write)

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued so far was written (or failed); False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: not self._queue and not self._writing, timeout_s)

    def discard(self) -> None:
        """Forget what is still queued (the connection is being torn down)."""
        with self._done:
            self._queue.clear()
            self._done.notify_all()


class SharedWriter:
    def __init__(self, name: str = "aivoco-call-writer") -> None:
        self.name = name
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._ready: collections.OrderedDict[int, Outbox] = collections.OrderedDict()
        self._thread: threading.Thread | None = None

    def outbox(self, sock: Callable[[], socket.socket | None]) -> Outbox:
        return Outbox(self, sock)

    def put(self, box: Outbox, write: Write) -> bool:
        with self.lock:
            if len(box._queue) >= MAX_PENDING:
                box.refused += 1
                return False
            box._queue.append(write)
            self._ready[id(box)] = box
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        # From the shared clock (the uplink's frames): once its batch of jobs is done, so
        # the writer does not take the interpreter lock back and forth with the jobs
        # still to run, and wakes once per step, not once per call
        # (docs/performance.md#batch). From any other thread: at once.
        shared_clock().after_batch(self._notify)
        return True

    def _notify(self) -> None:
        with self.lock:
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self._ready:
                    self._wake.wait()
                boxes = list(self._ready.values())
            writable = self._writable(boxes)
            for box in writable:
                self._write_some(box)
            if not writable:  # every waiting peer is stalled: ask again shortly
                with self.lock:
                    self._wake.wait(RETRY_S)

    def _writable(self, boxes: list[Outbox]) -> list[Outbox]:
        """The boxes whose socket can take a frame now (or is gone: their writes fail
        and are dropped at once rather than wait)."""
        by_fd: dict[int, Outbox] = {}
        out: list[Outbox] = []
        poller = select.poll()  # not select(): a busy process has descriptors past 1024
        for box in boxes:
            fd = _fileno(box._sock())
            if fd < 0:
                out.append(box)
            else:
                by_fd[fd] = box
                poller.register(fd, select.POLLOUT)
        if by_fd:
            # An error or hang-up counts as ready: the write then fails and is dropped.
            out.extend(by_fd[fd] for fd, _ in poller.poll(0) if fd in by_fd)
        return out

    def _write_some(self, box: Outbox) -> None:
        """Up to BATCH of the box's writes (it was writable; a few small frames fit in a
        third of a send buffer), then the next box: each gets its turn."""
        for _ in range(BATCH):
            with self.lock:
                if not box._queue:
                    break
                write = box._queue.popleft()
                box._writing = True
            try:
                write()
            except Exception as exc:  # one connection's failure must not stop the others'
                log.info("send failed: %s", type(exc).__name__)
            finally:
                with self.lock:
                    box._writing = False
        with self.lock:
            if not box._queue:
                self._ready.pop(id(box), None)
                box._done.notify_all()


def _fileno(sock: socket.socket | None) -> int:
    if sock is None:
        return -1
    try:
        return sock.fileno()
    except OSError:
        return -1


_shared = SharedWriter()


def shared_writer() -> SharedWriter:
    return _shared
