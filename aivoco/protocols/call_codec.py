"""Agent-call messages (raw WebSocket, Twilio-Media-Streams style), protocol notes section 2.

Pure codec: `CallEncoder` builds the JSON text frames in order and keeps the numbering
(no socket); `parse_server_message()` turns a received frame into a typed event.

Numbering (notes section 2, matching the browser reference client):
- `start` carries `"sequenceNumber": "1"` as a *string*, exactly as the notes show;
- every later message continues the sequence as a JSON *number* (first media is 2);
- `media.chunk` counts media messages from 1; `media.timestamp` is the stream position
  in ms (audio sent before this chunk), as a string like Twilio's.
Audio is G.711 mu-law at 8 kHz mono, the declared `mediaFormat` (160 bytes per 20 ms).

Parser leniency: `chunk` / `timestamp` may be numbers or numeric strings (unusable values
become None); binary frames are accepted if they hold UTF-8 JSON; `connected` (sent by
Twilio-style servers) is informational; other events become `UnknownEvent`.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aivoco.audio.chunk import AudioChunk, b64decode_strict
from aivoco.audio.g711 import ulaw_decode, ulaw_encode
from aivoco.errors import AudioFormatError, ProtocolError, ProtocolMisuseError
from aivoco.protocols._summary import base64_size, clip, snippet, summarize, type_name

RATE_HZ = 8000  # mediaFormat: audio/x-mulaw, 8000 Hz, 1 channel (notes section 2)
ENCODING = "audio/x-mulaw"
TRACK = "inbound"
# Compact separators, as JSON.stringify in the reference client produces.
_SEPARATORS = (",", ":")


@dataclass(frozen=True)
class CallIds:
    """Twilio-style identifiers for one stream: prefix + 32 lowercase hex characters."""

    account_sid: str
    stream_sid: str
    call_sid: str

    @classmethod
    def new(cls) -> CallIds:
        return cls(
            "AC" + secrets.token_hex(16),
            "MZ" + secrets.token_hex(16),
            "CA" + secrets.token_hex(16),
        )


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=_SEPARATORS, allow_nan=False)


class CallEncoder:
    """Builds the client's frames in protocol order: handshake, start, media/mark, stop."""

    def __init__(self, ids: CallIds | None = None) -> None:
        self.ids = ids if ids is not None else CallIds.new()
        self._sequence = 0  # last sequenceNumber used; start is 1
        self._media_sent = 0
        self._frames_sent = 0
        self._stopped = False

    @property
    def sequence_number(self) -> int:
        """The sequenceNumber of the last message built (0 before start)."""
        return self._sequence

    @property
    def media_sent(self) -> int:
        return self._media_sent

    @property
    def frames_sent(self) -> int:
        """8 kHz frames sent so far (the stream position that timestamps derive from)."""
        return self._frames_sent

    @property
    def started(self) -> bool:
        return self._sequence > 0

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _next(self, what: str) -> int:
        if self._stopped:
            raise ProtocolMisuseError(f"{what} after stop")
        if not self.started:
            raise ProtocolMisuseError(f"{what} before start")
        self._sequence += 1
        return self._sequence

    def handshake(self) -> str:
        """The empty text message the reference client sends right after opening."""
        if self.started or self._stopped:
            raise ProtocolMisuseError("handshake after start")
        return ""

    def start(self, custom_parameters: dict[str, Any] | None = None) -> str:
        if self._stopped or self.started:
            raise ProtocolMisuseError("start sent twice")
        params = dict(custom_parameters or {})
        if any(not isinstance(k, str) for k in params):
            raise ProtocolMisuseError("customParameters keys must be strings")
        ids = self.ids
        message = {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": ids.account_sid,
                "streamSid": ids.stream_sid,
                "callSid": ids.call_sid,
                "tracks": [TRACK],
                "customParameters": params,
                "mediaFormat": {"encoding": ENCODING, "sampleRate": RATE_HZ, "channels": 1},
            },
            "streamSid": ids.stream_sid,
        }
        try:
            text = _dumps(message)
        except (TypeError, ValueError) as exc:
            raise ProtocolMisuseError(f"customParameters are not JSON: {exc}") from exc
        self._sequence = 1
        return text

    def media(self, chunk: AudioChunk) -> str:
        """One chunk of 8 kHz mono audio -> a mu-law `media` message."""
        if not isinstance(chunk, AudioChunk):
            raise ProtocolMisuseError(f"media needs an AudioChunk, got {type_name(chunk)}")
        if chunk.sample_rate_hz != RATE_HZ or chunk.channels != 1:
            raise ProtocolMisuseError(
                f"media needs {RATE_HZ} Hz mono, got {chunk.sample_rate_hz} Hz "
                f"x {chunk.channels} channels; resample first"
            )
        if chunk.frames == 0:
            raise ProtocolMisuseError("media chunk is empty")
        seq = self._next("media")
        self._media_sent += 1
        timestamp_ms = self._frames_sent * 1000 // RATE_HZ
        self._frames_sent += chunk.frames
        payload = base64.b64encode(ulaw_encode(chunk.mono_samples()).tobytes()).decode("ascii")
        return _dumps(
            {
                "event": "media",
                "media": {
                    "track": TRACK,
                    "chunk": self._media_sent,
                    "timestamp": str(timestamp_ms),
                    "payload": payload,
                },
                "sequenceNumber": seq,
                "streamSid": self.ids.stream_sid,  # as Twilio sends; harmless extra
            }
        )

    def mark(self, name: str) -> str:
        """Answer a server `mark` once the audio before it has been played."""
        if not isinstance(name, str) or not name:
            raise ProtocolMisuseError("mark name must be a non-empty str")
        seq = self._next("mark")
        return _dumps(
            {
                "event": "mark",
                "sequenceNumber": seq,
                "streamSid": self.ids.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str:
        seq = self._next("stop")
        self._stopped = True
        ids = self.ids
        return _dumps(
            {
                "event": "stop",
                "sequenceNumber": seq,
                "streamSid": ids.stream_sid,
                "stop": {"accountSid": ids.account_sid, "callSid": ids.call_sid},
            }
        )


# -- server -> client -------------------------------------------------------------------
@dataclass(frozen=True)
class ServerMedia:
    chunk: AudioChunk  # 8 kHz mono int16, decoded from mu-law
    chunk_number: int | None
    timestamp_ms: int | None


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Clear:
    """Flush queued playback (barge-in)."""


@dataclass(frozen=True)
class Stop:
    """The server ends the stream."""


@dataclass(frozen=True)
class Connected:
    """Twilio's first message (`{"event":"connected","protocol":..,"version":..}`)."""

    protocol: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class UnknownEvent:
    name: str
    data: dict[str, Any] = field(default_factory=dict)


CallEvent: TypeAlias = ServerMedia | Mark | Clear | Stop | Connected | UnknownEvent


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def _decode_frame(raw: str | bytes) -> dict[str, Any]:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"binary frame is not UTF-8 JSON: {snippet(raw)}") from None
    if not isinstance(raw, str):
        raise ProtocolError(f"frame must be text or bytes, got {type_name(raw)}")
    try:
        message = json.loads(raw)
    except ValueError:
        raise ProtocolError(f"frame is not JSON: {snippet(raw)}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"frame is not a JSON object: {snippet(raw)}")
    return message


def _media(message: dict[str, Any]) -> ServerMedia:
    media = message.get("media")
    if not isinstance(media, dict):
        raise ProtocolError(f"media: 'media' must be an object, got {snippet(media)}")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise ProtocolError(f"media: 'payload' must be base64 text, got {type_name(payload)}")
    try:
        codes = b64decode_strict(payload)
    except AudioFormatError as exc:
        raise ProtocolError(f"media: {clip(str(exc), 120)}") from None
    return ServerMedia(
        AudioChunk(ulaw_decode(codes), RATE_HZ, 1),
        _integer(media.get("chunk")),
        _integer(media.get("timestamp")),
    )


def _mark(message: dict[str, Any]) -> Mark:
    mark = message.get("mark")
    name = mark.get("name") if isinstance(mark, dict) else None
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"mark: no 'mark.name' (got {snippet(mark)})")
    return Mark(name)


def parse_server_message(raw: str | bytes) -> CallEvent:
    """A received frame -> typed event; ProtocolError if it is malformed."""
    message = _decode_frame(raw)
    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise ProtocolError(f"frame has no 'event': {snippet(raw)}")
    if event == "media":
        return _media(message)
    if event == "mark":
        return _mark(message)
    if event == "clear":
        return Clear()
    if event == "stop":
        return Stop()
    if event == "connected":
        protocol, version = message.get("protocol"), message.get("version")
        return Connected(
            protocol if isinstance(protocol, str) else None,
            version if isinstance(version, str) else None,
        )
    return UnknownEvent(event, message)


# -- one-line log summaries ------------------------------------------------------------
def _abbreviate(key: str, value: Any) -> str | None:
    if key == "payload" and isinstance(value, str):
        size = base64_size(value)
        return f"<base64 {size} bytes = {size} mu-law samples>"
    return None


def _describe(raw: str | bytes) -> str:
    prefix = ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        prefix = f"<binary {len(data)} bytes> "
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            return prefix.rstrip()
    if raw == "":
        return prefix + "'' (handshake)"
    try:
        message = json.loads(raw)
    except ValueError:
        return prefix + f"non-JSON {snippet(raw)}"
    if not isinstance(message, dict):
        return prefix + summarize(message, _abbreviate)
    event = message.get("event")
    rest = {k: v for k, v in message.items() if k != "event"}
    name = event if isinstance(event, str) and len(event) <= 40 else snippet(event, 40)
    return prefix + f"{name} {summarize(rest, _abbreviate)}"


def describe_outgoing(text: str) -> str:
    return _describe(text)


def describe_incoming(raw: str | bytes) -> str:
    return _describe(raw)
