"""Agent-call messages (raw WebSocket, Twilio-Media-Streams style), docs/protocols.md#call.

Pure codec (`CallCodec`): builds the JSON text frames in protocol order and keeps the
numbering; decodes a received frame into the shared events of `aivoco.wire.events`.

Numbering (docs/protocols.md#call-media, matching the browser reference client):
- `start` carries `"sequenceNumber": "1"` as a *string*, exactly as the reference shows;
- every later message continues the sequence as a JSON *number* (first media is 2);
- `media.chunk` counts media messages from 1; `media.timestamp` is the stream position
  in ms (audio sent before this chunk), as a string like Twilio's.
Audio is G.711 mu-law at 8 kHz mono, the declared `mediaFormat` (docs/protocols.md#call-format).

Decoding leniency (docs/protocols.md#leniency): binary frames are accepted if they hold
UTF-8 JSON; the server's `chunk` / `timestamp` are not needed for playback and are
ignored; `connected` (sent by Twilio-style servers) is informational; other events
become `UnknownEvent`.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any, TypeAlias

from aivoco.audio.chunk import AudioChunk, b64decode_strict
from aivoco.audio.g711 import ulaw_decode, ulaw_encode
from aivoco.errors import (
    AivocoError,
    AudioFormatError,
    AuthError,
    ConnectionFailedError,
    ProtocolError,
    ProtocolMisuseError,
)
from aivoco.protocols import _bounds
from aivoco.protocols._codec import Codec, Outgoing
from aivoco.protocols._summary import base64_size, clip, snippet, summarize, type_name
from aivoco.wire import events as ev
from aivoco.wire.driver import ProtocolName

RATE_HZ = 8000  # mediaFormat: audio/x-mulaw, 8000 Hz, 1 channel
ENCODING = "audio/x-mulaw"
TRACK = "inbound"
# Compact separators, as JSON.stringify in the reference client produces.
_SEPARATORS = (",", ":")

# Unknown event names are kept for the log and the transcript, this long at most.
_NAME_LIMIT = 80

# A received frame: text frames as str, binary frames as bytes.
CallIncoming: TypeAlias = "str | bytes"


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


# -- refusals -> our error types (the one place, docs/protocols.md#call-rejections) -------
def error_for(
    endpoint: str,
    *,
    http_status: int | None = None,
    closed: str = "",
    early: bool = False,
    path: str = "",
) -> AivocoError:
    """A refused upgrade (`http_status`) or a close (`closed`, `early`: right after
    opening, before the server said anything, which is how a rejection looks); `path`
    is the path tried, the key masked."""
    if http_status in (401, 403):
        return AuthError(f"{endpoint}: the service refused the API key (HTTP {http_status})")
    if http_status == 404:
        return AuthError(
            f"{endpoint}: unknown agent or key, or wrong URL (HTTP 404 for {path or 'the call'})"
        )
    if http_status is not None:
        return ConnectionFailedError(f"{endpoint} refused the call (HTTP {http_status})")
    if early:
        return AuthError(
            f"{endpoint} closed the call right after it opened ({closed}): "
            "the API key or agent was rejected"
        )
    return ConnectionFailedError(f"the connection to {endpoint} was lost ({closed})")


# -- server -> client -------------------------------------------------------------------
def _message(raw: Any) -> dict[str, Any]:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"binary frame is not UTF-8 JSON: {snippet(raw)}") from None
    if not isinstance(raw, str):
        raise ProtocolError(f"frame must be text or bytes, got {type_name(raw)}")
    try:
        message = _bounds.loads(raw, "frame")
    except ProtocolError as exc:
        raise ProtocolError(f"{exc}: {snippet(raw)}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"frame is not a JSON object: {snippet(raw)}")
    return message


def _media(message: dict[str, Any]) -> ev.AgentAudio:
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
    return ev.AgentAudio(AudioChunk(ulaw_decode(codes), RATE_HZ, 1))


def _mark(message: dict[str, Any]) -> ev.PlaybackMark:
    mark = message.get("mark")
    name = mark.get("name") if isinstance(mark, dict) else None
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"mark: no 'mark.name' (got {snippet(mark)})")
    return ev.PlaybackMark(name)


def _connected(message: dict[str, Any]) -> ev.Notice:
    protocol, version = message.get("protocol"), message.get("version")
    shown = [v for v in (protocol, version) if isinstance(v, str)]
    return ev.Notice("server connected" + (f" ({', '.join(shown)})" if shown else ""))


def decode(raw: CallIncoming) -> ev.Event:
    """A received frame -> a shared event; ProtocolError if it is malformed."""
    message = _message(raw)
    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise ProtocolError(f"frame has no 'event': {snippet(raw)}")
    if event == "media":
        return _media(message)
    if event == "mark":
        return _mark(message)
    if event == "clear":
        return ev.PlaybackClear()
    if event == "stop":
        return ev.Ended("agent-hangup", "the agent ended the call")
    if event == "connected":
        return _connected(message)
    return ev.UnknownEvent(clip(event, _NAME_LIMIT), message)


# -- one-line log summaries ------------------------------------------------------------
def _abbreviate(key: str, value: Any) -> str | None:
    if key == "payload" and isinstance(value, str):
        size = base64_size(value)
        return f"<base64 {size} bytes = {size} mu-law samples>"
    return None


def describe(raw: CallIncoming) -> str:
    """A bounded one-line summary of any frame (total: never raises)."""
    prefix = ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        prefix = f"<binary {len(data)} bytes> "
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            return prefix.rstrip()
    if raw == "":
        return prefix + "''" if prefix else "'' (handshake)"
    try:
        message = _bounds.loads(raw, "frame")
    except ProtocolError as exc:
        return prefix + f"{exc}: {snippet(raw)}"
    if not isinstance(message, dict):
        return prefix + summarize(message, _abbreviate)
    event = message.get("event")
    rest = {k: v for k, v in message.items() if k != "event"}
    name = event if isinstance(event, str) and len(event) <= 40 else snippet(event, 40)
    return prefix + f"{name} {summarize(rest, _abbreviate)}"


class CallCodec(Codec[CallIncoming]):
    """One media stream: handshake and `start`, then media and marks, then `stop`."""

    protocol = ProtocolName.CALL
    uplink_rate_hz = RATE_HZ
    downlink_rate_hz = RATE_HZ
    has_credits = False

    def __init__(
        self, ids: CallIds | None = None, custom_parameters: dict[str, Any] | None = None
    ) -> None:
        self.ids = ids if ids is not None else CallIds.new()
        self.custom_parameters = dict(custom_parameters or {})
        if any(not isinstance(k, str) for k in self.custom_parameters):
            raise ProtocolMisuseError("customParameters keys must be strings")
        self.sequence_number = 0  # of the last message built; start is 1
        self.media_sent = 0
        self.frames_sent = 0  # 8 kHz frames: the stream position timestamps derive from
        self.closed = False

    def _next(self, what: str) -> int:
        if self.closed:
            raise ProtocolMisuseError(f"{what} after stop")
        if self.sequence_number == 0:
            raise ProtocolMisuseError(f"{what} before start")
        self.sequence_number += 1
        return self.sequence_number

    def opening(self) -> list[Outgoing]:
        """The empty text message the reference client sends first, then `start`."""
        if self.closed or self.sequence_number:
            raise ProtocolMisuseError("start sent twice")
        params = self.custom_parameters
        ids = self.ids
        start = {
            "accountSid": ids.account_sid,
            "streamSid": ids.stream_sid,
            "callSid": ids.call_sid,
            "tracks": [TRACK],
            "customParameters": params,
            "mediaFormat": {"encoding": ENCODING, "sampleRate": RATE_HZ, "channels": 1},
        }
        message = {"event": "start", "sequenceNumber": "1", "start": start}
        try:
            text = _dumps({**message, "streamSid": ids.stream_sid})
        except (TypeError, ValueError) as exc:
            raise ProtocolMisuseError(f"customParameters are not JSON: {exc}") from exc
        self.sequence_number = 1
        return [Outgoing("handshake", ""), Outgoing("start", text)]

    def audio(self, chunk: AudioChunk) -> Outgoing:
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
        self.media_sent += 1
        timestamp_ms = self.frames_sent * 1000 // RATE_HZ
        self.frames_sent += chunk.frames
        payload = base64.b64encode(ulaw_encode(chunk.mono_samples()).tobytes()).decode("ascii")
        media = {
            "track": TRACK,
            "chunk": self.media_sent,
            "timestamp": str(timestamp_ms),
            "payload": payload,
        }
        message = {
            "event": "media",
            "media": media,
            "sequenceNumber": seq,
            "streamSid": self.ids.stream_sid,  # as Twilio sends; harmless extra
        }
        return Outgoing("audio", _dumps(message), chunk.duration_ms)

    def mark(self, name: str) -> Outgoing:
        """Answer a server `mark` once the audio before it has been played."""
        if not isinstance(name, str) or not name:
            raise ProtocolMisuseError("mark name must be a non-empty str")
        seq = self._next("mark")
        message = {
            "event": "mark",
            "sequenceNumber": seq,
            "streamSid": self.ids.stream_sid,
            "mark": {"name": name},
        }
        return Outgoing("mark", _dumps(message))

    def closing(self) -> Outgoing:
        seq = self._next("stop")
        self.closed = True
        ids = self.ids
        stop = {"accountSid": ids.account_sid, "callSid": ids.call_sid}
        message = {"event": "stop", "sequenceNumber": seq, "streamSid": ids.stream_sid}
        return Outgoing("stop", _dumps({**message, "stop": stop}))

    def decode(self, raw: CallIncoming) -> ev.Event:
        return decode(raw)

    def describe_outgoing(self, out: Outgoing) -> str:
        return describe(out.data)

    def describe_incoming(self, raw: CallIncoming) -> str:
        return describe(raw)
