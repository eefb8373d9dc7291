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
from aivoco.errors import AuthError, ConnectionFailedError, ProtocolError, ProtocolMisuseError
from aivoco.protocols import call_codec as codec
from aivoco.protocols._codec import Outgoing
from aivoco.protocols.call_codec import CallCodec, CallIds
from aivoco.wire.driver import ProtocolName
from aivoco.wire.events import (
    AgentAudio,
    Ended,
    Notice,
    PlaybackClear,
    PlaybackMark,
    UnknownEvent,
)

IDS = CallIds("AC" + "a" * 32, "MZ" + "b" * 32, "CA" + "c" * 32)


def tone(ms: int = 20, rate: int = 8000, amplitude: int = 10000) -> AudioChunk:
    n = rate * ms // 1000
    samples = np.rint(amplitude * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)
    return AudioChunk(samples, rate)


def started(custom: dict[str, Any] | None = None) -> CallCodec:
    call = CallCodec(IDS, custom)
    call.opening()
    return call


def sent(out: Outgoing) -> Any:
    """The JSON message an `Outgoing` text frame holds."""
    assert isinstance(out.data, str)
    return json.loads(out.data)


# -- ids and start ----------------------------------------------------------------------
def test_call_ids_are_twilio_style() -> None:
    ids = CallIds.new()
    assert re.fullmatch(r"AC[0-9a-f]{32}", ids.account_sid)
    assert re.fullmatch(r"MZ[0-9a-f]{32}", ids.stream_sid)
    assert re.fullmatch(r"CA[0-9a-f]{32}", ids.call_sid)
    assert CallIds.new() != ids
    assert re.fullmatch(r"MZ[0-9a-f]{32}", CallCodec().ids.stream_sid)


def test_codec_shape() -> None:
    call = CallCodec(IDS)
    assert (call.protocol, call.uplink_rate_hz, call.downlink_rate_hz, call.has_credits) == (
        ProtocolName.CALL,
        8000,
        8000,
        False,
    )
    assert (call.sequence_number, call.media_sent, call.frames_sent, call.closed) == (
        0,
        0,
        0,
        False,
    )


def test_handshake_then_start_exactly_as_the_notes() -> None:
    call = CallCodec(IDS)
    handshake, start = call.opening()
    assert handshake == Outgoing("handshake", "")
    assert (start.kind, start.audio_ms) == ("start", 0.0)
    assert sent(start) == {
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
    assert start.data.startswith('{"event":"start","sequenceNumber":"1",')  # compact, as JS
    assert (call.sequence_number, call.media_sent, call.closed) == (1, 0, False)


def test_start_carries_custom_parameters() -> None:
    params = {"caller": "+15550100", "lang": "en"}
    call = CallCodec(IDS, params)
    params["lang"] = "changed later"  # the codec keeps its own copy
    assert sent(call.opening()[1])["start"]["customParameters"] == {
        "caller": "+15550100",
        "lang": "en",
    }
    with pytest.raises(ProtocolMisuseError, match="keys must be strings"):
        CallCodec(IDS, {1: "x"}).opening()  # type: ignore[dict-item]
    bad = CallCodec(IDS, {"x": object()})
    with pytest.raises(ProtocolMisuseError, match="not JSON"):
        bad.opening()
    assert bad.sequence_number == 0  # a refused start is not sent


# -- numbering ----------------------------------------------------------------------------
def test_media_mark_stop_numbering() -> None:
    call = started()
    chunk = tone(20)
    outs = [call.audio(chunk) for _ in range(4)]
    assert [(o.kind, o.audio_ms) for o in outs] == [("audio", 20.0)] * 4
    media = [sent(o) for o in outs]
    assert [m["sequenceNumber"] for m in media] == [2, 3, 4, 5]
    assert [m["media"]["chunk"] for m in media] == [1, 2, 3, 4]
    assert [m["media"]["timestamp"] for m in media] == ["0", "20", "40", "60"]
    for m in media:
        assert set(m) == {"event", "media", "sequenceNumber", "streamSid"}
        assert m["event"] == "media" and m["streamSid"] == IDS.stream_sid
        assert set(m["media"]) == {"track", "chunk", "timestamp", "payload"}
        assert m["media"]["track"] == "inbound"
        assert len(base64.b64decode(m["media"]["payload"])) == 160  # 20 ms of mu-law
    assert (call.media_sent, call.sequence_number, call.frames_sent) == (4, 5, 640)
    mark = call.mark("m-1")
    assert (mark.kind, mark.audio_ms) == ("mark", 0.0)
    assert sent(mark) == {
        "event": "mark",
        "sequenceNumber": 6,
        "streamSid": IDS.stream_sid,
        "mark": {"name": "m-1"},
    }
    after_mark = sent(call.audio(chunk))
    assert (after_mark["sequenceNumber"], after_mark["media"]["chunk"]) == (7, 5)
    assert after_mark["media"]["timestamp"] == "80"
    assert not call.closed
    stop = call.closing()
    assert (stop.kind, stop.audio_ms) == ("stop", 0.0)
    assert sent(stop) == {
        "event": "stop",
        "sequenceNumber": 8,
        "streamSid": IDS.stream_sid,
        "stop": {"accountSid": IDS.account_sid, "callSid": IDS.call_sid},
    }
    assert call.closed


def test_timestamps_follow_audio_sent() -> None:
    call = started()
    stamps = [sent(call.audio(tone(100)))["media"]["timestamp"] for _ in range(3)]
    assert stamps == ["0", "100", "200"]
    odd = started()
    odd.audio(AudioChunk.silence(7, 8000))  # 0.875 ms: the next stamp rounds down
    assert sent(odd.audio(AudioChunk.silence(9, 8000)))["media"]["timestamp"] == "0"
    assert sent(odd.audio(AudioChunk.silence(1, 8000)))["media"]["timestamp"] == "2"


# -- misuse -----------------------------------------------------------------------------
def misuses(call: CallCodec) -> list[Callable[[], Outgoing]]:
    return [lambda: call.audio(tone()), lambda: call.mark("m"), call.closing]


def test_order_misuse() -> None:
    for attempt in misuses(CallCodec(IDS)):
        with pytest.raises(ProtocolMisuseError, match="before start"):
            attempt()
    call = started()
    with pytest.raises(ProtocolMisuseError, match="start sent twice"):
        call.opening()
    call.closing()
    for attempt in misuses(call):
        with pytest.raises(ProtocolMisuseError, match="after stop"):
            attempt()
    with pytest.raises(ProtocolMisuseError, match="start sent twice"):
        call.opening()
    assert call.sequence_number == 2  # failed calls consume no numbers
    assert call.closed


def test_no_function_calls_on_this_protocol() -> None:
    with pytest.raises(ProtocolMisuseError, match="no function calls"):
        started().function_result("c", "f", 1)


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
    call = started()
    with pytest.raises(ProtocolMisuseError):
        call.audio(chunk)
    assert (call.sequence_number, call.media_sent, call.frames_sent) == (1, 0, 0)


def test_mark_needs_a_name() -> None:
    with pytest.raises(ProtocolMisuseError, match="mark name"):
        started().mark("")


# -- decoding ---------------------------------------------------------------------------
def server_media(payload: str, chunk: Any = 1, timestamp: Any = 0) -> str:
    media = {"chunk": chunk, "timestamp": timestamp, "payload": payload}
    return json.dumps({"event": "media", "media": media})


def test_mu_law_round_trip_through_media_and_decoder() -> None:
    audio = tone(100)
    message = sent(started().audio(audio))
    # The server's media shape (docs/protocols.md#call-media) carrying the client's payload.
    event = codec.decode(server_media(message["media"]["payload"], 7, 140))
    assert isinstance(event, AgentAudio)
    assert (event.chunk.sample_rate_hz, event.chunk.channels) == (8000, 1)
    assert event.chunk.samples.dtype == np.int16
    expected = ulaw_decode(ulaw_encode(audio.mono_samples()))
    assert np.array_equal(event.chunk.mono_samples(), expected)
    error = np.abs(event.chunk.mono_samples().astype(np.int32) - audio.mono_samples())
    assert error.max() <= 32124 // 64  # mu-law: error within a quantisation step


def test_decode_the_clients_own_media_shape() -> None:
    # Strings for chunk/timestamp (as the client sends them) do not disturb decoding.
    call = started()
    event = call.decode(call.audio(tone(20)).data)
    assert isinstance(event, AgentAudio) and event.chunk.frames == 160


@pytest.mark.parametrize(
    ("chunk", "timestamp"),
    [("5", "100"), (5.0, 100.0), (None, None), ("abc", True), (2.5, "1e400"), ([1], {})],
)
def test_odd_media_numbers_do_not_break_decoding(chunk: Any, timestamp: Any) -> None:
    # The server's chunk/timestamp are not needed for playback: whatever they hold, the
    # audio plays.
    event = codec.decode(server_media("//8=", chunk, timestamp))
    assert isinstance(event, AgentAudio)
    assert event.chunk.frames == 2
    assert np.array_equal(event.chunk.mono_samples(), ulaw_decode(b"\xff\xff"))
    no_numbers = codec.decode('{"event":"media","media":{"payload":""}}')
    assert isinstance(no_numbers, AgentAudio) and no_numbers.chunk.frames == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}', PlaybackMark("m1")),
        ('{"event":"clear","streamSid":"MZ1"}', PlaybackClear()),
        ('{"event":"stop"}', Ended("agent-hangup", "the agent ended the call")),
        ('{"event":"connected","protocol":"Call","version":"1.0.0"}',
         Notice("server connected (Call, 1.0.0)")),
        ('{"event":"connected","protocol":"Call","version":1}',
         Notice("server connected (Call)")),
        ('{"event":"connected"}', Notice("server connected")),
        ('{"event":"dtmf","dtmf":{"digit":"1"}}', UnknownEvent("dtmf")),
        (b'{"event":"clear"}', PlaybackClear()),
        (b'{"event":"mark","mark":{"name":"m2"}}', PlaybackMark("m2")),
        (bytearray(b'{"event":"stop"}'), Ended("agent-hangup", "the agent ended the call")),
    ],
)  # fmt: skip
def test_decode_control_events(raw: Any, expected: Any) -> None:
    assert codec.decode(raw) == expected
    assert CallCodec(IDS).decode(raw) == expected


def test_unknown_events_keep_the_message() -> None:
    event = codec.decode('{"event":"dtmf","dtmf":{"digit":"1"}}')
    assert isinstance(event, UnknownEvent)
    assert (event.name, event.data) == ("dtmf", {"event": "dtmf", "dtmf": {"digit": "1"}})


def test_stop_is_the_agents_hang_up_without_an_error() -> None:
    event = codec.decode('{"event":"stop","stop":{"reason":"x"}}')
    assert isinstance(event, Ended)
    assert (event.error, event.error_unless_hung_up) == (None, None)


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
    (b"[1]", "not a JSON object"),
]


@pytest.mark.parametrize(("raw", "words"), MALFORMED)
def test_decode_malformed(raw: str | bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode(raw)
    message = str(info.value)
    assert words in message
    assert len(message) < 200, message


def test_decode_rejects_non_text() -> None:
    with pytest.raises(ProtocolError, match="text or bytes"):
        codec.decode(123)  # type: ignore[arg-type]


# -- refusals -> our error types -----------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403])
def test_error_for_refused_key(status: int) -> None:
    error = codec.error_for("wss://x/agent", http_status=status)
    assert type(error) is AuthError
    assert str(error) == f"wss://x/agent: the service refused the API key (HTTP {status})"


def test_error_for_unknown_agent() -> None:
    error = codec.error_for("wss://x/agent", http_status=404, path="/ws/***/agent")
    assert type(error) is AuthError
    assert (
        str(error)
        == "wss://x/agent: unknown agent or key, or wrong URL (HTTP 404 for /ws/***/agent)"
    )


@pytest.mark.parametrize("status", [500, 502, 400])
def test_error_for_other_http_status(status: int) -> None:
    error = codec.error_for("wss://x/agent", http_status=status)
    assert type(error) is ConnectionFailedError
    assert str(error) == f"wss://x/agent refused the call (HTTP {status})"


def test_error_for_closes() -> None:
    early = codec.error_for("wss://x/agent", closed="code 1008", early=True)
    assert type(early) is AuthError
    assert "rejected" in str(early) and "code 1008" in str(early)
    late = codec.error_for("wss://x/agent", closed="code 1006")
    assert type(late) is ConnectionFailedError
    assert "lost" in str(late) and "code 1006" in str(late)
    # An HTTP status decides before how the connection closed.
    assert type(codec.error_for("e", http_status=500, early=True)) is ConnectionFailedError


# -- log summaries ----------------------------------------------------------------------
def test_describe_outgoing() -> None:
    call = CallCodec(IDS)
    handshake, start = call.opening()
    assert call.describe_outgoing(handshake) == "'' (handshake)"
    assert call.describe_outgoing(start).startswith("start {sequenceNumber: '1', ")
    line = call.describe_outgoing(call.audio(tone(20)))
    assert line == (
        "media {media: {track: 'inbound', chunk: 1, timestamp: '0', "
        "payload: <base64 160 bytes = 160 mu-law samples>}, sequenceNumber: 2, "
        f"streamSid: '{IDS.stream_sid}'}}"
    )
    assert call.describe_outgoing(call.mark("m")).startswith("mark {sequenceNumber: 3, ")
    assert call.describe_outgoing(call.closing()).startswith("stop {sequenceNumber: 4, ")


def test_describe_incoming() -> None:
    payload = base64.b64encode(bytes(8000)).decode()
    line = codec.describe(server_media(payload))
    assert line == (
        "media {media: {chunk: 1, timestamp: 0, "
        "payload: <base64 8000 bytes = 8000 mu-law samples>}}"
    )
    assert CallCodec(IDS).describe_incoming(server_media(payload)) == line
    # Only binary frames are marked as such.
    assert codec.describe('{"event":"clear"}') == "clear {}"
    assert codec.describe(b'{"event":"clear"}') == "<binary 17 bytes> clear {}"
    assert codec.describe(b"\xff\xfe") == "<binary 2 bytes>"
    assert len(codec.describe(HUGE)) < 120
    assert codec.describe("[1]") == "[1]"
