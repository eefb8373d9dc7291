"""`RecordingCallServer`: a real aiohttp WebSocket server for the `aivoco call` tests.

Serves `/ws/{key}/{agent}` (docs/protocols.md#call-endpoint), records every frame received and
the key/agent as seen in the path (URL-unescaped), and can refuse the upgrade with an
HTTP status, close right after accepting, or send media/mark/clear/stop on demand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote

from _servers_loop import (
    DEFAULT_TIMEOUT,
    Abort,
    Action,
    Close,
    SendBinary,
    SendMedia,
    SendText,
    _ThreadedServer,
)
from aiohttp import WSMsgType, web

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.g711 import ulaw_encode


@dataclass(frozen=True)
class Frame:
    time: float
    kind: Literal["text", "binary"]
    data: str | bytes
    connection: int  # index into RecordingCallServer.connections


@dataclass
class CallConnection:
    """One upgrade attempt: the path as seen (URL-unescaped) and how it went."""

    index: int
    key: str
    agent: str
    raw_path: str
    headers: dict[str, str]
    status: int  # 101 when upgraded, else the HTTP error returned
    opened_at: float
    closed_at: float | None = None
    close_code: int | None = None  # the close code the server saw
    stream_sid: str | None = None  # from the client's `start`
    chunks_sent: int = 0
    frames_sent: int = 0
    ws: web.WebSocketResponse | None = field(default=None, repr=False)
    transport: Any = field(default=None, repr=False)


CallHook = Callable[["RecordingCallServer", CallConnection, dict[str, Any]], Any]


def _path_segments(raw_path: str) -> list[str] | None:
    parts = raw_path.split("?", 1)[0].split("/")
    # "/ws/{key}/{agent}" -> ["", "ws", key, agent]; escaped '/' stays inside a segment.
    if len(parts) != 4 or parts[0] != "" or parts[1] != "ws" or not parts[2] or not parts[3]:
        return None
    return [unquote(parts[2]), unquote(parts[3])]


class RecordingCallServer(_ThreadedServer):
    """WebSocket server on `/ws/{key}/{agent}` recording every frame it receives.

    `refuse_keys` / `refuse_agents` map a key or agent to the HTTP status returned
    instead of upgrading (e.g. 401, 403, 404); `close_after_accept` upgrades and then
    closes at once with that code. `on(event, hook)` runs `hook(server, conn, message)`
    for each JSON text message with that `event`; it may return actions for `conn`.
    """

    def __init__(
        self,
        *,
        refuse_keys: Mapping[str, int] | None = None,
        refuse_agents: Mapping[str, int] | None = None,
        close_after_accept: int | None = None,
        hooks: Mapping[str, CallHook] | None = None,
    ) -> None:
        super().__init__()
        self.refuse_keys = dict(refuse_keys or {})
        self.refuse_agents = dict(refuse_agents or {})
        self.close_after_accept = close_after_accept
        self.connections: list[CallConnection] = []
        self.frames: list[Frame] = []
        self._hooks: dict[str, CallHook] = dict(hooks or {})

    def _scheme(self) -> str:
        return "ws"

    def url_for(self, key: str, agent: str) -> str:
        """The endpoint URL with both path segments escaped as a client must."""
        return f"{self.url}/ws/{quote(key, safe='')}/{quote(agent, safe='')}"

    def on(self, event: str, hook: CallHook) -> None:
        self._hooks[event] = hook

    # -- test-thread API ------------------------------------------------------------
    def send_text(self, text: str) -> None:
        self.run(SendText(text))

    def send_json(self, message: dict[str, Any]) -> None:
        self.run(SendText(json.dumps(message)))

    def send_binary(self, data: bytes) -> None:
        self.run(SendBinary(data))

    def send_media(self, chunk: AudioChunk, frame_ms: int | None = None) -> None:
        """Send 8 kHz mono audio as server `media` messages (split into `frame_ms`)."""
        self.run(*media_actions(chunk, frame_ms))

    def send_mark(self, name: str) -> None:
        self.send_json({"event": "mark", "mark": {"name": name}})

    def send_clear(self) -> None:
        self.send_json({"event": "clear"})

    def send_stop(self) -> None:
        self.send_json({"event": "stop"})

    def close(self, code: int = 1000) -> None:
        self.run(Close(code))

    def abort(self) -> None:
        self.run(Abort())

    def wait_for_connection(self, timeout: float = DEFAULT_TIMEOUT) -> CallConnection:
        return self._wait(lambda: self.connections[-1] if self.connections else None,
                          timeout, "a connection")  # fmt: skip

    def wait_for_close(self, timeout: float = DEFAULT_TIMEOUT) -> CallConnection:
        def closed() -> CallConnection | None:
            done = [c for c in self.connections if c.closed_at is not None]
            return done[-1] if done else None

        return self._wait(closed, timeout, "a connection to close")

    def messages(self) -> list[dict[str, Any]]:
        """Received text frames that are JSON objects, in order (skips '' and junk)."""
        with self._cond:
            frames = [f for f in self.frames if f.kind == "text"]
        out = []
        for f in frames:
            try:
                message = json.loads(f.data)
            except ValueError:
                continue
            if isinstance(message, dict):
                out.append(message)
        return out

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages() if name is None or m.get("event") == name]

    def wait_for(
        self, event: str, timeout: float = DEFAULT_TIMEOUT, count: int = 1
    ) -> dict[str, Any]:
        """The `count`-th message with this `event`, waiting for it."""

        def found() -> dict[str, Any] | None:
            matches = self.events(event)
            return matches[count - 1] if len(matches) >= count else None

        return self._wait(found, timeout, f"{count} x {event!r}")

    def wait_for_frames(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[Frame]:
        return self._wait(
            lambda: list(self.frames) if len(self.frames) >= count else None,
            timeout,
            f"{count} frames",
        )

    # -- server side ------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Segments come from the raw path so escaped characters ('/', '%', ' ') are seen
        # exactly as the client escaped them, then unescaped once.
        segments = _path_segments(request.raw_path)
        if segments is None:
            raise web.HTTPNotFound(text="expected /ws/{apiKey}/{agentId}")
        key, agent = segments
        status = self.refuse_keys.get(key) or self.refuse_agents.get(agent) or 101
        conn = CallConnection(
            len(self.connections), key, agent, request.raw_path, dict(request.headers),
            status, time.monotonic(), transport=request.transport,
        )  # fmt: skip
        with self._cond:
            self.connections.append(conn)
            self._cond.notify_all()
        if status != 101:
            conn.closed_at = time.monotonic()
            self._notify()
            return web.Response(status=status, text=f"refused with {status}")
        # timeout: how long close() waits for the client's close reply (stop() stays quick).
        ws = web.WebSocketResponse(timeout=1.0, autoping=True)
        await ws.prepare(request)
        conn.ws = ws
        try:
            if self.close_after_accept is not None:
                await ws.close(code=self.close_after_accept)
            else:
                await self._receive(conn, ws)
        finally:
            conn.close_code = ws.close_code
            conn.closed_at = time.monotonic()
            self._notify()
        return ws

    async def _receive(self, conn: CallConnection, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self._record(conn, "text", msg.data)
                self._dispatch(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._record(conn, "binary", msg.data)
            else:  # ERROR
                break

    def _record(self, conn: CallConnection, kind: Literal["text", "binary"], data: Any) -> None:
        with self._cond:
            self.frames.append(Frame(time.monotonic(), kind, data, conn.index))
            self._cond.notify_all()

    def _dispatch(self, conn: CallConnection, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("event") == "start" and isinstance(message.get("streamSid"), str):
            conn.stream_sid = message["streamSid"]
        hook = self._hooks.get(str(message.get("event")))
        if hook is not None:
            try:
                self._enqueue(hook(self, conn, message), conn)
            except Exception as exc:
                self.errors.append(exc)

    def _open(self) -> list[CallConnection]:
        return [c for c in self.connections if c.ws is not None and not c.ws.closed]

    async def _execute(self, action: Action, target: Any) -> None:
        for conn in [target] if target is not None else self._open():
            ws = conn.ws
            assert ws is not None
            if isinstance(action, SendText):
                await ws.send_str(action.text)
            elif isinstance(action, SendMedia):
                await ws.send_str(_media_message(conn, action.codes))
            elif isinstance(action, SendBinary):
                await ws.send_bytes(action.data)
            elif isinstance(action, Close):
                await ws.close(code=action.code, message=action.reason.encode())
            elif isinstance(action, Abort):
                conn.transport.abort()
            else:
                raise TypeError(f"{action!r} is not a WebSocket action")

    async def _close_clients(self) -> None:
        closing = [c.ws.close(code=1001, message=b"server stopping") for c in self._open() if c.ws]
        await asyncio.gather(*closing, return_exceptions=True)
        await self._drain_transports()


def media_actions(chunk: AudioChunk, frame_ms: int | None = None) -> list[Action]:
    """`SendMedia` actions for an 8 kHz mono chunk (mu-law), optionally split."""
    if chunk.sample_rate_hz != 8000 or chunk.channels != 1:
        raise ValueError("server media must be 8000 Hz mono")
    step = chunk.frames if frame_ms is None else max(1, frame_ms * 8)
    codes = ulaw_encode(chunk.mono_samples()).tobytes()
    return [SendMedia(codes[i : i + step]) for i in range(0, max(len(codes), 1), step)]


def _media_message(conn: CallConnection, codes: bytes) -> str:
    """Server media (docs/protocols.md#call-media), numbered per connection like Twilio."""
    conn.chunks_sent += 1
    media = {
        "chunk": conn.chunks_sent,
        "timestamp": conn.frames_sent * 1000 // 8000,
        "payload": base64.b64encode(codes).decode("ascii"),
    }
    conn.frames_sent += len(codes)
    message: dict[str, Any] = {"event": "media", "media": media}
    if conn.stream_sid is not None:
        message["streamSid"] = conn.stream_sid
    return json.dumps(message)
