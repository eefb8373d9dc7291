"""The Speech-to-Speech message codec (docs/protocols.md#sts): pure, no sockets."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import ProtocolError, ProtocolMisuseError, UsageError
from aivoco.protocols import sts_codec as codec
from aivoco.protocols.sts_codec import (
    AudioResponse,
    AuthFailed,
    AuthSuccess,
    FunctionCalled,
    FunctionError,
    FunctionParam,
    FunctionResponseSent,
    FunctionResult,
    FunctionSpec,
    Outgoing,
    ServerError,
    SessionEnded,
    SessionReady,
    TextResponse,
    UnknownEvent,
)

KEY = "sk-live-SECRET-0123456789"


def tone(rate: int = 16000, ms: int = 40, amplitude: int = 12000, hz: float = 440.0) -> AudioChunk:
    n = rate * ms // 1000
    samples = np.rint(amplitude * np.sin(2 * np.pi * hz * np.arange(n) / rate)).astype(np.int16)
    return AudioChunk(samples, rate)


def weather() -> FunctionSpec:
    return FunctionSpec(
        "get_weather",
        "Weather for a city",
        (
            FunctionParam("city", "string", "City name", True),
            FunctionParam("days", "integer", "Forecast days", False),
        ),
    )


# -- builders ---------------------------------------------------------------------------
def test_start_call_payload_is_exact() -> None:
    out = codec.start_call(KEY, "Be brief.", "female", [weather()])
    assert out == Outgoing(
        "start_call",
        {
            "auth_key": KEY,
            "system_message": "Be brief.",
            "voice_choice": "female",
            "custom_functions": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": [
                        {
                            "name": "city",
                            "type": "string",
                            "description": "City name",
                            "required": True,
                        },
                        {
                            "name": "days",
                            "type": "integer",
                            "description": "Forecast days",
                            "required": False,
                        },
                    ],
                }
            ],
        },
    )
    assert codec.start_call(KEY, "", "male").payload == {
        "auth_key": KEY,
        "system_message": "",
        "voice_choice": "male",
        "custom_functions": [],
    }
    json.dumps(out.payload)  # the whole payload is JSON


@pytest.mark.parametrize("voice", [*codec.VOICE_ALIASES, "Some New Voice"])
def test_voice_is_passed_through_unchanged(voice: str) -> None:
    assert set(codec.VOICE_ALIASES) == {"female", "male", "Girl", "Boy", "alloy"}
    payload = codec.start_call(KEY, "", voice).payload
    assert payload is not None and payload["voice_choice"] == voice


def test_start_call_rejects_bad_input() -> None:
    with pytest.raises(UsageError, match="API key is empty"):
        codec.start_call("", "", "female")
    with pytest.raises(UsageError, match="voice is empty"):
        codec.start_call(KEY, "", "  ")
    with pytest.raises(UsageError, match="'get_weather' is defined twice"):
        codec.start_call(KEY, "", "female", [weather(), weather()])
    with pytest.raises(ProtocolMisuseError):
        codec.start_call(KEY, "", "female", [{"name": "x"}])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["", "1abc", "has space", "café", "a" * 65, "x;y"])
def test_function_spec_rejects_bad_names(name: str) -> None:
    with pytest.raises(UsageError, match="invalid function name"):
        FunctionSpec(name, "d")


def test_function_spec_validation() -> None:
    assert FunctionSpec("a.b-c_1", "").to_wire() == {
        "name": "a.b-c_1",
        "description": "",
        "parameters": [],
    }
    with pytest.raises(UsageError, match="invalid function parameter name"):
        FunctionParam("bad name", "string", "", True)
    with pytest.raises(UsageError, match="invalid type"):
        FunctionParam("x", "", "", True)
    with pytest.raises(UsageError, match="'required' must be true or false"):
        FunctionParam("x", "string", "", 1)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="description must be text"):
        FunctionParam("x", "string", None, True)  # type: ignore[arg-type]
    p = FunctionParam("x", "string", "", True)
    with pytest.raises(UsageError, match="duplicate parameter 'x'"):
        FunctionSpec("f", "", (p, p))
    with pytest.raises(UsageError, match="description must be text"):
        FunctionSpec("f", 3)  # type: ignore[arg-type]


def test_function_spec_from_dict() -> None:
    spec = FunctionSpec.from_dict(weather().to_wire())
    assert spec == weather()
    minimal = FunctionSpec.from_dict({"name": "f", "parameters": [{"name": "q"}]})
    assert minimal.parameters == (FunctionParam("q", "string", "", False),)
    for bad, message in [
        ([], "must be an object"),
        ({"name": "f", "parameters": {}}, "parameters must be a list"),
        ({"name": "f", "parameters": [3]}, "a parameter is not an object"),
        ({"description": "no name"}, "invalid function name None"),
    ]:
        with pytest.raises(UsageError, match=message):
            FunctionSpec.from_dict(bad)


def test_audio_data_round_trip_and_levels() -> None:
    chunk = tone()
    out = codec.audio_data(chunk)
    assert out.event == "audio_data" and out.payload is not None
    assert set(out.payload) == {"audio_data", "has_audio", "max_amplitude"}
    raw = base64.b64decode(out.payload["audio_data"], validate=True)
    assert len(raw) == chunk.frames * 2
    assert np.array_equal(np.frombuffer(raw, "<i2"), chunk.mono_samples())
    assert out.payload["has_audio"] is True
    peak = int(np.abs(chunk.samples.astype(np.int32)).max())
    assert out.payload["max_amplitude"] == pytest.approx(peak / 32768)
    assert isinstance(out.payload["max_amplitude"], float)


@pytest.mark.parametrize(
    ("value", "has_audio", "amplitude"),
    [(0, False, 0.0), (327, False, 327 / 32768), (328, True, 328 / 32768), (-32768, True, 1.0)],
)
def test_audio_data_levels_from_the_chunk_sent(
    value: int, has_audio: bool, amplitude: float
) -> None:
    samples = np.zeros(320, np.int16)
    samples[100] = value
    payload = codec.audio_data(AudioChunk(samples, 16000)).payload
    assert payload is not None
    assert payload["has_audio"] is has_audio
    assert payload["max_amplitude"] == pytest.approx(amplitude)


@pytest.mark.parametrize(
    "chunk",
    [
        tone(rate=24000),
        tone(rate=8000),
        AudioChunk(np.zeros((320, 2), np.int16), 16000, 2),
        AudioChunk.silence(0, 16000),
        AudioChunk.silence_ms(codec.MAX_AUDIO_DATA_MS + 1, 16000),
    ],
)
def test_audio_data_misuse(chunk: AudioChunk) -> None:
    with pytest.raises(ProtocolMisuseError):
        codec.audio_data(chunk)


def test_audio_data_needs_a_chunk() -> None:
    with pytest.raises(ProtocolMisuseError, match="needs an AudioChunk"):
        codec.audio_data(b"\x00\x00")  # type: ignore[arg-type]


def test_function_response_and_failure() -> None:
    out = codec.function_response("call-1", "get_weather", {"temp": 21.5, "ok": True})
    assert out == Outgoing(
        "function_response",
        {"call_id": "call-1", "function_name": "get_weather", "result": {"temp": 21.5, "ok": True}},
    )
    assert codec.function_response("c", "f", None).payload == {
        "call_id": "c",
        "function_name": "f",
        "result": None,
    }
    assert codec.function_failure("c", "f", "boom") == Outgoing(
        "function_response",
        {"call_id": "c", "function_name": "f", "result": {"error": "boom", "status": "failed"}},
    )


@pytest.mark.parametrize("result", [object(), {1, 2}, float("nan"), {"x": float("inf")}, b"x"])
def test_function_response_needs_json(result: Any) -> None:
    with pytest.raises(ProtocolMisuseError, match="not JSON-serialisable"):
        codec.function_response("c", "f", result)


def test_function_response_misuse() -> None:
    with pytest.raises(ProtocolMisuseError, match="call_id"):
        codec.function_response(7, "f", 1)  # type: ignore[arg-type]
    with pytest.raises(ProtocolMisuseError, match="function_name"):
        codec.function_response("c", "", 1)


def test_stop_call_has_no_payload() -> None:
    assert codec.stop_call() == Outgoing("stop_call", None)


# -- parser -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "data", "expected"),
    [
        ("auth_success", {"credits": 100}, AuthSuccess(100.0)),
        ("auth_failed", {"message": "bad key", "credits": 0}, AuthFailed("bad key", 0.0)),
        (
            "session_ready",
            {"message": "ok", "credits_available": 99.5, "cost_per_minute": 1,
             "functions_loaded": 2},
            SessionReady("ok", 99.5, 1.0, 2),
        ),
        (
            "session_ended",
            {"reason": "stopped_by_user", "message": "Session stopped by user",
             "total_credits_used": 0.25, "remaining_credits": 99.75},
            SessionEnded("stopped_by_user", "Session stopped by user", 0.25, 99.75),
        ),
        ("text_response", {"text": "Hello!"}, TextResponse("Hello!")),
        (
            "function_called",
            {"function_name": "get_weather", "arguments": {"city": "Pune"}, "call_id": "c1"},
            FunctionCalled("get_weather", {"city": "Pune"}, "c1"),
        ),
        ("function_result", {"function_name": "f", "result": [1]}, FunctionResult("f", [1])),
        ("function_error", {"error": "timeout"}, FunctionError("timeout")),
        (
            "function_response_sent",
            {"function_name": "f", "admin_units_deducted": 0.05, "remaining_admin_units": 9.95},
            FunctionResponseSent("f", 0.05, 9.95),
        ),
        ("error", {"message": "no", "type": "invalid_api_key"},
         ServerError("no", "invalid_api_key")),
        ("brand_new_event", [1, 2], UnknownEvent("brand_new_event", [1, 2])),
    ],
)  # fmt: skip
def test_parse_every_event(event: str, data: Any, expected: Any) -> None:
    assert codec.parse_event(event, data) == expected
    assert event in codec.SERVER_EVENTS or isinstance(expected, UnknownEvent)


def test_server_events_match_the_notes() -> None:
    assert set(codec.SERVER_EVENTS) == {
        "auth_success", "auth_failed", "session_ready", "session_ended", "text_response",
        "audio_response", "function_called", "function_result", "function_error",
        "function_response_sent", "error",
    }  # fmt: skip


def test_parse_audio_response() -> None:
    chunk = tone(rate=24000, ms=20)
    event = codec.parse_event("audio_response", {"audio_data": chunk.to_base64()})
    assert isinstance(event, AudioResponse)
    assert (event.chunk.sample_rate_hz, event.chunk.channels) == (24000, 1)
    assert np.array_equal(event.chunk.samples, chunk.samples)
    empty = codec.parse_event("audio_response", {"audio_data": ""})
    assert isinstance(empty, AudioResponse) and empty.chunk.frames == 0


# Each leniency: (event, data, expected).
LENIENT = [
    # A payload given as JSON text holding an object.
    ("text_response", '{"text": "hi"}', TextResponse("hi")),
    ("auth_success", '{"credits": 5}', AuthSuccess(5.0)),
    # Numbers as numeric strings.
    ("auth_success", {"credits": " 12.5 "}, AuthSuccess(12.5)),
    ("session_ready", {"functions_loaded": "3", "cost_per_minute": "1.5"},
     SessionReady(None, None, 1.5, 3)),
    # `arguments` as JSON text; `call_id` as an int; missing arguments are {}.
    ("function_called", {"function_name": "f", "arguments": '{"a": 1}', "call_id": 42},
     FunctionCalled("f", {"a": 1}, "42")),
    ("function_called", {"function_name": "f", "call_id": "x"}, FunctionCalled("f", {}, "x")),
    ("function_called", {"function_name": "f", "call_id": "x", "arguments": None},
     FunctionCalled("f", {}, "x")),
    # Missing optional fields (or no payload at all) become None.
    ("auth_success", None, AuthSuccess(None)),
    ("auth_success", {}, AuthSuccess(None)),
    ("session_ready", {}, SessionReady(None, None, None, None)),
    ("session_ended", None, SessionEnded(None, None, None, None)),
    ("function_result", {}, FunctionResult(None, None)),
    ("function_response_sent", {}, FunctionResponseSent(None, None, None)),
    ("auth_failed", {}, AuthFailed("", None)),
    ("function_error", {}, FunctionError("")),
    ("error", {}, ServerError("", None)),
    # Booleans and non-finite values are not numbers; non-integral counts are not counts.
    ("auth_success", {"credits": True}, AuthSuccess(None)),
    ("auth_success", {"credits": "NaN"}, AuthSuccess(None)),
    ("auth_success", {"credits": "lots"}, AuthSuccess(None)),
    ("session_ready", {"functions_loaded": 2.5}, SessionReady(None, None, None, None)),
    ("session_ready", {"functions_loaded": 2.0}, SessionReady(None, None, None, 2)),
    # Mistyped optional text fields become None.
    ("session_ended", {"reason": 3, "message": ["x"]}, SessionEnded(None, None, None, None)),
    # `error` as bare text, or with a structured message/error.
    ("error", "Rate limit exceeded", ServerError("Rate limit exceeded", None)),
    ("error", '{"message": "m", "type": "t"}', ServerError("m", "t")),
    ("function_error", {"error": {"code": 1}}, FunctionError('{"code": 1}')),
]  # fmt: skip


@pytest.mark.parametrize(("event", "data", "expected"), LENIENT)
def test_parse_leniency(event: str, data: Any, expected: Any) -> None:
    assert codec.parse_event(event, data) == expected


HUGE = "A" * 1_000_001  # payloads can be huge: errors must stay short

# Each malformed case: (event, data, words the message must contain).
MALFORMED = [
    ("text_response", {}, "'text'"),
    ("text_response", {"text": 5}, "'text'"),
    ("text_response", {"text": None}, "'text'"),
    ("text_response", "hello", "payload"),
    ("text_response", ["hello"], "payload must be an object"),
    ("text_response", "[1, 2]", "payload must be an object"),
    ("audio_response", {}, "'audio_data'"),
    ("audio_response", {"audio_data": 5}, "'audio_data'"),
    ("audio_response", {"audio_data": b"\x00\x00"}, "'audio_data'"),
    ("audio_response", {"audio_data": "not base64!!"}, "base64"),
    ("audio_response", {"audio_data": "AA=="}, "even number of bytes"),
    ("audio_response", {"audio_data": "é"}, "non-ASCII"),
    ("function_called", {"call_id": "c"}, "'function_name'"),
    ("function_called", {"function_name": "", "call_id": "c"}, "'function_name'"),
    ("function_called", {"function_name": "f"}, "'call_id'"),
    ("function_called", {"function_name": "f", "call_id": True}, "'call_id'"),
    ("function_called", {"function_name": "f", "call_id": 1.5}, "'call_id'"),
    ("function_called", {"function_name": "f", "call_id": "c", "arguments": [1]}, "object"),
    ("function_called", {"function_name": "f", "call_id": "c", "arguments": "[1]"}, "object"),
    ("function_called", {"function_name": "f", "call_id": "c", "arguments": "{bad"}, "not JSON"),
    ("session_ready", 42, "payload must be an object"),
    ("text_response", {"text": ["x" * 100]}, "'text'"),
    ("text_response", HUGE, "payload"),
    ("audio_response", {"audio_data": HUGE + "!"}, "base64"),
    ("function_called", {"function_name": "f", "call_id": "c", "arguments": HUGE}, "not JSON"),
    ("function_called", {"function_name": HUGE[:5000], "call_id": 1.5}, "call_id"),
    ("function_called", {"function_name": HUGE, "call_id": "c", "arguments": 1}, "object"),
]  # fmt: skip


@pytest.mark.parametrize(("event", "data", "words"), MALFORMED)
def test_parse_malformed(event: str, data: Any, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.parse_event(event, data)
    message = str(info.value)
    assert message.startswith(event), message
    assert words in message
    assert len(message) < 400, message


@pytest.mark.parametrize(
    ("event", "exhausted"),
    [
        (SessionEnded("insufficient_user_credits", None, None, None), True),
        (SessionEnded("insufficient_admin_units", None, None, None), True),
        (SessionEnded("stopped_by_user", None, None, None), False),
        (SessionEnded(None, None, None, None), False),
        (ServerError("m", "insufficient_credits"), True),
        (ServerError("m", "invalid_api_key"), False),
        (ServerError("m", None), False),
    ],
)
def test_is_credit_exhaustion(event: SessionEnded | ServerError, exhausted: bool) -> None:
    assert codec.is_credit_exhaustion(event) is exhausted


def test_is_auth_error_and_stopped_by_user() -> None:
    assert codec.is_auth_error(ServerError("m", "invalid_api_key"))
    assert not codec.is_auth_error(ServerError("m", "rate_limit_exceeded"))
    assert not codec.is_auth_error(ServerError("invalid_api_key", None))
    assert codec.is_stopped_by_user(SessionEnded("stopped_by_user", None, None, None))
    assert codec.is_stopped_by_user(SessionEnded(None, "Session stopped by user", None, None))
    assert not codec.is_stopped_by_user(SessionEnded("insufficient_user_credits", "", None, None))


# -- log summaries ----------------------------------------------------------------------
def test_describe_outgoing_masks_the_key_and_abbreviates_audio() -> None:
    start = codec.describe_outgoing(codec.start_call(KEY, "x" * 500, "alloy", [weather()]))
    assert KEY not in start and "SECRET" not in start
    assert start.startswith("start_call {auth_key: ***, ")
    assert "get_weather" in start and "(500 chars)" in start and len(start) < 600
    audio = codec.describe_outgoing(codec.audio_data(AudioChunk.silence(640, 16000)))
    assert audio == (
        "audio_data {audio_data: <base64 1280 bytes = 640 samples>, "
        "has_audio: False, max_amplitude: 0.0}"
    )
    assert codec.describe_outgoing(codec.stop_call()) == "stop_call"
    response = codec.describe_outgoing(codec.function_failure("c", "f", "boom"))
    assert response == (
        "function_response {call_id: 'c', function_name: 'f', "
        "result: {error: 'boom', status: 'failed'}}"
    )


def test_describe_incoming() -> None:
    big = tone(rate=24000, ms=1000).to_base64()
    line = codec.describe_incoming("audio_response", {"audio_data": big})
    assert line == "audio_response {audio_data: <base64 48000 bytes = 24000 samples>}"
    assert (
        codec.describe_incoming("text_response", '{"text": "hi"}') == "text_response {text: 'hi'}"
    )
    assert codec.describe_incoming("stop", None) == "stop"
    assert KEY not in codec.describe_incoming("echo", {"auth_key": KEY})
    assert len(codec.describe_incoming("x" * 1000, "y" * 100_000)) < 200
    assert len(codec.describe_incoming("e", {"list": list(range(10_000))})) < 200
