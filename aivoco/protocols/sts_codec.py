"""Speech-to-Speech API messages (Socket.IO events), docs/protocols.md#sts.

Pure codec (`StsCodec`): builds the events a driver emits and decodes a received
`(event, args)` pair into the shared events of `aivoco.wire.events`. No sockets.

Leniency (each one harmless; the event keeps its meaning), docs/protocols.md#leniency:
- a payload given as JSON text holding an object is decoded; a missing payload is `{}`;
- numbers may arrive as numeric strings; booleans and non-finite values are not numbers;
- optional fields that are missing or of the wrong type become None (an event's meaning
  never hinges on a cosmetic field such as a credit count);
- `function_called.arguments` may be JSON text holding an object, or missing (= `{}`);
  `call_id` may be an integer (turned into a string);
- an `error` payload may be bare text (taken as its message); `auth_failed`, `error`
  and `function_error` without a message get "".
Strict where it matters: required fields (`text`, `audio_data`, `function_name`,
`call_id`, an object `arguments`) missing or mistyped, bad audio, and an event with
more than one argument raise `ProtocolError` naming the event and quoting at most ~80
characters of the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from aivoco.audio import levels
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
from aivoco.protocols import _bounds
from aivoco.protocols._codec import Codec, Outgoing
from aivoco.protocols._sts_parse import PARSERS, decode_payload
from aivoco.protocols._summary import base64_size, clip, snippet, summarize, type_name
from aivoco.wire import events as ev
from aivoco.wire.driver import ProtocolName
from aivoco.wire.functions import FunctionSpec

INPUT_RATE_HZ = 16000  # audio_data: PCM s16le 16 kHz mono (docs/protocols.md#sts-audio-data)
OUTPUT_RATE_HZ = 24000  # audio_response: PCM s16le 24 kHz mono
# A Socket.IO JS server drops the connection on a message over maxHttpBufferSize (1 MB
# by default) and base64 adds a third (docs/protocols.md#pitfall-max-buffer): 10 s is
# ~427 KB of base64.
MAX_AUDIO_DATA_MS = 10_000

# voice_choice is a free string passed through unchanged; these are the values seen
# (docs/protocols.md#sts-voices).
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

# Unknown event names are kept for the log and the transcript, this long at most.
_NAME_LIMIT = 80

# A received Socket.IO event: its name and the arguments it carried.
StsIncoming: TypeAlias = tuple[str, tuple[Any, ...]]


# -- client -> server -------------------------------------------------------------------
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
    return Outgoing("start", ("start_call", payload))


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
    return Outgoing("audio", ("audio_data", payload), chunk.duration_ms)


def function_response(call_id: str, function_name: str, result: Any) -> Outgoing:
    """A function's result (a failure already has the `failure_result()` shape)."""
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
    return Outgoing("function_response", ("function_response", payload))


def stop_call() -> Outgoing:
    return Outgoing("stop", ("stop_call", None))


# -- server errors -> our error types (the one place, docs/protocols.md#sts-errors) ------
def _is_code(code: str | None, codes: frozenset[str]) -> bool:
    return code is not None and code.strip().lower() in codes


def is_stopped_by_user(reason: str | None, message: str | None) -> bool:
    """The normal end after our stop_call (reference servers say "stopped by user")."""
    if reason is not None and reason.strip().lower() == "stopped_by_user":
        return True
    return message is not None and "stopped by user" in message.lower()


def error_for(kind: str, code: str | None, text: str) -> AivocoError:
    """`auth_failed`, `error` or `session_ended` (with its code) -> our error type."""
    if kind == "auth_failed" or (kind == "error" and _is_code(code, AUTH_ERROR_CODES)):
        return AuthError(f"the server refused the API key: {text or 'no reason given'}")
    if kind == "session_ended":
        if _is_code(code, CREDIT_EXHAUSTION_CODES):
            return CreditsError(f"the server ended the session: {text}")
        return ServiceError(f"the server ended the session: {text}")
    if _is_code(code, CREDIT_EXHAUSTION_CODES):
        return CreditsError(f"out of credits: {text}")
    return ServiceError(f"the server reported an error ({code or 'error'}): {text}")


def _session_ended(p: dict[str, Any]) -> ev.Ended:
    reason, message, used, remaining = PARSERS["session_ended"](p)
    text = message or reason or "no reason given"
    error = error_for("session_ended", reason, text)
    credits_out = isinstance(error, CreditsError)
    return ev.Ended(
        reason or "ended",
        message,
        used,
        remaining,
        error=error if credits_out else None,
        error_unless_hung_up=None if credits_out else error,
    )


def _server_error(data: Any, p: dict[str, Any] | None) -> ev.Failed:
    if p is None:  # leniency: `error` sent as bare text
        return ev.Failed(error_for("error", None, str(data) or "unknown error"))
    message, code = PARSERS["error"](p)
    return ev.Failed(error_for("error", code, message or code or "unknown error"))


def _to_event(event: str, data: Any) -> ev.Event:
    if event == "error":
        return _server_error(data, decode_payload(event, data, lenient_text=True))
    p = decode_payload(event, data)
    if event == "session_ended":
        return _session_ended(p)
    fields = PARSERS[event](p)
    if event == "audio_response":
        return ev.AgentAudio(fields)
    if event == "text_response":
        return ev.AgentText(fields)
    if event == "session_ready":
        return ev.Ready(*fields)
    if event == "auth_success":
        return ev.CreditsInfo(fields)
    if event == "auth_failed":
        message, _credits = fields
        return ev.Failed(error_for("auth_failed", None, message))
    if event == "function_called":
        name, args, call_id = fields
        return ev.FunctionCall(call_id, name, args)
    if event == "function_result":
        return ev.FunctionReport("result", *fields)
    if event == "function_error":
        return ev.FunctionReport("error", None, fields)
    name, deducted, remaining = fields  # function_response_sent
    detail = {"admin_units_deducted": deducted, "remaining_admin_units": remaining}
    return ev.FunctionReport("billed", name, detail)


def decode(event: Any, args: tuple[Any, ...]) -> ev.Event:
    """A received Socket.IO event -> a shared event; ProtocolError if malformed."""
    if not isinstance(event, str):
        raise ProtocolError(f"event name must be text, got {type_name(event)}")
    for arg in args:
        _bounds.check_depth(arg, f"{clip(event, 40)}: the payload")
    if event not in PARSERS:
        data = args[0] if len(args) == 1 else (args or None)
        return ev.UnknownEvent(clip(event, _NAME_LIMIT), data)
    if len(args) > 1:
        raise ProtocolError(f"{clip(event, 40)}: {len(args)} arguments, expected one payload")
    return _to_event(event, args[0] if args else None)


# Every server event the reference lists (docs/protocols.md#sts-server-events).
SERVER_EVENTS: tuple[str, ...] = tuple(PARSERS)


# -- one-line log summaries ------------------------------------------------------------
def _abbreviate(key: str, value: Any) -> str | None:
    if key == "auth_key":
        return "***"  # the API key must never reach a log
    if key == "audio_data" and isinstance(value, str):
        size = base64_size(value)
        return f"<base64 {size} bytes = {size // 2} samples>"
    return None


def describe_incoming(event: Any, args: tuple[Any, ...]) -> str:
    """A bounded one-line summary of any received event (total: never raises)."""
    name = event if isinstance(event, str) and len(event) <= 40 else snippet(event, 40)
    data: Any = args[0] if len(args) == 1 else (list(args) if args else None)
    if isinstance(data, str):
        try:
            decoded = _bounds.loads(data, "payload")
        except ProtocolError:
            decoded = None
        if isinstance(decoded, dict):
            data = decoded
    if data is None:
        return name
    return f"{name} {summarize(data, _abbreviate)}"


class StsCodec(Codec[StsIncoming]):
    """One Speech-to-Speech session: `start_call`, audio, function results, `stop_call`."""

    protocol = ProtocolName.STS
    uplink_rate_hz = INPUT_RATE_HZ
    downlink_rate_hz = OUTPUT_RATE_HZ
    has_credits = True

    def __init__(
        self,
        auth_key: str,
        voice_choice: str,
        system_message: str = "",
        custom_functions: Sequence[FunctionSpec] = (),
    ) -> None:
        # Built now, so a bad key, voice or function set is a usage error before connecting.
        self._start = start_call(auth_key, system_message, voice_choice, custom_functions)
        self.started = False
        self.closed = False

    def opening(self) -> list[Outgoing]:
        self._refuse_if_closed("start_call")
        if self.started:
            raise ProtocolMisuseError("start_call sent twice")
        self.started = True
        return [self._start]

    def audio(self, chunk: AudioChunk) -> Outgoing:
        self._refuse_if_closed("audio_data")
        return audio_data(chunk)

    def function_result(self, call_id: str, name: str, result: Any) -> Outgoing:
        self._refuse_if_closed("function_response")
        return function_response(call_id, name, result)

    def closing(self) -> Outgoing:
        self._refuse_if_closed("stop_call")
        self.closed = True
        return stop_call()

    def _refuse_if_closed(self, what: str) -> None:
        if self.closed:
            raise ProtocolMisuseError(f"{what} after stop_call")

    def decode(self, raw: StsIncoming) -> ev.Event:
        return decode(*raw)

    def describe_outgoing(self, out: Outgoing) -> str:
        event, payload = out.data
        return event if payload is None else f"{event} {summarize(payload, _abbreviate)}"

    def describe_incoming(self, raw: StsIncoming) -> str:
        return describe_incoming(*raw)
