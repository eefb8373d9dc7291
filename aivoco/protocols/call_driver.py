"""Agent-call driver: owns the WebSocket (websocket-client) and its reader thread.

The URL `{BASE}/{key}/{agent}` carries the API key (docs/protocols.md#call-endpoint), so
it is never printed or logged: the endpoint is shown as host + agent, and every message
that could echo the URL goes through `redact()`.

Rejections (docs/protocols.md#call-rejections): a refused upgrade (HTTP 401/403/404), or
a close right after opening before the server said anything, means the key or the agent
was rejected; `call_codec.error_for` names the error. Threads: the reader thread decodes
frames and enqueues events; sends come from the uplink, observer (mark answers) and
hang-up threads, serialised by the base driver's lock so the codec's numbering matches
the order on the wire, and are written by the process's one writer thread
(`_outbox.py`), which never lets a peer that stops reading block a caller: past a
second of unread audio, new audio is dropped and counted (`uplink_dropped`).

Robustness (docs/protocols.md#leniency): the reader ends *only* by reporting
`Disconnected`, whatever stopped it (a close frame, a socket error, a library bug). A
message larger than `MAX_MESSAGE_BYTES` (4 MiB, aiohttp's default) is refused before
its payload is read, so a peer cannot grow our memory. A peer that goes silent (TCP
open, nothing arrives) is found by a watchdog: after `ping_interval_s` (5 s) without a
frame it sends a WebSocket ping, and after `ping_interval_s + ping_timeout_s` (15 s)
without any frame, pong included, it drops the connection as lost. The watchdog never
blocks: pings go out on a short-lived thread. Closing completes the WebSocket close
handshake (our close frame, then up to `CLOSE_WAIT_S` for the peer's), whoever ended
the call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import websocket

from aivoco.errors import AivocoError, ProtocolError
from aivoco.protocols._codec import Outgoing
from aivoco.protocols._driver import DriverBase
from aivoco.protocols._outbox import MAX_PENDING, shared_writer
from aivoco.protocols._tls import connect_failure, tls_context
from aivoco.protocols.call_codec import CallCodec, CallIncoming, error_for
from aivoco.redact import redact
from aivoco.wire import events as ev

log = logging.getLogger("aivoco.call")

DEFAULT_URL = "wss://call.aivoco.on.cloud.vispark.in/ws"
# A close within this long after opening, before any server message, is a rejection.
REJECT_GRACE_S = 1.5
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
PING_INTERVAL_S = 5.0
PING_TIMEOUT_S = 10.0
CLOSE_WAIT_S = 1.0
# Frames waiting for a peer that does not read, past which new audio is dropped: 1 s of
# 20 ms frames (the sts driver's limit is its library queue's, UPLINK_BACKLOG_LIMIT there).
UPLINK_BACKLOG_LIMIT = 50
_ABNF = websocket.ABNF
_DATA = (_ABNF.OPCODE_TEXT, _ABNF.OPCODE_BINARY, _ABNF.OPCODE_CONT)


def call_url(base: str, key: str, agent: str) -> str:
    return f"{base.rstrip('/')}/{quote(key, safe='')}/{quote(agent, safe='')}"


def _close_info(frame: Any) -> str:
    data = getattr(frame, "data", b"") or b""
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        reason = data[2:].decode("utf-8", "replace")
        return f"close code {code}" + (f": {reason}" if reason else "")
    return "no close code"


class _TooBigError(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"a message of {size} bytes (the limit is {MAX_MESSAGE_BYTES})")


class CallDriver(DriverBase[CallIncoming]):
    def __init__(
        self,
        base_url: str,
        key: str,
        agent: str,
        codec: CallCodec | None = None,
        *,
        ca_file: Path | None = None,
        ping_interval_s: float = PING_INTERVAL_S,
        ping_timeout_s: float = PING_TIMEOUT_S,
    ) -> None:
        codec = codec or CallCodec()
        super().__init__(codec, f"{urlsplit(base_url).netloc} agent {agent}", log)
        self.stream_sid = codec.ids.stream_sid
        self._url = call_url(base_url, key, agent)
        self._path = f"{urlsplit(base_url).path.rstrip('/')}/***/{quote(agent, safe='')}"
        self.agent = agent
        self.net.transport = "websocket"
        self._tls = tls_context(ca_file)
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self._ws: Any = None
        self._reader = threading.Thread(target=self._read_loop, name="aivoco-call-reader")
        self._reader.daemon = True
        self._watchdog = threading.Thread(target=self._watch, name="aivoco-call-watchdog")
        self._watchdog.daemon = True
        self._stop = threading.Event()
        self._opened_at = 0.0
        self._last_heard = 0.0
        self._heard_server = False
        self._close_sent = False
        self._silent_s: float | None = None  # set when the watchdog gave up on the peer
        # Every frame we send goes through the process's one writer thread, in order
        # (aivoco/protocols/_outbox.py): the caller never blocks on the peer.
        self._outbox = shared_writer().outbox(lambda: getattr(self._ws, "sock", None))
        self._pinger: threading.Thread | None = None

    # -- connection ----------------------------------------------------------------
    def _connect(self, timeout_s: float) -> None:
        # sslopt belongs to the constructor (connect() ignores it); None keeps the
        # library's verifying default.
        sslopt = {"context": self._tls} if self._tls is not None else None
        ws: Any = websocket.WebSocket(enable_multithread=True, sslopt=sslopt)
        try:
            ws.connect(self._url, timeout=timeout_s)
        except websocket.WebSocketBadStatusException as exc:
            raise error_for(self.endpoint, http_status=exc.status_code, path=self._path) from None
        except (websocket.WebSocketTimeoutException, TimeoutError):
            raise connect_failure(self.endpoint, f"no answer within {timeout_s:g} s") from None
        except (websocket.WebSocketException, OSError) as exc:
            raise connect_failure(self.endpoint, str(exc) or type(exc).__name__) from None
        # Blocking reads from here on; the reader is stopped by shutting the socket down.
        ws.settimeout(None)
        self._ws = ws
        self._opened_at = self._last_heard = time.monotonic()

    def _after_opening(self) -> None:
        log.info("stream %s started", self.stream_sid)
        # Ready first: it must precede anything the reader thread queues.
        self._put(ev.Ready(message=f"connected to agent {self.agent}"))
        self._reader.start()
        self._watchdog.start()

    # -- receiving -----------------------------------------------------------------
    def _read_loop(self) -> None:
        """Every way this thread can end reports `Disconnected` (unless we closed)."""
        detail = "the connection ended"
        error: AivocoError | None = None
        try:
            detail = self._read_frames(self._ws)
        except _TooBigError as exc:
            detail = f"the server sent {exc}"
            error = ProtocolError(f"{self.endpoint} sent {exc}; the connection was closed")
            self._send_close(websocket.STATUS_MESSAGE_TOO_BIG)
            self._discard_until_closed()
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            detail = redact(str(exc) or type(exc).__name__)
        except Exception as exc:  # a library bug must not leave the call waiting forever
            log.exception("the WebSocket reader failed")
            detail = f"the reader failed ({type(exc).__name__})"
        finally:
            self._on_closed(detail, error)

    def _read_frames(self, ws: Any) -> str:
        """Frames until the peer's close frame (returns its code); pings answered."""
        assembled = 0
        while True:
            frame = self._next_frame(ws)
            self._last_heard = time.monotonic()
            opcode = frame.opcode
            if opcode == _ABNF.OPCODE_CLOSE:
                self._send_close()  # the reply that completes the handshake
                return _close_info(frame)
            if opcode == _ABNF.OPCODE_PING:
                ws.pong(frame.data)
            elif opcode in _DATA:
                assembled += len(frame.data)
                if assembled > MAX_MESSAGE_BYTES:
                    raise _TooBigError(assembled)
                ws.cont_frame.validate(frame)
                ws.cont_frame.add(frame)
                if ws.cont_frame.is_fire(frame):
                    assembled = 0
                    self._message(*ws.cont_frame.extract(frame))

    def _discard_until_closed(self) -> None:
        """After refusing a message: drop what still arrives (unread data would make our
        close a TCP reset, and the peer would never read our close frame), until the
        peer closes or CLOSE_WAIT_S passed."""
        sock = getattr(self._ws, "sock", None)
        if sock is None:
            return
        deadline = time.monotonic() + CLOSE_WAIT_S
        with contextlib.suppress(OSError):
            sock.settimeout(0.05)
            while time.monotonic() < deadline:
                try:
                    if not sock.recv(65536):
                        return
                except TimeoutError:
                    continue

    @staticmethod
    def _next_frame(ws: Any) -> Any:
        """The next frame, its length checked before its payload is read."""
        buffer = ws.frame_buffer
        if buffer.needs_header():
            buffer.recv_header()
        if buffer.needs_length():
            buffer.recv_length()
        if buffer.length > MAX_MESSAGE_BYTES:
            raise _TooBigError(buffer.length)
        return ws.recv_frame()

    def _message(self, opcode: int, frame: Any) -> None:
        self._heard_server = True
        data = frame.data
        if opcode == _ABNF.OPCODE_TEXT:
            self._received(data.decode("utf-8", "replace"), len(data))
        else:
            self._received(bytes(data), len(data))

    def _on_closed(self, detail: str, error: AivocoError | None = None) -> None:
        self._stop.set()
        if self._silent_s is not None:
            detail = f"nothing arrived for {self._silent_s:.1f} s, not even a pong"
        log.info("connection closed: %s", detail)
        if self._closed:
            return
        early = time.monotonic() - self._opened_at < REJECT_GRACE_S and not self._heard_server
        if not isinstance(error, ProtocolError):
            error = error_for(self.endpoint, closed=detail, early=early)
        self._put(ev.Disconnected(detail, error))

    # -- the watchdog: pings a quiet peer, drops a silent one ------------------------
    def _watch(self) -> None:
        tick_s = max(0.01, min(self.ping_interval_s, self.ping_timeout_s) / 4)
        while not self._stop.wait(tick_s):
            quiet_s = time.monotonic() - self._last_heard
            if quiet_s >= self.ping_interval_s + self.ping_timeout_s:
                self._silent_s = quiet_s
                log.warning("no frame from %s for %.1f s: dropping it", self.endpoint, quiet_s)
                self._shut()
                return
            pinger = self._pinger
            if quiet_s >= self.ping_interval_s and (pinger is None or not pinger.is_alive()):
                self._pinger = threading.Thread(
                    target=self._ping, name="aivoco-call-ping", daemon=True
                )
                self._pinger.start()

    def _ping(self) -> None:
        with contextlib.suppress(websocket.WebSocketException, OSError):
            self._ws.ping(b"aivoco")
        self._stop.wait(self.ping_interval_s)  # one ping per interval at most

    # -- sending -------------------------------------------------------------------
    def _backlogged(self) -> bool:
        """The peer has not read a second of our audio: new audio is dropped (counted)."""
        return self._outbox.pending > UPLINK_BACKLOG_LIMIT

    def _transmit(self, out: Outgoing) -> int | None:
        ws = self._ws
        if ws is None:
            return None
        text: str = out.data
        if not self._outbox.put(lambda: ws.send(text)):
            log.info("send refused: %d messages wait for a peer that does not read", MAX_PENDING)
            return None
        return len(text)

    def _send_close(self, status: int = websocket.STATUS_NORMAL) -> None:
        """Our close frame, once (the handshake needs exactly one from each side), after
        everything queued before it."""
        ws = self._ws
        if ws is None or self._close_sent:
            return
        self._close_sent = True
        reason = b"call ended" if status == websocket.STATUS_NORMAL else b""
        self._outbox.put(lambda: ws.send_close(status, reason))

    def _after_goodbye(self) -> None:
        """Start the close handshake; the server's close frame ends the reader."""
        self._send_close()

    def _shut(self) -> None:
        """Shut the socket down: wakes the reader and any blocked send at once."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.abort()
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.shutdown()

    def _disconnect(self) -> None:
        self._stop.set()
        me = threading.current_thread()
        reader_running = self._reader.is_alive() and self._reader is not me
        if reader_running and self._silent_s is None:
            # Whoever ended the call, close properly: what is queued and our close
            # frame, then a moment for the peer's (the reader returns on it).
            deadline = time.monotonic() + CLOSE_WAIT_S
            self._send_close()
            self._outbox.flush(CLOSE_WAIT_S)
            self._reader.join(timeout=max(0.0, deadline - time.monotonic()))
        self._shut()
        self._outbox.discard()
        for thread in (self._reader, self._watchdog):
            if thread.is_alive() and thread is not me:
                thread.join(timeout=2)
