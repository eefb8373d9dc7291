"""The call connections' writes on the shared loop, on real sockets (socket pairs, small
buffers).

What it promises (aivoco/protocols/_outbox.py): callers never block; each connection's
frames go out whole and in the order they were put, a frame the socket took only part
of resuming where it stopped; a peer that stops reading holds up only its own queue,
which is bounded; closing flushes what was queued, within a timeout, and once discarded
the loop leaves the socket alone.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from aivoco.audio.clock import shared_clock
from aivoco.protocols import _outbox
from aivoco.protocols._loop import shared_loop
from aivoco.protocols._outbox import Outbox

FRAME = b"x" * 1000


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    shared_loop().acquire()  # what a call driver holds while connected
    yield made
    shared_loop().release()
    for ours, theirs in made:
        ours.close()
        theirs.close()


def pair(made: list[tuple[socket.socket, socket.socket]]) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    # Small buffers (no autotuning): a peer that does not read fills them in a few frames.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    ours.setblocking(False)
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
    """A socket pair and an outbox writing to our end."""
    ours, theirs = pair(made)
    return Outbox(lambda: ours, threading.Lock()), ours, theirs


def test_frames_go_out_whole_in_order_and_flush_waits_for_them(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """Frames larger than the socket's buffer are taken in parts; the rest of a frame
    goes out before the next one starts, as the peer reads."""
    box, _ours, theirs = boxed(pairs)
    frames = [(b"%04d" % i) * (1 + 4000 * (i % 3)) for i in range(30)]  # 4 B .. 32 KB
    for data in frames:
        assert box.put(data)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(read_all(theirs, len(b"".join(frames)))))
    reader.start()
    assert box.flush(5.0)
    reader.join(5)
    assert got == [b"".join(frames)]
    assert box.pending == 0


def test_a_peer_that_stops_reading_holds_up_only_its_own_queue(
    pairs: list[tuple[socket.socket, socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_outbox, "MAX_PENDING", 100)
    stuck, _never_read = pair(pairs)
    fine, peer = pair(pairs)
    stuck_box = Outbox(lambda: stuck, threading.Lock())
    fine_box = Outbox(lambda: fine, threading.Lock())
    t0 = time.monotonic()
    accepted = sum(stuck_box.put(FRAME) for _ in range(150))
    put_s = time.monotonic() - t0
    # The caller never waited for the peer, and the queue stopped at its bound.
    assert put_s < 1.0
    assert accepted <= 100 + 50  # what the loop wrote out while we queued, at most
    assert stuck_box.refused == 150 - accepted
    # Meanwhile the other connection's frames go out, in order, promptly.
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(read_all(peer, 80)))
    reader.start()
    for i in range(20):
        fine_box.put(b"%04d" % i)
    assert fine_box.flush(2.0), "a stalled peer held up another connection"
    reader.join(5)
    assert got == [b"".join(b"%04d" % i for i in range(20))]
    # The stalled one is still waiting: its socket never had room again.
    assert stuck_box.pending > 0
    assert not stuck_box.flush(0.2)
    stuck_box.discard()
    assert stuck_box.pending == 0
    assert not stuck_box.put(FRAME)  # discarded: nothing more is queued


def test_a_stalled_peer_that_reads_again_gets_everything(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """The loop watches a full socket for room and carries on by itself."""
    box, _ours, theirs = boxed(pairs)
    frames = [bytes([65 + i % 26]) * 1000 for i in range(60)]  # far more than the buffers
    for data in frames:
        box.put(data)
    time.sleep(0.2)  # the socket is full and the rest waits
    assert box.pending > 0
    got = read_all(theirs, 60_000)
    assert box.flush(2.0)
    assert got == b"".join(frames)


def test_writes_to_a_closed_socket_are_dropped_at_once(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    box, ours, _theirs = boxed(pairs)
    ours.close()
    for _ in range(5):
        box.put(b"x")
    assert box.flush(2.0)  # dropped (logged) instead of waiting for room


def test_a_peer_gone_while_frames_wait_drops_them(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    box, _ours, theirs = boxed(pairs)
    for _ in range(60):
        box.put(FRAME)
    time.sleep(0.1)
    assert box.pending > 0  # waiting for room
    theirs.close()  # the peer goes away: the loop's next attempt fails
    assert box.flush(2.0)


def test_a_frame_put_from_the_clock_goes_out_after_the_batch(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """The uplink's frames are put from the shared clock: they are written once the
    wake-up's jobs are done, on the same thread, not in the middle of them."""
    box, _ours, theirs = boxed(pairs)
    theirs.setblocking(False)
    during: list[bytes] = []
    ran = threading.Event()
    threads: list[str] = []

    def job(now: float) -> bool:
        box.put(b"frame")
        time.sleep(0.1)  # the rest of the batch
        try:
            during.append(theirs.recv(100))
        except BlockingIOError:
            during.append(b"")
        threads.append(threading.current_thread().name)
        ran.set()
        return False

    handle = shared_clock().every(0.02, job, lambda exc: None)
    try:
        assert ran.wait(5)
    finally:
        handle.cancel()
    assert during == [b""]  # nothing was written while the batch ran
    assert read_all(theirs, 5) == b"frame"  # and it went out after it
    assert threads == ["aivoco-clock"]
