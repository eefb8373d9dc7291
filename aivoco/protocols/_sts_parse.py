"""Field parsers for the Speech-to-Speech server events (docs/protocols.md#sts-server-events).

Each parser takes the event's payload object and returns its fields, applying the
leniency rules listed in `sts_codec` (docs/protocols.md#leniency); a required field
that is missing or mistyped raises `ProtocolError`. `sts_codec.decode` turns the
fields into shared events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AudioFormatError, ProtocolError
from aivoco.protocols import _bounds
from aivoco.protocols._bounds import amount, integer, number
from aivoco.protocols._summary import clip, snippet, summarize, type_name

OUTPUT_RATE_HZ = 24000  # audio_response: PCM s16le 24 kHz mono
_TEXT_LIMIT = 500


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def text(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    try:  # e.g. an error given as an object (its depth is checked on arrival)
        shown = json.dumps(value, default=str)
    except ValueError:  # an integer of more digits than Python prints
        shown = summarize(value)
    return clip(shown, _TEXT_LIMIT)


def decode_payload(event: str, data: Any, lenient_text: bool = False) -> dict[str, Any] | Any:
    """The payload object; `{}` when absent. With `lenient_text`, text that is not a
    JSON object is returned as None (the caller takes the text itself as the message)."""
    if data is None:
        return {}
    if isinstance(data, str):
        try:
            _bounds.check_text_depth(data, f"{event}: the payload")
            data = json.loads(data)
        except (ValueError, ProtocolError) as exc:
            if lenient_text:
                return None
            if isinstance(exc, ProtocolError):
                raise
            raise ProtocolError(
                f"{event}: payload is neither an object nor JSON text: {snippet(data)}"
            ) from None
        if lenient_text and not isinstance(data, dict):
            return None
    if not isinstance(data, dict):
        raise ProtocolError(f"{event}: payload must be an object, got {type_name(data)}")
    return data


def _audio_response(p: dict[str, Any]) -> AudioChunk:
    value = p.get("audio_data")
    if not isinstance(value, str):
        raise ProtocolError(
            f"audio_response: 'audio_data' must be base64 text, got {type_name(value)}"
        )
    try:
        return AudioChunk.from_base64(value, OUTPUT_RATE_HZ, 1)
    except AudioFormatError as exc:
        raise ProtocolError(f"audio_response: {clip(str(exc), 120)}") from None


def _text_response(p: dict[str, Any]) -> str:
    value = p.get("text")
    if not isinstance(value, str):
        raise ProtocolError(f"text_response: 'text' must be a string, got {snippet(value)}")
    return value


def _function_called(p: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
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
        _bounds.check_text_depth(args, f"{where}: 'arguments'")
        try:
            args = json.loads(args)
        except ValueError:
            raise ProtocolError(f"{where}: 'arguments' is not JSON: {snippet(args)}") from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(f"{where}: 'arguments' must be an object, got {snippet(args)}")
    return name, args, call_id


def _count(value: Any) -> int | None:
    n = integer(value)
    return n if n is not None and n >= 0 else None


PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "auth_success": lambda p: number(p.get("credits")),
    "auth_failed": lambda p: (text(p.get("message")), number(p.get("credits"))),
    "session_ready": lambda p: (
        opt_str(p.get("message")),
        number(p.get("credits_available")),
        amount(p.get("cost_per_minute")),
        _count(p.get("functions_loaded")),
    ),
    "session_ended": lambda p: (
        opt_str(p.get("reason")),
        opt_str(p.get("message")),
        amount(p.get("total_credits_used")),
        number(p.get("remaining_credits")),
    ),
    "text_response": _text_response,
    "audio_response": _audio_response,
    "function_called": _function_called,
    "function_result": lambda p: (opt_str(p.get("function_name")), p.get("result")),
    "function_error": lambda p: text(p.get("error")),
    "function_response_sent": lambda p: (
        opt_str(p.get("function_name")),
        amount(p.get("admin_units_deducted")),
        number(p.get("remaining_admin_units")),
    ),
    "error": lambda p: (text(p.get("message")), opt_str(p.get("type"))),
}
