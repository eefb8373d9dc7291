"""Every agent call in the process read on the shared clock's event loop
(aivoco/protocols/_reader.py), on real sockets: many calls served by that one thread, a
hostile or stalled peer costing only its own call, `Disconnected` reported once, TLS
bytes the selector cannot see, and the frame parser fed in every possible piece."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import websocket
from _raw_ws import RawPeer, server_frame
from servers import RecordingCallServer

from aivoco.errors import ProtocolError
from aivoco.protocols._loop import shared_loop
from aivoco.protocols._reader import SharedReader
from aivoco.protocols._ws_frames import FrameParser, TooBigError
from aivoco.protocols.call_driver import MAX_MESSAGE_BYTES, CallDriver
from aivoco.wire import events as ev

KEY = "live-reader-5e2a"
AGENT = "agent-r"
MARK = json.dumps({"event": "mark", "mark": {"name": "m"}}).encode()


def events_of(q: ev.EventQueue, timeout_s: float = 0.3) -> list[ev.Event]:
    out: list[ev.Event] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = q.get(timeout=0.02)
        if item is not None:
            out.append(item.event)
    return out


def wait_event(q: ev.EventQueue, kind: type, timeout_s: float = 3.0) -> tuple[ev.Event, float]:
    """The first event of `kind` and when it arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = q.get(timeout=0.02)
        if item is not None and isinstance(item.event, kind):
            return item.event, item.at
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s")


def aivoco_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("aivoco-")]


def open_driver(url: str, **kwargs: object) -> tuple[CallDriver, ev.EventQueue]:
    driver = CallDriver(url, KEY, AGENT, **kwargs)  # type: ignore[arg-type]
    q = ev.EventQueue()
    driver.open(q, timeout_s=5)
    return driver, q


@pytest.fixture
def drivers() -> Iterator[list[CallDriver]]:
    made: list[CallDriver] = []
    yield made
    for driver in made:
        driver.close()


def test_the_clock_thread_serves_many_calls_and_stops_after_the_last(
    drivers: list[CallDriver],
) -> None:
    with RecordingCallServer() as server:
        queues = []
        for _ in range(8):
            driver, q = open_driver(f"{server.url}/ws")
            drivers.append(driver)
            queues.append(q)
        server.wait_for_frames(8)  # every call's `start` is in (written on the loop)
        # One thread for all of them: no reader, writer or watchdog thread, per call or
        # shared (the first driver ran two per call, the next a reader and a writer).
        names = aivoco_threads()
        assert "aivoco-clock" in names and not [n for n in names if "call" in n], names
        server.send_json({"event": "mark", "mark": {"name": "hello"}})  # to every call
        for q in queues:
            wait_event(q, ev.PlaybackMark)
        for driver in drivers:
            driver.close()
    assert until(lambda: "aivoco-clock" not in aivoco_threads())


HOSTILE = {
    "stall": server_frame(b"x" * 1000)[:40],  # a frame cut short, then nothing
    "garbage": b"\x8f\x00" * 3,  # an opcode that does not exist
    "too-big": b"\x81\x7f" + (MAX_MESSAGE_BYTES + 1).to_bytes(8, "big"),  # refused
    "bad-utf8": server_frame(b"\xff\xfe bad utf-8"),  # a text message that is not UTF-8
}


def assert_prompt(peer: RawPeer, q: ev.EventQueue, count: int) -> None:
    """`count` messages from `peer`, one at a time, each arriving within a second."""
    for i in range(count):
        sent_at = time.monotonic()
        peer.send_frame(MARK)
        _, got_at = wait_event(q, ev.PlaybackMark, 2.0)
        assert got_at - sent_at < 1.0, f"message {i} took {got_at - sent_at:.2f} s"


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_peer_costs_only_its_own_call(kind: str, drivers: list[CallDriver]) -> None:
    with RawPeer() as bad_peer, RawPeer() as good_peer:
        bad, bad_q = open_driver(bad_peer.url, ping_interval_s=60.0)
        good, good_q = open_driver(good_peer.url, ping_interval_s=60.0)
        drivers.extend([bad, good])
        bad_peer.send_raw(HOSTILE[kind])
        time.sleep(0.1)  # the reader is on the hostile bytes now
        assert_prompt(good_peer, good_q, 20)
        lost = [e for e in events_of(bad_q, 1.5) if isinstance(e, ev.Disconnected)]
        if kind == "too-big":  # refused with 1009, then reported once
            assert len(lost) == 1 and isinstance(lost[0].error, ProtocolError)
            assert (8, (1009).to_bytes(2, "big")) in bad_peer.read_frames(1.0)
        elif kind == "bad-utf8":
            assert len(lost) == 1 and "UTF-8" in lost[0].detail
        elif kind == "garbage":
            assert len(lost) == 1 and "opcode" in lost[0].detail
        else:
            assert lost == []  # a stalled peer is the watchdog's business (60 s here)
        assert [e for e in events_of(good_q, 0.1) if isinstance(e, ev.Disconnected)] == []


def test_a_flooding_peer_does_not_hold_up_the_others(drivers: list[CallDriver]) -> None:
    """Every call is read on the clock's loop: a peer sending valid messages as fast as
    TCP allows is served a few reads per turn, and the other calls' messages still come
    through promptly (its own surplus is dropped and counted, never blocking the loop)."""
    media = json.dumps({"event": "mark", "mark": {"name": "flood"}}).encode()
    blob = server_frame(media) * 2000
    stop = threading.Event()
    with RawPeer() as bad_peer, RawPeer() as good_peer:
        bad, _bad_q = open_driver(bad_peer.url, ping_interval_s=60.0)
        good, good_q = open_driver(good_peer.url, ping_interval_s=60.0)
        drivers.extend([bad, good])
        conn = bad_peer.wait()

        def flood() -> None:
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    conn.sendall(blob)

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        try:
            time.sleep(0.2)  # the loop is busy with the flood now
            assert_prompt(good_peer, good_q, 10)
        finally:
            stop.set()
        assert bad.net.messages_received > 2000  # it was being read all along
        assert not bad.ended


@pytest.mark.parametrize("ending", ["close-frame", "reset", "bug", "close-then-reset"])
def test_disconnected_is_reported_exactly_once(ending: str, drivers: list[CallDriver]) -> None:
    with RawPeer() as peer:
        driver, q = open_driver(peer.url)
        drivers.append(driver)
        conn = peer.wait()
        if ending == "bug":
            driver._message = None  # type: ignore[assignment,method-assign] # a bug of ours
            peer.send_frame(MARK)
        if ending.startswith("close"):
            peer.send_frame((1000).to_bytes(2, "big") + b"bye", opcode=8)
        if ending.endswith("reset"):
            linger_0 = struct.pack("ii", 1, 0)  # close with a reset, not a FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_0)
            conn.close()
        seen = [e for e in events_of(q, 1.0) if isinstance(e, ev.Disconnected)]
        driver.close()
        seen += [e for e in events_of(q, 0.2) if isinstance(e, ev.Disconnected)]
    assert len(seen) == 1, seen
    if ending.startswith("close"):
        assert "close code 1000: bye" in seen[0].detail
    if ending == "bug":
        assert "the reader failed (TypeError)" in seen[0].detail


def test_tls_bytes_held_by_the_tls_layer_are_read_at_once(
    authority: tuple[ssl.SSLContext, Path], drivers: list[CallDriver]
) -> None:
    """A message in the same TLS record as the 101 response, and a large message over
    many records: both arrive without anything more from the peer (the selector does
    not see bytes the TLS layer already decrypted)."""
    server_ctx, pem = authority
    big = json.dumps({"event": "mark", "mark": {"name": "b" * 300_000}}).encode()
    with RawPeer(server_ctx, first=server_frame(MARK)) as peer:
        driver, q = open_driver(peer.url, ca_file=pem, ping_interval_s=60.0)
        drivers.append(driver)
        first, _ = wait_event(q, ev.PlaybackMark, 2.0)
        peer.send_frame(big)
        second, _ = wait_event(q, ev.PlaybackMark, 3.0)
    assert isinstance(first, ev.PlaybackMark) and first.name == "m"
    assert isinstance(second, ev.PlaybackMark) and len(second.name) == 300_000


# -- the shared reader alone, on socket pairs ------------------------------------------------
class Conn:
    """A `Served` that counts what it read; `explode` makes serving it raise."""

    def __init__(self, sock: socket.socket, explode: bool = False) -> None:
        self.sock = sock
        self.explode = explode
        self.read = 0
        self.failures: list[Exception] = []
        self.ended = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def on_readable(self, now: float) -> bool:
        if self.explode:
            raise RuntimeError("a bug")
        with contextlib.suppress(BlockingIOError):
            self.read += len(self.sock.recv(65536))
        return False

    def on_timer(self, now: float) -> float | None:
        return None

    def on_failure(self, exc: Exception) -> None:
        self.failures.append(exc)
        self.ended = True


def until(check: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_a_bug_serving_one_connection_ends_it_and_the_reader_serves_the_rest() -> None:
    reader = SharedReader()
    pairs = [socket.socketpair() for _ in range(3)]
    for ours, _ in pairs:
        ours.setblocking(False)
    conns = [Conn(pairs[0][0], explode=True), Conn(pairs[1][0]), Conn(pairs[2][0])]
    regs = [reader.add(c) for c in conns]
    try:
        for _, theirs in pairs:
            theirs.sendall(b"abc")
        assert until(lambda: conns[1].read == 3 and conns[2].read == 3)
        assert until(regs[0].gone.is_set)
        assert [type(e) for e in conns[0].failures] == [RuntimeError]  # reported once
        pairs[1][1].sendall(b"de")
        assert until(lambda: conns[1].read == 5)
        assert all(reader.remove(r) for r in regs)
        # The loop ends with its last user.
        assert until(lambda: "aivoco-clock" not in aivoco_threads())
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_a_socket_closed_while_still_read_does_not_spoil_its_number() -> None:
    """A removal that timed out leaves the loop reading a descriptor whose socket the
    driver then closed; the next connection given that number is still served."""
    reader = SharedReader()
    old_ours, old_theirs = socket.socketpair()
    old_ours.setblocking(False)
    stale = Conn(old_ours)
    old_reg = reader.add(stale)  # never removed, like a removal that timed out
    assert until(lambda: old_reg.registered and not old_reg.again)  # served once: idle
    number = old_ours.fileno()
    old_ours.close()
    old_theirs.close()
    pairs = [socket.socketpair() for _ in range(4)]  # one of them gets the number back
    ours, theirs = next(p for p in pairs if p[0].fileno() == number or p[1].fileno() == number)
    if theirs.fileno() == number:
        ours, theirs = theirs, ours
    ours.setblocking(False)
    fresh = Conn(ours)
    reg = reader.add(fresh)
    try:
        theirs.sendall(b"hello")
        assert until(lambda: fresh.read == 5)
        assert not fresh.failures
        assert reader.remove(reg)
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        shared_loop().release()  # the stale registration's hold


# -- the frame parser ------------------------------------------------------------------------
def test_frames_fed_a_byte_at_a_time_come_out_whole() -> None:
    stream = (
        server_frame(b'{"a": 1}')
        + server_frame(b"ping!", opcode=9)
        + server_frame(b"part one, ", fin=False)
        + server_frame(b"pong", opcode=10)  # a control frame between fragments
        + server_frame(b"part two", opcode=0)
        + server_frame(bytes(70_000), opcode=2)  # past a 64-bit length's threshold
    )
    parser = FrameParser(MAX_MESSAGE_BYTES)
    got = []
    pieces = [stream[i : i + 1] for i in range(200)]  # a byte at a time, then bigger
    pieces += [stream[i : i + 997] for i in range(200, len(stream), 997)]
    for piece in pieces:
        parser.feed(piece)
        while (message := parser.next_message()) is not None:
            got.append(message)
    assert got == [
        (1, b'{"a": 1}'),
        (9, b"ping!"),
        (10, b"pong"),
        (1, b"part one, part two"),
        (2, bytes(70_000)),
    ]


def test_the_parser_refuses_a_message_too_big_from_its_header_alone() -> None:
    parser = FrameParser(1000)
    parser.feed(b"\x82\x7e" + (1001).to_bytes(2, "big"))  # no payload at all yet
    with pytest.raises(TooBigError, match="1001 bytes"):
        parser.next_message()
    fragmented = FrameParser(1000)  # fragments adding up past the limit
    fragmented.feed(server_frame(b"x" * 600, fin=False) + server_frame(b"x" * 600, opcode=0))
    with pytest.raises(TooBigError, match="1200 bytes"):
        fragmented.next_message()
    invalid = FrameParser(1000)
    invalid.feed(server_frame(b"x", opcode=0))  # a continuation of nothing
    with pytest.raises(websocket.WebSocketProtocolException):
        invalid.next_message()
