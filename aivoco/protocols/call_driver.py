"""Agent-call driver: owns the WebSocket (websocket-client) and its reader thread.

Protocol notes section 2. The URL `{BASE}/{key}/{agent}` carries the API key, so it is
never printed or logged: the endpoint is shown as host + agent, and every message that
could echo the URL goes through `redact()`.

Rejections: a refused upgrade (HTTP 401/403/404) or a close right after opening, before
the server said anything, means the key or the agent was rejected (auth exit code).
Threads: the reader thread parses frames and enqueues events; sends come from the
uplink, observer (mark answers) and hang-up threads, serialised by one lock so the
numbering in `CallEncoder` matches the order on the wire.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import websocket

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError, AuthError, ConnectionFailedError, ProtocolError
from aivoco.protocols import call_codec as codec
from aivoco.redact import redact
from aivoco.session import events as ev

log = logging.getLogger("aivoco.call")

DEFAULT_URL = "wss://call.aivoco.on.cloud.vispark.in/ws"
# A close within this long after opening, before any server message, is a rejection.
REJECT_GRACE_S = 1.5


def call_url(base: str, key: str, agent: str) -> str:
    return f"{base.rstrip('/')}/{quote(key, safe='')}/{quote(agent, safe='')}"


def _close_info(frame: Any) -> str:
    data = getattr(frame, "data", b"") or b""
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        reason = data[2:].decode("utf-8", "replace")
        return f"close code {code}" + (f": {reason}" if reason else "")
    return "no close code"


class CallDriver:
    protocol = "call"
    uplink_rate_hz = codec.RATE_HZ
    downlink_rate_hz = codec.RATE_HZ
    has_credits = False

    def __init__(self, base_url: str, key: str, agent: str) -> None:
        self._url = call_url(base_url, key, agent)
        self.agent = agent
        self.endpoint = f"{urlsplit(base_url).netloc} agent {agent}"
        self.net = ev.NetStats(transport="websocket")
        self.encoder = codec.CallEncoder()
        self._ws: Any = None
        self._events: ev.EventQueue | None = None
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, name="aivoco-call-reader")
        self._reader.daemon = True
        self._opened_at = 0.0
        self._heard_server = False
        self._stopping = False
        self._ended = False
        self._closed = False

    # -- connection ----------------------------------------------------------------
    def connect(self, events: ev.EventQueue, timeout_s: float) -> None:
        self._events = events
        ws: Any = websocket.WebSocket(enable_multithread=True)
        try:
            ws.connect(self._url, timeout=timeout_s)
        except websocket.WebSocketBadStatusException as exc:
            raise self._refused(exc.status_code) from None
        except (websocket.WebSocketTimeoutException, TimeoutError):
            raise ConnectionFailedError(
                f"no answer from {self.endpoint} within {timeout_s:g} s"
            ) from None
        except (websocket.WebSocketException, OSError) as exc:
            detail = redact(str(exc) or type(exc).__name__)
            raise ConnectionFailedError(f"cannot connect to {self.endpoint}: {detail}") from None
        # Blocking reads from here on; the reader is stopped by closing the socket.
        ws.settimeout(None)
        self._ws = ws
        self._opened_at = time.monotonic()
        self._send(self.encoder.handshake())
        self._send(self.encoder.start())
        log.info("stream %s started", self.encoder.ids.stream_sid)
        # Ready first: it must precede anything the reader thread queues.
        events.put(ev.Ready(message=f"connected to agent {self.agent}"))
        self._reader.start()

    def _refused(self, status: int) -> AivocoError:
        if status in (401, 403):
            return AuthError(f"{self.endpoint}: the service refused the API key (HTTP {status})")
        if status == 404:
            return AuthError(
                f"{self.endpoint}: unknown agent or API key (HTTP 404); check --agent and the key"
            )
        return ConnectionFailedError(f"{self.endpoint} refused the call (HTTP {status})")

    # -- receiving -----------------------------------------------------------------
    def _put(self, event: ev.Event) -> None:
        if self._events is not None:
            self._events.put(event)

    def _read_loop(self) -> None:
        ws = self._ws
        try:
            while True:
                opcode, frame = ws.recv_data_frame(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self._on_closed(_close_info(frame))
                    return
                self._on_frame(frame.data)
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            self._on_closed(redact(str(exc) or type(exc).__name__))

    def _on_frame(self, raw: bytes) -> None:
        self._heard_server = True
        self.net.messages_received += 1
        self.net.bytes_received += len(raw)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("recv %s", codec.describe_incoming(raw))
        try:
            e = codec.parse_server_message(raw)
        except ProtocolError as exc:
            log.warning("protocol error: %s", exc)
            self._put(ev.ProtocolIssue(str(exc)))
            return
        if isinstance(e, codec.ServerMedia):
            self.net.audio_ms_received += e.chunk.duration_ms
            self._put(ev.AgentAudio(e.chunk))
        elif isinstance(e, codec.Mark):
            self._put(ev.PlaybackMark(e.name))
        elif isinstance(e, codec.Clear):
            self._put(ev.PlaybackClear())
        elif isinstance(e, codec.Stop):
            self._ended = True
            self._put(ev.Ended("agent-hangup", "the agent ended the call"))
        elif isinstance(e, codec.Connected):
            self._put(ev.Notice(f"server connected (protocol {e.protocol}, {e.version})"))
        else:
            log.info("ignored unknown event %r", e.name)
            self._put(ev.Notice(f"ignored unknown event {e.name!r}"))

    def _on_closed(self, detail: str) -> None:
        log.info("connection closed: %s", detail)
        if self._stopping or self._closed or self._ended:
            return
        self._ended = True
        quick = time.monotonic() - self._opened_at < REJECT_GRACE_S
        if quick and not self._heard_server:
            error: AivocoError = AuthError(
                f"{self.endpoint} closed the call right after it opened ({detail}): "
                "the API key or agent was rejected"
            )
        else:
            error = ConnectionFailedError(f"the connection to {self.endpoint} was lost ({detail})")
        self._put(ev.Failed(error))

    # -- sending -------------------------------------------------------------------
    def _send(self, text: str) -> None:
        if self._ws is None or self._closed:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("send %s", codec.describe_outgoing(text) if text else "'' (handshake)")
        try:
            self._ws.send(text)
        except (websocket.WebSocketException, OSError) as exc:
            # The reader thread reports the drop; a failed send only needs logging.
            log.info("send failed: %s", redact(str(exc) or type(exc).__name__))
            return
        self.net.messages_sent += 1
        self.net.bytes_sent += len(text)

    def send_audio(self, chunk: AudioChunk) -> None:
        with self._send_lock:
            if self.encoder.stopped or self._ended:
                return
            self.net.audio_ms_sent += chunk.duration_ms
            self._send(self.encoder.media(chunk))

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        """The agent-call protocol has no function calls (notes section 2)."""

    def answer_mark(self, name: str) -> None:
        with self._send_lock:
            if not self.encoder.stopped and not self._ended:
                self._send(self.encoder.mark(name))

    def hang_up(self, timeout_s: float) -> None:
        """Send `stop`, then close the WebSocket with a normal close handshake."""
        self._stopping = True
        with self._send_lock:
            if self._ws is not None and not self.encoder.stopped and not self._ended:
                self._send(self.encoder.stop())
        ws = self._ws
        if ws is None:
            return
        try:
            ws.send_close(websocket.STATUS_NORMAL, b"call ended")
        except (websocket.WebSocketException, OSError):
            return
        # The reader returns when the server's close frame arrives.
        self._reader.join(timeout=timeout_s)

    def close(self) -> None:
        if self._closed:
            return
        self._stopping = True
        self._closed = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.shutdown()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
