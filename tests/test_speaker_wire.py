"""The speaker process's wire (aivoco/audio/speaker_wire.py) and its non-blocking sender
(aivoco/audio/speaker_child.Sender), on real pipes. The whole path with a real child and
real devices is tests/test_speaker_proc.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from aivoco.audio import speaker_wire as wire
from aivoco.audio.speaker_child import Sender


def test_a_block_round_trips_exactly() -> None:
    mon = np.linspace(-1, 1, 240, dtype=np.float32).reshape(-1, 1)
    ref = (mon[:200] * 0.5).astype(np.float32)
    data = wire.block(wire.Block(123.456, 10, 20, mon, ref))
    [(kind, payload)] = wire.Decoder().feed(data)
    assert kind is wire.Kind.BLOCK
    got = wire.decode_block(payload)
    assert (got.start_s, got.read_pos, got.write_pos) == (123.456, 10, 20)
    assert np.array_equal(got.monitor, mon) and np.array_equal(got.reference, ref)


def test_play_converts_as_an_audio_chunk_does() -> None:
    pcm = np.array([-32768, -1, 0, 1, 32767], np.int16)
    [(kind, payload)] = wire.Decoder().feed(wire.play(pcm))
    assert kind is wire.Kind.PLAY
    assert wire.decode_play(payload)[:, 0].tolist() == (pcm / 32768.0).astype(np.float32).tolist()


def test_messages_split_anywhere_come_out_whole_and_in_order() -> None:
    stream = b"".join(
        [
            wire.control(wire.Kind.MARK, 1),
            wire.play(np.arange(100, dtype=np.int16)),
            wire.frame(wire.Kind.START),
            wire.control(wire.Kind.CLEAR, 7),
        ]
    )
    for step in (1, 3, 7, len(stream)):
        decoder = wire.Decoder()
        got = []
        for i in range(0, len(stream), step):
            got += decoder.feed(stream[i : i + step])
        assert [k for k, _ in got] == [
            wire.Kind.MARK,
            wire.Kind.PLAY,
            wire.Kind.START,
            wire.Kind.CLEAR,
        ]
        assert wire.decode_json(got[3][1]) == 7 and decoder.pending == 0


@pytest.mark.parametrize(
    "data, match",
    [
        (wire.HEADER.pack(99, 0), "unknown message 99"),
        (wire.HEADER.pack(wire.Kind.BLOCK, wire.MAX_PAYLOAD + 1), "message of"),
    ],
)
def test_corrupt_headers_raise_the_wire_error(data: bytes, match: str) -> None:
    with pytest.raises(wire.SpeakerWireError, match=match):
        wire.Decoder().feed(data)


@pytest.mark.parametrize(
    "decode, payload",
    [
        (wire.decode_block, b"short"),
        (wire.decode_block, wire.BLOCK_HEAD.pack(0.0, 0, 0, 10, 0) + b"\0" * 8),
        (wire.decode_play, b"\0\0\0"),
        (wire.decode_json, b"{not json"),
    ],
)
def test_corrupt_payloads_raise_the_wire_error(decode: object, payload: bytes) -> None:
    with pytest.raises(wire.SpeakerWireError):
        decode(payload)  # type: ignore[operator]


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return out
        out += data


def test_the_sender_never_blocks_and_drops_only_audio_past_its_backlog(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    sender = Sender(w, backlog_bytes=64 << 10)
    audio = wire.block(
        wire.Block(0.0, 0, 0, np.zeros((2400, 1), np.float32), np.zeros((0, 1), np.float32))
    )
    sent_control = 0
    for i in range(200):  # about 2 MB into a 64 kB pipe nobody reads: must not block
        sender.send(audio, audio=True)
        if i % 20 == 0:
            sender.send(wire.control(wire.Kind.EVENTS, {"n": i}))
            sent_control += 1
    assert sender.dropped_blocks > 0
    got = []
    decoder = wire.Decoder()
    while True:
        got += decoder.feed(read_all(r))
        sender.finish(timeout_s=0.1)
        more = read_all(r)
        if not more:
            break
        got += decoder.feed(more)
    kinds = [k for k, _ in got]
    # Every control message arrived, whole and in order; audio only up to the backlog.
    events = [wire.decode_json(p)["n"] for k, p in got if k is wire.Kind.EVENTS]
    assert events == list(range(0, 200, 20)) and len(events) == sent_control
    assert kinds.count(wire.Kind.BLOCK) == 200 - sender.dropped_blocks
    assert decoder.pending == 0


def test_the_sender_stops_quietly_when_the_reader_is_gone() -> None:
    r, w = os.pipe()
    os.close(r)
    sender = Sender(w)
    try:
        sender.send(wire.frame(wire.Kind.START))
        assert sender.broken
        sender.send(wire.frame(wire.Kind.START))  # no exception, nothing written
    finally:
        os.close(w)
