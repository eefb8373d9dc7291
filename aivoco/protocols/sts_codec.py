"""Speech-to-Speech API messages (Socket.IO events), protocol notes section 1.

Pure codec: builders return `Outgoing(event, payload)` for the driver to emit, and
`parse_event()` turns a received (event, data) pair into a typed event. No sockets.

Leniency (each one harmless; the event keeps its meaning):
- a payload given as JSON text holding an object is decoded; a missing payload is `{}`;
- numbers may arrive as numeric strings; booleans and non-finite values are not numbers;
- optional fields that are missing or of the wrong type become None (an event's meaning
  never hinges on a cosmetic field such as a credit count);
- `function_called.arguments` may be JSON text holding an object, or missing (= `{}`);
  `call_id` may be an integer (turned into a string);
- an `error` payload may be bare text (taken as its message); `auth_failed`, `error`
  and `function_error` without a message get "".
Strict where it matters: required fields (`text`, `audio_data`, `function_name`,
`call_id`, an object `arguments`) missing or mistyped, and bad audio, raise
`ProtocolError` naming the event and quoting at most ~80 characters of the value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from aivoco.audio import levels
from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AudioFormatError, ProtocolError, ProtocolMisuseError, UsageError
from aivoco.protocols._summary import base64_size, clip, snippet, summarize, type_name

# Re-exported (explicitly, for strict mypy): the function specs are part of this API.
from aivoco.protocols.sts_functions import FunctionParam as FunctionParam  # noqa: PLC0414
from aivoco.protocols.sts_functions import FunctionSpec as FunctionSpec  # noqa: PLC0414

INPUT_RATE_HZ = 16000  # audio_data: PCM s16le 16 kHz mono (notes section 1)
OUTPUT_RATE_HZ = 24000  # audio_response: PCM s16le 24 kHz mono (notes section 1)
# A Socket.IO JS server drops the connection on a message over maxHttpBufferSize (1 MB
# by default) and base64 adds a third (notes section 3): 10 s is ~427 KB of base64.
MAX_AUDIO_DATA_MS = 10_000

# voice_choice is a free string passed through unchanged; these are the values seen.
VOICE_ALIASES: Mapping[str, str] = {
    "female": "API documentation",
    "male": "API documentation",
    "Girl": "browser playground",
    "Boy": "browser playground",
    "alloy": "terminal reference client (its default)",
}

CREDIT_EXHAUSTION_CODES = frozenset(
    {"insufficient_user_credits", "insufficient_admin_units", "insufficient_credits"}
)
AUTH_ERROR_CODES = frozenset({"invalid_api_key"})


# -- client -> server -------------------------------------------------------------------
@dataclass(frozen=True)
class Outgoing:
    """One event to emit; `payload` is None for `stop_call` (sent without data)."""

    event: str
    payload: dict[str, Any] | None


def start_call(
    auth_key: str,
    system_message: str,
    voice_choice: str,
    custom_functions: Sequence[FunctionSpec] = (),
) -> Outgoing:
    if not isinstance(auth_key, str) or not auth_key:
        raise UsageError("the API key is empty")
    if not isinstance(voice_choice, str) or not voice_choice.strip():
        raise UsageError("the voice is empty (seen values: " + ", ".join(VOICE_ALIASES) + ")")
    if not isinstance(system_message, str):
        raise ProtocolMisuseError("system_message must be a str")
    names: set[str] = set()
    for spec in custom_functions:
        if not isinstance(spec, FunctionSpec):
            raise ProtocolMisuseError(f"custom_functions holds a {type_name(spec)}")
        if spec.name in names:
            raise UsageError(f"function {spec.name!r} is defined twice")
        names.add(spec.name)
    payload = {
        "auth_key": auth_key,
        "system_message": system_message,
        "voice_choice": voice_choice,
        "custom_functions": [spec.to_wire() for spec in custom_functions],
    }
    return Outgoing("start_call", payload)


def audio_data(chunk: AudioChunk) -> Outgoing:
    """16 kHz mono chunk -> `audio_data`; levels are computed from exactly these samples."""
    if not isinstance(chunk, AudioChunk):
        raise ProtocolMisuseError(f"audio_data needs an AudioChunk, got {type_name(chunk)}")
    if chunk.sample_rate_hz != INPUT_RATE_HZ or chunk.channels != 1:
        raise ProtocolMisuseError(
            f"audio_data needs {INPUT_RATE_HZ} Hz mono, got {chunk.sample_rate_hz} Hz "
            f"x {chunk.channels} channels; resample first"
        )
    if chunk.frames == 0 or chunk.duration_ms > MAX_AUDIO_DATA_MS:
        raise ProtocolMisuseError(
            f"audio_data chunk of {chunk.frames} frames; send 1..{MAX_AUDIO_DATA_MS} ms"
        )
    payload = {
        "audio_data": chunk.to_base64(),
        "has_audio": levels.has_audio(chunk),
        "max_amplitude": levels.peak(chunk),
    }
    return Outgoing("audio_data", payload)


def _function_reply(call_id: str, function_name: str, result: Any) -> Outgoing:
    if not isinstance(call_id, str) or not call_id:
        raise ProtocolMisuseError(f"call_id must be a non-empty str, got {snippet(call_id)}")
    if not isinstance(function_name, str) or not function_name:
        raise ProtocolMisuseError("function_name must be a non-empty str")
    try:
        # allow_nan=False: NaN/Infinity are not JSON and a JS server cannot parse them.
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProtocolMisuseError(f"function result is not JSON-serialisable: {exc}") from exc
    payload = {"call_id": call_id, "function_name": function_name, "result": result}
    return Outgoing("function_response", payload)


def function_response(call_id: str, function_name: str, result: Any) -> Outgoing:
    return _function_reply(call_id, function_name, result)


def failure_result(error: str) -> dict[str, str]:
    """The `result` the reference clients send for a failed call: {error, status}."""
    return {"error": str(error), "status": "failed"}


def function_failure(call_id: str, function_name: str, error: str) -> Outgoing:
    return _function_reply(call_id, function_name, failure_result(error))


def stop_call() -> Outgoing:
    return Outgoing("stop_call", None)


# -- server -> client -------------------------------------------------------------------
@dataclass(frozen=True)
class AuthSuccess:
    credits: float | None


@dataclass(frozen=True)
class AuthFailed:
    message: str
    credits: float | None


@dataclass(frozen=True)
class SessionReady:
    message: str | None
    credits_available: float | None
    cost_per_minute: float | None
    functions_loaded: int | None


@dataclass(frozen=True)
class SessionEnded:
    reason: str | None
    message: str | None
    total_credits_used: float | None
    remaining_credits: float | None


@dataclass(frozen=True)
class TextResponse:
    text: str


@dataclass(frozen=True)
class AudioResponse:
    chunk: AudioChunk  # 24 kHz mono


@dataclass(frozen=True)
class FunctionCalled:
    function_name: str
    arguments: dict[str, Any]
    call_id: str


@dataclass(frozen=True)
class FunctionResult:
    function_name: str | None
    result: Any


@dataclass(frozen=True)
class FunctionError:
    error: str


@dataclass(frozen=True)
class FunctionResponseSent:
    function_name: str | None
    admin_units_deducted: float | None
    remaining_admin_units: float | None


@dataclass(frozen=True)
class ServerError:
    """The server's `error` event (named so as not to shadow builtins)."""

    message: str
    type: str | None


@dataclass(frozen=True)
class UnknownEvent:
    """An event name not in the notes' table: not an error, drivers log and ignore it."""

    name: str
    data: Any


StsEvent: TypeAlias = (
    AuthSuccess | AuthFailed | SessionReady | SessionEnded | TextResponse | AudioResponse
    | FunctionCalled | FunctionResult | FunctionError | FunctionResponseSent | ServerError
    | UnknownEvent
)  # fmt: skip


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _integer(value: Any) -> int | None:
    f = _number(value)
    return int(f) if f is not None and f.is_integer() else None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return clip(json.dumps(value, default=str), 500)  # e.g. an error given as an object


def _payload(event: str, data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise ProtocolError(
                f"{event}: payload is neither an object nor JSON text: {snippet(data)}"
            ) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{event}: payload must be an object, got {type_name(data)}")
    return data


def _audio_response(p: dict[str, Any]) -> AudioResponse:
    text = p.get("audio_data")
    if not isinstance(text, str):
        raise ProtocolError(
            f"audio_response: 'audio_data' must be base64 text, got {type_name(text)}"
        )
    try:
        return AudioResponse(AudioChunk.from_base64(text, OUTPUT_RATE_HZ, 1))
    except AudioFormatError as exc:
        raise ProtocolError(f"audio_response: {clip(str(exc), 120)}") from None


def _text_response(p: dict[str, Any]) -> TextResponse:
    text = p.get("text")
    if not isinstance(text, str):
        raise ProtocolError(f"text_response: 'text' must be a string, got {snippet(text)}")
    return TextResponse(text)


def _function_called(p: dict[str, Any]) -> FunctionCalled:
    name = p.get("function_name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"function_called: no 'function_name' (got {snippet(name)})")
    where = f"function_called {snippet(name, 40)}"  # names can be long too
    call_id = p.get("call_id")
    if isinstance(call_id, int) and not isinstance(call_id, bool):
        call_id = str(call_id)
    if not isinstance(call_id, str) or not call_id:
        raise ProtocolError(f"{where}: no 'call_id' (got {snippet(call_id)})")
    args = p.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            raise ProtocolError(f"{where}: 'arguments' is not JSON: {snippet(args)}") from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(f"{where}: 'arguments' must be an object, got {snippet(args)}")
    return FunctionCalled(name, args, call_id)


_PARSERS: dict[str, Callable[[dict[str, Any]], StsEvent]] = {
    "auth_success": lambda p: AuthSuccess(_number(p.get("credits"))),
    "auth_failed": lambda p: AuthFailed(_text(p.get("message")), _number(p.get("credits"))),
    "session_ready": lambda p: SessionReady(
        _opt_str(p.get("message")),
        _number(p.get("credits_available")),
        _number(p.get("cost_per_minute")),
        _integer(p.get("functions_loaded")),
    ),
    "session_ended": lambda p: SessionEnded(
        _opt_str(p.get("reason")),
        _opt_str(p.get("message")),
        _number(p.get("total_credits_used")),
        _number(p.get("remaining_credits")),
    ),
    "text_response": _text_response,
    "audio_response": _audio_response,
    "function_called": _function_called,
    "function_result": lambda p: FunctionResult(_opt_str(p.get("function_name")), p.get("result")),
    "function_error": lambda p: FunctionError(_text(p.get("error"))),
    "function_response_sent": lambda p: FunctionResponseSent(
        _opt_str(p.get("function_name")),
        _number(p.get("admin_units_deducted")),
        _number(p.get("remaining_admin_units")),
    ),
    "error": lambda p: ServerError(_text(p.get("message")), _opt_str(p.get("type"))),
}

# Every server event the notes list; drivers register a handler for each of these.
SERVER_EVENTS: tuple[str, ...] = tuple(_PARSERS)


def parse_event(event: str, data: Any) -> StsEvent:
    """A received Socket.IO event -> typed event; ProtocolError if malformed."""
    parser = _PARSERS.get(event)
    if parser is None:
        return UnknownEvent(event, data)
    if event == "error" and isinstance(data, str):
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            return ServerError(data, None)  # leniency: `error` sent as bare text
    return parser(_payload(event, data))


# -- classification for the session ----------------------------------------------------
def is_credit_exhaustion(event: SessionEnded | ServerError) -> bool:
    code = event.reason if isinstance(event, SessionEnded) else event.type
    return code is not None and code.strip().lower() in CREDIT_EXHAUSTION_CODES


def is_auth_error(event: ServerError) -> bool:
    return event.type is not None and event.type.strip().lower() in AUTH_ERROR_CODES


def is_stopped_by_user(event: SessionEnded) -> bool:
    """The normal end after our stop_call (reference servers say "stopped by user")."""
    if event.reason is not None and event.reason.strip().lower() == "stopped_by_user":
        return True
    return event.message is not None and "stopped by user" in event.message.lower()


# -- one-line log summaries ------------------------------------------------------------
def _abbreviate(key: str, value: Any) -> str | None:
    if key == "auth_key":
        return "***"  # the API key must never reach a log
    if key == "audio_data" and isinstance(value, str):
        size = base64_size(value)
        return f"<base64 {size} bytes = {size // 2} samples>"
    return None


def describe_outgoing(o: Outgoing) -> str:
    if o.payload is None:
        return o.event
    return f"{o.event} {summarize(o.payload, _abbreviate)}"


def describe_incoming(event: str, data: Any) -> str:
    name = event if len(event) <= 40 else snippet(event, 40)
    if isinstance(data, str):
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            data = decoded
    if data is None:
        return name
    return f"{name} {summarize(data, _abbreviate)}"
