"""Agent-call driver: owns the WebSocket (websocket-client) and its reader thread.

The URL `{BASE}/{key}/{agent}` carries the API key (docs/protocols.md#call-endpoint), so
it is never printed or logged: the endpoint is shown as host + agent, and every message
that could echo the URL goes through `redact()`.

Rejections (docs/protocols.md#call-rejections): a refused upgrade (HTTP 401/403/404), or
a close right after opening before the server said anything, means the key or the agent
was rejected; `call_codec.error_for` names the error. Threads: the reader thread decodes
frames and enqueues events; sends come from the uplink, observer (mark answers) and
hang-up threads, serialised by the base driver's lock so the codec's numbering matches
the order on the wire.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import websocket

from aivoco.errors import ConnectionFailedError
from aivoco.protocols._codec import Outgoing
from aivoco.protocols._driver import DriverBase
from aivoco.protocols.call_codec import CallCodec, CallIncoming, error_for
from aivoco.redact import redact
from aivoco.wire import events as ev

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


class CallDriver(DriverBase[CallIncoming]):
    def __init__(self, base_url: str, key: str, agent: str, codec: CallCodec | None = None) -> None:
        codec = codec or CallCodec()
        super().__init__(codec, f"{urlsplit(base_url).netloc} agent {agent}", log)
        self.stream_sid = codec.ids.stream_sid
        self._url = call_url(base_url, key, agent)
        self._path = f"{urlsplit(base_url).path.rstrip('/')}/***/{quote(agent, safe='')}"
        self.agent = agent
        self.net.transport = "websocket"
        self._ws: Any = None
        self._reader = threading.Thread(target=self._read_loop, name="aivoco-call-reader")
        self._reader.daemon = True
        self._opened_at = 0.0
        self._heard_server = False

    # -- connection ----------------------------------------------------------------
    def _connect(self, timeout_s: float) -> None:
        ws: Any = websocket.WebSocket(enable_multithread=True)
        try:
            ws.connect(self._url, timeout=timeout_s)
        except websocket.WebSocketBadStatusException as exc:
            raise error_for(self.endpoint, http_status=exc.status_code, path=self._path) from None
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

    def _after_opening(self) -> None:
        log.info("stream %s started", self.stream_sid)
        # Ready first: it must precede anything the reader thread queues.
        self._put(ev.Ready(message=f"connected to agent {self.agent}"))
        self._reader.start()

    # -- receiving -----------------------------------------------------------------
    def _read_loop(self) -> None:
        ws = self._ws
        try:
            while True:
                opcode, frame = ws.recv_data_frame(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self._on_closed(_close_info(frame))
                    return
                self._heard_server = True
                data = frame.data
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    self._received(data.decode("utf-8", "replace"), len(data))
                else:
                    self._received(bytes(data), len(data))
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            self._on_closed(redact(str(exc) or type(exc).__name__))

    def _on_closed(self, detail: str) -> None:
        log.info("connection closed: %s", detail)
        if self._closed:
            return
        early = time.monotonic() - self._opened_at < REJECT_GRACE_S and not self._heard_server
        error = error_for(self.endpoint, closed=detail, early=early)
        self._put(ev.Disconnected(detail, error))

    # -- sending -------------------------------------------------------------------
    def _transmit(self, out: Outgoing) -> int | None:
        ws = self._ws
        if ws is None:
            return None
        text: str = out.data
        try:
            ws.send(text)
        except (websocket.WebSocketException, OSError) as exc:
            # The reader thread reports the drop; a failed send only needs logging.
            log.info("send failed: %s", redact(str(exc) or type(exc).__name__))
            return None
        return len(text)

    def _after_goodbye(self) -> None:
        """Start the WebSocket close handshake; the server's close frame ends the reader."""
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(websocket.WebSocketException, OSError):
            ws.send_close(websocket.STATUS_NORMAL, b"call ended")

    def _disconnect(self) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.shutdown()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
