"""The Speech-to-Speech message codec (docs/protocols.md#sts): pure, no sockets."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import (
    AivocoError,
    AuthError,
    CreditsError,
    ProtocolError,
    ProtocolMisuseError,
    ServiceError,
    UsageError,
)
from aivoco.protocols import sts_codec as codec
from aivoco.protocols._codec import Outgoing
from aivoco.protocols.sts_codec import StsCodec
from aivoco.wire.driver import ProtocolName
from aivoco.wire.events import (
    AgentAudio,
    AgentText,
    CreditsInfo,
    Ended,
    Event,
    Failed,
    FunctionCall,
    FunctionReport,
    Ready,
    UnknownEvent,
)
from aivoco.wire.functions import FunctionParam, FunctionSpec, failure_result

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


def payload(out: Outgoing) -> dict[str, Any]:
    """The payload of a built event (which must have one)."""
    _event, data = out.data
    assert isinstance(data, dict)
    return data


def decode(event: str, data: Any) -> Event:
    """Decode an event received with one argument, as Socket.IO delivers them."""
    return codec.decode(event, (data,))


def comparable(event: object) -> object:
    """An event with its errors as (type, message): exceptions compare by identity."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        return event
    values: list[Any] = []
    for f in dataclasses.fields(event):
        if f.compare:
            value = getattr(event, f.name)
            values.append((type(value), str(value)) if isinstance(value, Exception) else value)
    return (type(event), tuple(values))


# -- builders ---------------------------------------------------------------------------
def test_start_call_payload_is_exact() -> None:
    out = codec.start_call(KEY, "Be brief.", "female", [weather()])
    assert out == Outgoing(
        "start",
        (
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
        ),
    )
    assert out.audio_ms == 0.0
    assert codec.start_call(KEY, "", "male") == Outgoing(
        "start",
        (
            "start_call",
            {"auth_key": KEY, "system_message": "", "voice_choice": "male", "custom_functions": []},
        ),
    )
    json.dumps(payload(out))  # the whole payload is JSON


@pytest.mark.parametrize("voice", [*codec.VOICE_ALIASES, "Some New Voice"])
def test_voice_is_passed_through_unchanged(voice: str) -> None:
    assert set(codec.VOICE_ALIASES) == {"female", "male", "Girl", "Boy", "alloy"}
    assert payload(codec.start_call(KEY, "", voice))["voice_choice"] == voice


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
    assert (out.kind, out.data[0]) == ("audio", "audio_data")
    assert out.audio_ms == chunk.duration_ms == 40.0
    sent = payload(out)
    assert set(sent) == {"audio_data", "has_audio", "max_amplitude"}
    raw = base64.b64decode(sent["audio_data"], validate=True)
    assert len(raw) == chunk.frames * 2
    assert np.array_equal(np.frombuffer(raw, "<i2"), chunk.mono_samples())
    assert sent["has_audio"] is True
    peak = int(np.abs(chunk.samples.astype(np.int32)).max())
    assert sent["max_amplitude"] == pytest.approx(peak / 32768)
    assert isinstance(sent["max_amplitude"], float)


@pytest.mark.parametrize(
    ("value", "has_audio", "amplitude"),
    [(0, False, 0.0), (327, False, 327 / 32768), (328, True, 328 / 32768), (-32768, True, 1.0)],
)
def test_audio_data_levels_from_the_chunk_sent(
    value: int, has_audio: bool, amplitude: float
) -> None:
    samples = np.zeros(320, np.int16)
    samples[100] = value
    sent = payload(codec.audio_data(AudioChunk(samples, 16000)))
    assert sent["has_audio"] is has_audio
    assert sent["max_amplitude"] == pytest.approx(amplitude)


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
        (
            "function_response",
            {
                "call_id": "call-1",
                "function_name": "get_weather",
                "result": {"temp": 21.5, "ok": True},
            },
        ),
    )
    assert payload(codec.function_response("c", "f", None)) == {
        "call_id": "c",
        "function_name": "f",
        "result": None,
    }
    assert codec.function_response("c", "f", failure_result("boom")) == Outgoing(
        "function_response",
        (
            "function_response",
            {"call_id": "c", "function_name": "f", "result": {"error": "boom", "status": "failed"}},
        ),
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
    assert codec.stop_call() == Outgoing("stop", ("stop_call", None))


# -- the codec object -------------------------------------------------------------------
def test_sts_codec_builds_the_session() -> None:
    sts = StsCodec(KEY, "female", "Be brief.", [weather()])
    assert (sts.protocol, sts.uplink_rate_hz, sts.downlink_rate_hz, sts.has_credits) == (
        ProtocolName.STS,
        16000,
        24000,
        True,
    )
    assert sts.opening() == [codec.start_call(KEY, "Be brief.", "female", [weather()])]
    assert StsCodec(KEY, "male").opening() == [codec.start_call(KEY, "", "male")]
    chunk = tone()
    assert sts.audio(chunk) == codec.audio_data(chunk)
    assert sts.function_result("c", "f", [1]) == codec.function_response("c", "f", [1])
    with pytest.raises(ProtocolMisuseError, match="no playout marks"):
        sts.mark("m")
    assert not sts.closed
    assert sts.closing() == codec.stop_call()
    assert sts.closed


def test_sts_codec_refuses_anything_after_closing() -> None:
    sts = StsCodec(KEY, "female")
    sts.closing()
    refused: list[Callable[[], Outgoing]] = [
        lambda: sts.audio(tone()),
        lambda: sts.function_result("c", "f", 1),
        sts.closing,
    ]
    for call in refused:
        with pytest.raises(ProtocolMisuseError, match="after stop_call"):
            call()
    assert sts.closed


def test_sts_codec_checks_its_input_before_connecting() -> None:
    with pytest.raises(UsageError, match="API key is empty"):
        StsCodec("", "female")
    with pytest.raises(UsageError, match="voice is empty"):
        StsCodec(KEY, "")
    with pytest.raises(UsageError, match="defined twice"):
        StsCodec(KEY, "female", "", [weather(), weather()])
    sts = StsCodec(KEY, "female")
    with pytest.raises(ProtocolMisuseError, match="16000 Hz mono"):
        sts.audio(tone(rate=24000))
    with pytest.raises(ProtocolMisuseError, match="not JSON-serialisable"):
        sts.function_result("c", "f", object())


def test_sts_codec_decodes_and_describes() -> None:
    sts = StsCodec(KEY, "female")
    assert sts.decode(("text_response", ({"text": "hi"},))) == AgentText("hi")
    assert sts.describe_incoming(("text_response", ({"text": "hi"},))) == (
        "text_response {text: 'hi'}"
    )
    with pytest.raises(ProtocolError, match="'text'"):
        sts.decode(("text_response", ({},)))


# -- decoding ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "data", "expected"),
    [
        ("auth_success", {"credits": 100}, CreditsInfo(100.0)),
        ("auth_failed", {"message": "bad key", "credits": 0},
         Failed(AuthError("the server refused the API key: bad key"))),
        (
            "session_ready",
            {"message": "ok", "credits_available": 99.5, "cost_per_minute": 1,
             "functions_loaded": 2},
            Ready("ok", 99.5, 1.0, 2),
        ),
        (
            "session_ended",
            {"reason": "stopped_by_user", "message": "Session stopped by user",
             "total_credits_used": 0.25, "remaining_credits": 99.75},
            Ended("stopped_by_user", "Session stopped by user", 0.25, 99.75,
                  error_unless_hung_up=ServiceError(
                      "the server ended the session: Session stopped by user")),
        ),
        ("text_response", {"text": "Hello!"}, AgentText("Hello!")),
        (
            "function_called",
            {"function_name": "get_weather", "arguments": {"city": "Pune"}, "call_id": "c1"},
            FunctionCall("c1", "get_weather", {"city": "Pune"}),
        ),
        ("function_result", {"function_name": "f", "result": [1]},
         FunctionReport("result", "f", [1])),
        ("function_error", {"error": "timeout"}, FunctionReport("error", None, "timeout")),
        (
            "function_response_sent",
            {"function_name": "f", "admin_units_deducted": 0.05, "remaining_admin_units": 9.95},
            FunctionReport("billed", "f",
                           {"admin_units_deducted": 0.05, "remaining_admin_units": 9.95}),
        ),
        ("error", {"message": "no", "type": "invalid_api_key"},
         Failed(AuthError("the server refused the API key: no"))),
        ("brand_new_event", [1, 2], UnknownEvent("brand_new_event")),
    ],
)  # fmt: skip
def test_decode_every_event(event: str, data: Any, expected: Event) -> None:
    assert comparable(decode(event, data)) == comparable(expected)
    assert event in codec.SERVER_EVENTS or isinstance(expected, UnknownEvent)


def test_server_events_match_the_notes() -> None:
    assert set(codec.SERVER_EVENTS) == {
        "auth_success", "auth_failed", "session_ready", "session_ended", "text_response",
        "audio_response", "function_called", "function_result", "function_error",
        "function_response_sent", "error",
    }  # fmt: skip


def test_decode_audio_response() -> None:
    chunk = tone(rate=24000, ms=20)
    event = decode("audio_response", {"audio_data": chunk.to_base64()})
    assert isinstance(event, AgentAudio)
    assert (event.chunk.sample_rate_hz, event.chunk.channels) == (24000, 1)
    assert np.array_equal(event.chunk.samples, chunk.samples)
    empty = decode("audio_response", {"audio_data": ""})
    assert isinstance(empty, AgentAudio) and empty.chunk.frames == 0


def test_unknown_events_keep_their_data() -> None:
    one = codec.decode("brand_new_event", ([1, 2],))
    assert one == UnknownEvent("brand_new_event") and one.data == [1, 2]
    several = codec.decode("brand_new_event", ("a", {"b": 1}))  # not an error: noted only
    assert several == UnknownEvent("brand_new_event") and several.data == ("a", {"b": 1})


def test_decode_argument_count() -> None:
    assert codec.decode("auth_success", ()) == CreditsInfo(None)  # no payload at all
    assert codec.decode("text_response", ({"text": "hi"},)) == AgentText("hi")
    with pytest.raises(ProtocolError) as info:
        codec.decode("text_response", ({"text": "a"}, {"text": "b"}))
    assert str(info.value) == "text_response: 2 arguments, expected one payload"
    with pytest.raises(ProtocolError, match="event name must be text, got int"):
        codec.decode(7, ({},))


NO_REASON = ServiceError("the server ended the session: no reason given")

# Each leniency: (event, data, expected).
LENIENT = [
    # A payload given as JSON text holding an object.
    ("text_response", '{"text": "hi"}', AgentText("hi")),
    ("auth_success", '{"credits": 5}', CreditsInfo(5.0)),
    # Numbers as numeric strings.
    ("auth_success", {"credits": " 12.5 "}, CreditsInfo(12.5)),
    ("session_ready", {"functions_loaded": "3", "cost_per_minute": "1.5"},
     Ready(None, None, 1.5, 3)),
    # `arguments` as JSON text; `call_id` as an int; missing arguments are {}.
    ("function_called", {"function_name": "f", "arguments": '{"a": 1}', "call_id": 42},
     FunctionCall("42", "f", {"a": 1})),
    ("function_called", {"function_name": "f", "call_id": "x"}, FunctionCall("x", "f", {})),
    ("function_called", {"function_name": "f", "call_id": "x", "arguments": None},
     FunctionCall("x", "f", {})),
    # Missing optional fields (or no payload at all) become None.
    ("auth_success", None, CreditsInfo(None)),
    ("auth_success", {}, CreditsInfo(None)),
    ("session_ready", {}, Ready(None, None, None, None)),
    ("session_ended", None, Ended("ended", None, None, None, error_unless_hung_up=NO_REASON)),
    ("function_result", {}, FunctionReport("result", None, None)),
    ("function_response_sent", {},
     FunctionReport("billed", None, {"admin_units_deducted": None,
                                     "remaining_admin_units": None})),
    ("function_error", {}, FunctionReport("error", None, "")),
    ("error", {}, Failed(ServiceError("the server reported an error (error): unknown error"))),
    # Booleans and non-finite values are not numbers; non-integral counts are not counts.
    ("auth_success", {"credits": True}, CreditsInfo(None)),
    ("auth_success", {"credits": "NaN"}, CreditsInfo(None)),
    ("auth_success", {"credits": "lots"}, CreditsInfo(None)),
    ("session_ready", {"functions_loaded": 2.5}, Ready(None, None, None, None)),
    ("session_ready", {"functions_loaded": 2.0}, Ready(None, None, None, 2)),
    # Mistyped optional text fields become None.
    ("session_ended", {"reason": 3, "message": ["x"]},
     Ended("ended", None, None, None, error_unless_hung_up=NO_REASON)),
    # `error` as bare text, or with a structured message/error.
    ("error", "Rate limit exceeded",
     Failed(ServiceError("the server reported an error (error): Rate limit exceeded"))),
    ("error", "[1, 2]", Failed(ServiceError("the server reported an error (error): [1, 2]"))),
    ("error", '{"message": "m", "type": "t"}',
     Failed(ServiceError("the server reported an error (t): m"))),
    ("error", {"message": {"detail": "x"}},
     Failed(ServiceError('the server reported an error (error): {"detail": "x"}'))),
    ("function_error", {"error": {"code": 1}}, FunctionReport("error", None, '{"code": 1}')),
]  # fmt: skip


@pytest.mark.parametrize(("event", "data", "expected"), LENIENT)
def test_decode_leniency(event: str, data: Any, expected: Event) -> None:
    assert comparable(decode(event, data)) == comparable(expected)


def test_auth_failed_without_a_message_is_still_a_refusal() -> None:
    for data in [{}, None, {"message": None, "credits": "x"}]:
        event = decode("auth_failed", data)
        assert isinstance(event, Failed) and type(event.error) is AuthError
        assert str(event.error).startswith("the server refused the API key")


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
    ("error", 42, "payload must be an object"),
    ("text_response", {"text": ["x" * 100]}, "'text'"),
    ("text_response", HUGE, "payload"),
    ("audio_response", {"audio_data": HUGE + "!"}, "base64"),
    ("function_called", {"function_name": "f", "call_id": "c", "arguments": HUGE}, "not JSON"),
    ("function_called", {"function_name": HUGE[:5000], "call_id": 1.5}, "call_id"),
    ("function_called", {"function_name": HUGE, "call_id": "c", "arguments": 1}, "object"),
]  # fmt: skip


@pytest.mark.parametrize(("event", "data", "words"), MALFORMED)
def test_decode_malformed(event: str, data: Any, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(event, data)
    message = str(info.value)
    assert message.startswith(event), message
    assert words in message
    assert len(message) < 400, message


# -- server errors -> our error types ----------------------------------------------------
@pytest.mark.parametrize(
    ("reason", "exhausted"),
    [
        ("insufficient_user_credits", True),
        ("insufficient_admin_units", True),
        ("insufficient_credits", True),
        (" Insufficient_User_Credits ", True),  # codes are matched trimmed, in any case
        ("stopped_by_user", False),
        ("invalid_api_key", False),
        (None, False),
    ],
)
def test_session_ended_credit_exhaustion(reason: str | None, exhausted: bool) -> None:
    event = decode("session_ended", {"reason": reason, "message": "bye"})
    assert isinstance(event, Ended)
    assert event.reason == (reason or "ended")
    if exhausted:
        # Out of credits is an error even after our own stop_call.
        assert type(event.error) is CreditsError and event.error_unless_hung_up is None
        assert str(event.error) == "the server ended the session: bye"
    else:
        assert event.error is None and type(event.error_unless_hung_up) is ServiceError
        assert str(event.error_unless_hung_up) == "the server ended the session: bye"


def test_session_ended_text_falls_back_to_the_reason() -> None:
    event = decode("session_ended", {"reason": "insufficient_user_credits"})
    assert isinstance(event, Ended) and event.message is None
    assert str(event.error) == "the server ended the session: insufficient_user_credits"


@pytest.mark.parametrize(
    ("data", "error_type", "message"),
    [
        ({"message": "m", "type": "insufficient_credits"}, CreditsError, "out of credits: m"),
        ({"type": "insufficient_credits"}, CreditsError, "out of credits: insufficient_credits"),
        ({"message": "m", "type": "invalid_api_key"}, AuthError,
         "the server refused the API key: m"),
        ({"message": "m", "type": " INVALID_API_KEY"}, AuthError,
         "the server refused the API key: m"),
        ({"message": "m", "type": "rate_limit_exceeded"}, ServiceError,
         "the server reported an error (rate_limit_exceeded): m"),
        # The code is the `type` field: a message that merely says it is no code.
        ({"message": "invalid_api_key"}, ServiceError,
         "the server reported an error (error): invalid_api_key"),
        ({"message": "m"}, ServiceError, "the server reported an error (error): m"),
    ],
)  # fmt: skip
def test_server_error_classification(
    data: dict[str, Any], error_type: type[AivocoError], message: str
) -> None:
    event = decode("error", data)
    assert isinstance(event, Failed)
    assert type(event.error) is error_type
    assert str(event.error) == message


def test_error_for() -> None:
    refused = codec.error_for("auth_failed", None, "bad key")
    assert type(refused) is AuthError and "refused the API key: bad key" in str(refused)
    # auth_failed is a refusal whatever code comes with it.
    assert type(codec.error_for("auth_failed", "insufficient_credits", "x")) is AuthError
    assert type(codec.error_for("error", "invalid_api_key", "x")) is AuthError
    assert type(codec.error_for("error", "insufficient_credits", "x")) is CreditsError
    assert type(codec.error_for("error", None, "x")) is ServiceError
    assert type(codec.error_for("session_ended", "insufficient_admin_units", "x")) is CreditsError
    assert type(codec.error_for("session_ended", "stopped_by_user", "x")) is ServiceError
    # No key ever appears in these messages: they only quote the server's text.
    assert KEY not in str(codec.error_for("error", "invalid_api_key", "no"))


def test_is_stopped_by_user() -> None:
    assert codec.is_stopped_by_user("stopped_by_user", None)
    assert codec.is_stopped_by_user(" Stopped_By_User ", None)
    assert codec.is_stopped_by_user(None, "Session stopped by user")
    assert codec.is_stopped_by_user("ended", "Session Stopped By User.")
    assert not codec.is_stopped_by_user("insufficient_user_credits", "")
    assert not codec.is_stopped_by_user(None, None)


# -- log summaries ----------------------------------------------------------------------
def test_describe_outgoing_masks_the_key_and_abbreviates_audio() -> None:
    sts = StsCodec(KEY, "alloy", "x" * 500, [weather()])
    (opening,) = sts.opening()
    start = sts.describe_outgoing(opening)
    assert KEY not in start and "SECRET" not in start
    assert start.startswith("start_call {auth_key: ***, ")
    assert "get_weather" in start and "(500 chars)" in start and len(start) < 600
    audio = sts.describe_outgoing(sts.audio(AudioChunk.silence(640, 16000)))
    assert audio == (
        "audio_data {audio_data: <base64 1280 bytes = 640 samples>, "
        "has_audio: False, max_amplitude: 0.0}"
    )
    response = sts.describe_outgoing(sts.function_result("c", "f", failure_result("boom")))
    assert response == (
        "function_response {call_id: 'c', function_name: 'f', "
        "result: {error: 'boom', status: 'failed'}}"
    )
    assert sts.describe_outgoing(sts.closing()) == "stop_call"


def test_describe_incoming() -> None:
    big = tone(rate=24000, ms=1000).to_base64()
    line = codec.describe_incoming("audio_response", ({"audio_data": big},))
    assert line == "audio_response {audio_data: <base64 48000 bytes = 24000 samples>}"
    assert (
        codec.describe_incoming("text_response", ('{"text": "hi"}',))
        == "text_response {text: 'hi'}"
    )
    assert codec.describe_incoming("stop", ()) == "stop"
    assert codec.describe_incoming("stop", (None,)) == "stop"
    assert codec.describe_incoming("two", ("a", 1)) == "two ['a', 1]"
    assert KEY not in codec.describe_incoming("echo", ({"auth_key": KEY},))
    assert len(codec.describe_incoming("x" * 1000, ("y" * 100_000,))) < 200
    assert len(codec.describe_incoming("e", ({"list": list(range(10_000))},))) < 200
    assert len(codec.describe_incoming(HUGE, ())) < 100
