"""The agent-call message codec (docs/protocols.md#call): pure, no sockets."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.g711 import ulaw_decode, ulaw_encode
from aivoco.errors import ProtocolError, ProtocolMisuseError
from aivoco.protocols import call_codec as codec
from aivoco.protocols.call_codec import (
    CallEncoder,
    CallIds,
    Clear,
    Connected,
    Mark,
    ServerMedia,
    Stop,
    UnknownEvent,
)

IDS = CallIds("AC" + "a" * 32, "MZ" + "b" * 32, "CA" + "c" * 32)


def tone(ms: int = 20, rate: int = 8000, amplitude: int = 10000) -> AudioChunk:
    n = rate * ms // 1000
    samples = np.rint(amplitude * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)
    return AudioChunk(samples, rate)


def started(custom: dict[str, Any] | None = None) -> CallEncoder:
    encoder = CallEncoder(IDS)
    encoder.handshake()
    encoder.start(custom)
    return encoder


# -- ids and start ----------------------------------------------------------------------
def test_call_ids_are_twilio_style() -> None:
    ids = CallIds.new()
    assert re.fullmatch(r"AC[0-9a-f]{32}", ids.account_sid)
    assert re.fullmatch(r"MZ[0-9a-f]{32}", ids.stream_sid)
    assert re.fullmatch(r"CA[0-9a-f]{32}", ids.call_sid)
    assert CallIds.new() != ids
    assert re.fullmatch(r"MZ[0-9a-f]{32}", CallEncoder().ids.stream_sid)


def test_handshake_then_start_exactly_as_the_notes() -> None:
    encoder = CallEncoder(IDS)
    assert encoder.handshake() == ""
    assert (encoder.started, encoder.sequence_number) == (False, 0)
    text = encoder.start()
    assert json.loads(text) == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": IDS.account_sid,
            "streamSid": IDS.stream_sid,
            "callSid": IDS.call_sid,
            "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": IDS.stream_sid,
    }
    assert text.startswith('{"event":"start","sequenceNumber":"1",')  # compact, as JS sends
    assert (encoder.started, encoder.sequence_number, encoder.media_sent) == (True, 1, 0)


def test_start_carries_custom_parameters() -> None:
    params = {"caller": "+15550100", "lang": "en"}
    message = json.loads(CallEncoder(IDS).start(params))
    assert message["start"]["customParameters"] == params
    with pytest.raises(ProtocolMisuseError, match="keys must be strings"):
        CallEncoder(IDS).start({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(ProtocolMisuseError, match="not JSON"):
        CallEncoder(IDS).start({"x": object()})


# -- numbering ----------------------------------------------------------------------------
def test_media_mark_stop_numbering() -> None:
    encoder = started()
    chunk = tone(20)
    sent = [json.loads(encoder.media(chunk)) for _ in range(4)]
    assert [m["sequenceNumber"] for m in sent] == [2, 3, 4, 5]
    assert [m["media"]["chunk"] for m in sent] == [1, 2, 3, 4]
    assert [m["media"]["timestamp"] for m in sent] == ["0", "20", "40", "60"]
    for m in sent:
        assert set(m) == {"event", "media", "sequenceNumber", "streamSid"}
        assert m["event"] == "media" and m["streamSid"] == IDS.stream_sid
        assert set(m["media"]) == {"track", "chunk", "timestamp", "payload"}
        assert m["media"]["track"] == "inbound"
        assert len(base64.b64decode(m["media"]["payload"])) == 160  # 20 ms of mu-law
    assert (encoder.media_sent, encoder.sequence_number, encoder.frames_sent) == (4, 5, 640)
    assert json.loads(encoder.mark("m-1")) == {
        "event": "mark",
        "sequenceNumber": 6,
        "streamSid": IDS.stream_sid,
        "mark": {"name": "m-1"},
    }
    after_mark = json.loads(encoder.media(chunk))
    assert (after_mark["sequenceNumber"], after_mark["media"]["chunk"]) == (7, 5)
    assert after_mark["media"]["timestamp"] == "80"
    assert json.loads(encoder.stop()) == {
        "event": "stop",
        "sequenceNumber": 8,
        "streamSid": IDS.stream_sid,
        "stop": {"accountSid": IDS.account_sid, "callSid": IDS.call_sid},
    }
    assert encoder.stopped


def test_timestamps_follow_audio_sent() -> None:
    encoder = started()
    stamps = [json.loads(encoder.media(tone(100)))["media"]["timestamp"] for _ in range(3)]
    assert stamps == ["0", "100", "200"]
    odd = started()
    odd.media(AudioChunk.silence(7, 8000))  # 0.875 ms: the next stamp rounds down
    assert json.loads(odd.media(AudioChunk.silence(9, 8000)))["media"]["timestamp"] == "0"
    assert json.loads(odd.media(AudioChunk.silence(1, 8000)))["media"]["timestamp"] == "2"


# -- misuse -----------------------------------------------------------------------------
def misuses(encoder: CallEncoder) -> list[Callable[[], str]]:
    return [lambda: encoder.media(tone()), lambda: encoder.mark("m"), encoder.stop]


def test_order_misuse() -> None:
    for call in misuses(CallEncoder(IDS)):
        with pytest.raises(ProtocolMisuseError, match="before start"):
            call()
    encoder = started()
    with pytest.raises(ProtocolMisuseError, match="twice"):
        encoder.start()
    with pytest.raises(ProtocolMisuseError, match="handshake after start"):
        encoder.handshake()
    encoder.stop()
    for call in misuses(encoder):
        with pytest.raises(ProtocolMisuseError, match="after stop"):
            call()
    with pytest.raises(ProtocolMisuseError):
        encoder.start()
    with pytest.raises(ProtocolMisuseError):
        encoder.handshake()
    assert encoder.sequence_number == 2  # failed calls consume no numbers


@pytest.mark.parametrize(
    "chunk",
    [
        tone(rate=16000),
        AudioChunk(np.zeros((160, 2), np.int16), 8000, 2),
        AudioChunk.silence(0, 8000),
        np.zeros(160, np.int16),
        b"\x00" * 160,
    ],
)
def test_media_misuse(chunk: Any) -> None:
    encoder = started()
    with pytest.raises(ProtocolMisuseError):
        encoder.media(chunk)
    assert (encoder.sequence_number, encoder.media_sent) == (1, 0)


def test_mark_needs_a_name() -> None:
    with pytest.raises(ProtocolMisuseError, match="mark name"):
        started().mark("")


# -- parser -----------------------------------------------------------------------------
def server_media(payload: str, chunk: Any = 1, timestamp: Any = 0) -> str:
    media = {"chunk": chunk, "timestamp": timestamp, "payload": payload}
    return json.dumps({"event": "media", "media": media})


def test_mu_law_round_trip_through_media_and_parser() -> None:
    sent = tone(100)
    message = json.loads(started().media(sent))
    # The server's media shape (docs/protocols.md#call-media) carrying the client's payload.
    event = codec.parse_server_message(server_media(message["media"]["payload"], 7, 140))
    assert isinstance(event, ServerMedia)
    assert (event.chunk_number, event.timestamp_ms) == (7, 140)
    assert (event.chunk.sample_rate_hz, event.chunk.channels) == (8000, 1)
    assert event.chunk.samples.dtype == np.int16
    expected = ulaw_decode(ulaw_encode(sent.mono_samples()))
    assert np.array_equal(event.chunk.mono_samples(), expected)
    error = np.abs(event.chunk.mono_samples().astype(np.int32) - sent.mono_samples())
    assert error.max() <= 32124 // 64  # mu-law: error within a quantisation step


def test_parse_the_clients_own_media_shape() -> None:
    # Strings for chunk/timestamp (as the client sends them) are accepted too.
    event = codec.parse_server_message(started().media(tone(20)))
    assert isinstance(event, ServerMedia)
    assert (event.chunk_number, event.timestamp_ms, event.chunk.frames) == (1, 0, 160)


@pytest.mark.parametrize(
    ("chunk", "timestamp", "expected"),
    [
        ("5", "100", (5, 100)),
        (5.0, 100.0, (5, 100)),
        (None, None, (None, None)),
        ("abc", True, (None, None)),
        (2.5, "1e400", (None, None)),
        ([1], {}, (None, None)),
    ],
)
def test_media_numbers_leniency(chunk: Any, timestamp: Any, expected: Any) -> None:
    event = codec.parse_server_message(server_media("//8=", chunk, timestamp))
    assert isinstance(event, ServerMedia)
    assert (event.chunk_number, event.timestamp_ms) == expected
    no_numbers = codec.parse_server_message('{"event":"media","media":{"payload":""}}')
    assert isinstance(no_numbers, ServerMedia) and no_numbers.chunk.frames == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}', Mark("m1")),
        ('{"event":"clear","streamSid":"MZ1"}', Clear()),
        ('{"event":"stop"}', Stop()),
        ('{"event":"connected","protocol":"Call","version":"1.0.0"}', Connected("Call", "1.0.0")),
        ('{"event":"connected"}', Connected(None, None)),
        ('{"event":"dtmf","dtmf":{"digit":"1"}}',
         UnknownEvent("dtmf", {"event": "dtmf", "dtmf": {"digit": "1"}})),
        (b'{"event":"clear"}', Clear()),
        (bytearray(b'{"event":"stop"}'), Stop()),
    ],
)  # fmt: skip
def test_parse_control_events(raw: Any, expected: Any) -> None:
    assert codec.parse_server_message(raw) == expected


HUGE = "x" * 1_000_000

MALFORMED = [
    ("", "not JSON"),
    ("hello", "not JSON"),
    (HUGE, "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ("42", "not a JSON object"),
    ('{"event": 5}', "no 'event'"),
    ('{"data": 1}', "no 'event'"),
    ('{"event": ""}', "no 'event'"),
    ('{"event":"media"}', "'media' must be an object"),
    ('{"event":"media","media":"x"}', "'media' must be an object"),
    ('{"event":"media","media":{}}', "'payload'"),
    ('{"event":"media","media":{"payload":5}}', "'payload'"),
    ('{"event":"media","media":{"payload":"@@@@"}}', "base64"),
    ('{"event":"media","media":{"payload":"' + "A" * 100_001 + '!"}}', "base64"),
    ('{"event":"mark"}', "mark"),
    ('{"event":"mark","mark":{}}', "mark.name"),
    ('{"event":"mark","mark":{"name":""}}', "mark.name"),
    ('{"event":"mark","mark":{"name":3}}', "mark.name"),
    (b"\xff\xfe binary", "not UTF-8"),
    (b"\xff" * 100_000, "not UTF-8"),
]


@pytest.mark.parametrize(("raw", "words"), MALFORMED)
def test_parse_malformed(raw: str | bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.parse_server_message(raw)
    message = str(info.value)
    assert words in message
    assert len(message) < 200, message


def test_parse_rejects_non_text() -> None:
    with pytest.raises(ProtocolError, match="text or bytes"):
        codec.parse_server_message(123)  # type: ignore[arg-type]


# -- log summaries ----------------------------------------------------------------------
def test_describe_outgoing() -> None:
    encoder = CallEncoder(IDS)
    assert codec.describe_outgoing(encoder.handshake()) == "'' (handshake)"
    assert codec.describe_outgoing(encoder.start()).startswith("start {sequenceNumber: '1', ")
    line = codec.describe_outgoing(encoder.media(tone(20)))
    assert line == (
        "media {media: {track: 'inbound', chunk: 1, timestamp: '0', "
        "payload: <base64 160 bytes = 160 mu-law samples>}, sequenceNumber: 2, "
        f"streamSid: '{IDS.stream_sid}'}}"
    )
    assert codec.describe_outgoing(encoder.stop()).startswith("stop {sequenceNumber: 3, ")


def test_describe_incoming() -> None:
    payload = base64.b64encode(bytes(8000)).decode()
    line = codec.describe_incoming(server_media(payload))
    assert line == (
        "media {media: {chunk: 1, timestamp: 0, "
        "payload: <base64 8000 bytes = 8000 mu-law samples>}}"
    )
    assert codec.describe_incoming(b'{"event":"clear"}') == "<binary 17 bytes> clear {}"
    assert codec.describe_incoming(b"\xff\xfe") == "<binary 2 bytes>"
    assert len(codec.describe_incoming(HUGE)) < 120
    assert codec.describe_incoming("[1]") == "[1]"
