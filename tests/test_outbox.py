"""The call connections' shared writer, on real sockets (socket pairs, small buffers).

What it promises (aivoco/protocols/_outbox.py): callers never block; each connection's
writes go out in the order they were put; a peer that stops reading holds up only its
own queue, which is bounded; closing flushes what was queued, within a timeout.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from aivoco.audio.clock import shared_clock
from aivoco.protocols import _outbox
from aivoco.protocols._outbox import Outbox, SharedWriter

FRAME = b"x" * 1000


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def pair(made: list[tuple[socket.socket, socket.socket]]) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    # Small buffers (no autotuning): a peer that does not read fills them in a few frames.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    made.append((ours, theirs))
    return ours, theirs


def read_all(sock: socket.socket, size: int, timeout_s: float = 5.0) -> bytes:
    sock.settimeout(timeout_s)
    got = b""
    while len(got) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def boxed(
    made: list[tuple[socket.socket, socket.socket]],
) -> tuple[Outbox, socket.socket, socket.socket]:
    """A writer of its own, a socket pair and the outbox writing to our end."""
    ours, theirs = pair(made)
    return SharedWriter("test-writer").outbox(lambda: ours), ours, theirs


def test_writes_go_out_in_order_and_flush_waits_for_them(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    box, ours, theirs = boxed(pairs)
    for i in range(50):
        assert box.put(functools.partial(ours.sendall, b"%04d" % i))
    reader = threading.Thread(target=lambda: got.append(read_all(theirs, 200)))
    got: list[bytes] = []
    reader.start()
    assert box.flush(5.0)
    reader.join(5)
    assert got == [b"".join(b"%04d" % i for i in range(50))]
    assert box.pending == 0


def test_a_peer_that_stops_reading_holds_up_only_its_own_queue(
    pairs: list[tuple[socket.socket, socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_outbox, "MAX_PENDING", 100)
    writer = SharedWriter("test-writer")
    stuck, _never_read = pair(pairs)
    fine, peer = pair(pairs)
    stuck_box = writer.outbox(lambda: stuck)
    fine_box = writer.outbox(lambda: fine)
    t0 = time.monotonic()
    accepted = sum(stuck_box.put(lambda: stuck.sendall(FRAME)) for _ in range(150))
    put_s = time.monotonic() - t0
    # The caller never waited for the peer, and the queue stopped at its bound.
    assert put_s < 1.0
    assert accepted <= 100 + 50  # what the writer took out while we queued, at most
    assert stuck_box.refused == 150 - accepted
    # Meanwhile the other connection's writes go out, in order, promptly.
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(read_all(peer, 80)))
    reader.start()
    for i in range(20):
        fine_box.put(functools.partial(fine.sendall, b"%04d" % i))
    assert fine_box.flush(2.0), "a stalled peer held up another connection"
    reader.join(5)
    assert got == [b"".join(b"%04d" % i for i in range(20))]
    # The stalled one is still waiting: its socket never became writable again.
    assert stuck_box.pending > 0
    assert not stuck_box.flush(0.2)
    stuck_box.discard()
    assert stuck_box.pending == 0


def test_a_failing_write_is_dropped_and_the_rest_go_on(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    box, ours, theirs = boxed(pairs)

    def broken() -> None:
        raise OSError("peer reset")

    box.put(lambda: ours.sendall(b"a"))
    box.put(broken)
    box.put(lambda: ours.sendall(b"b"))
    assert box.flush(2.0)
    assert read_all(theirs, 2) == b"ab"


def test_writes_to_a_closed_socket_are_dropped_at_once(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    box, ours, _theirs = boxed(pairs)
    ours.close()
    for _ in range(5):
        box.put(lambda: ours.sendall(b"x"))
    assert box.flush(2.0)  # each failed (logged) instead of waiting for writability


def test_flush_waits_for_the_write_in_progress(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """The queue is empty as soon as the last write is taken from it; closing must still
    wait for that write (the close frame) to finish before it shuts the socket."""
    box, _ours, _theirs = boxed(pairs)
    release = threading.Event()

    def slow_write() -> None:
        release.wait(5)

    box.put(slow_write)
    deadline = time.monotonic() + 2
    while box.pending and time.monotonic() < deadline:
        time.sleep(0.005)  # until the writer has taken it
    assert box.pending == 0
    assert not box.flush(0.2)
    release.set()
    assert box.flush(2.0)


def test_a_write_put_from_the_clock_goes_out_after_the_batch(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """The uplink's frames are put from the shared clock: the writer is woken once the
    wake-up's jobs are done, not in the middle of them (where it would trade the
    interpreter lock with the jobs still to run)."""
    box, ours, theirs = boxed(pairs)
    box.put(lambda: None)  # the writer thread is started and idle
    assert box.flush(2.0)
    theirs.setblocking(False)
    during: list[bytes] = []
    ran = threading.Event()

    def job(now: float) -> bool:
        box.put(lambda: ours.sendall(b"frame"))
        time.sleep(0.1)  # the rest of the batch; the writer could run meanwhile
        try:
            during.append(theirs.recv(100))
        except BlockingIOError:
            during.append(b"")
        ran.set()
        return False

    handle = shared_clock().every(0.02, job, lambda exc: None)
    try:
        assert ran.wait(5)
    finally:
        handle.cancel()
    assert during == [b""]  # nothing was written while the batch ran
    assert read_all(theirs, 5) == b"frame"  # and it went out after it
