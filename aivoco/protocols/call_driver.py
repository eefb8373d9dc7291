"""Agent-call driver: owns the WebSocket (websocket-client), served on the shared loop.

The URL `{BASE}/{key}/{agent}` carries the API key (docs/protocols.md#call-endpoint), so
it is never printed or logged: the endpoint is shown as host + agent, and every message
that could echo the URL goes through `redact()`.

Rejections (docs/protocols.md#call-rejections): a refused upgrade (HTTP 401/403/404), or
a close right after opening before the server said anything, means the key or the agent
was rejected; `call_codec.error_for` names the error.

Threads: none of its own. The connection is opened (the handshake) on the caller's
thread; then the socket is non-blocking and served on the process's shared event loop,
the shared clock's thread (`_loop.py`), which also makes every call's uplink frames:
`_reader.py` watches the socket and calls this driver's `on_readable` (it parses the
bytes read into frames, `_ws_frames.py`, and queues events) and `on_timer` (the
watchdog); `_outbox.py` writes the frames queued by any thread. Sends come from the
uplink, observer (mark answers) and hang-up, serialised by the base driver's lock so the
codec's numbering matches the order on the wire; a peer that stops reading never blocks
a caller: past a second of unread audio, new audio is dropped and counted
(`uplink_dropped`). Why no thread per call, nor a reader or writer thread:
docs/performance.md#reader.

Robustness (docs/protocols.md#leniency): the connection ends *only* by reporting
`Disconnected`, once, whatever ended it (a close frame, the end of the stream, a socket
error, a bug of ours while handling it), and one connection's end never stops the
reader for the others. A message larger than `MAX_MESSAGE_BYTES` (4 MiB, aiohttp's
default) is refused as soon as its header is in, before its payload is buffered, so a
peer cannot grow our memory; we close with 1009 and drop what still arrives until the
peer closes (up to `CLOSE_WAIT_S`). A peer that goes silent (TCP open, nothing arrives)
is found by the watchdog on the reader's timer: after `ping_interval_s` (5 s) without a
frame it queues a WebSocket ping, and after `ping_interval_s + ping_timeout_s` (15 s)
without any frame, pong included, it drops the connection as lost. Closing completes
the WebSocket close handshake (our close frame, then up to `CLOSE_WAIT_S` for the
peer's), whoever ended the call.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import websocket

from aivoco.errors import AivocoError, ProtocolError
from aivoco.protocols._codec import Outgoing
from aivoco.protocols._driver import DriverBase
from aivoco.protocols._loop import shared_loop
from aivoco.protocols._outbox import MAX_PENDING, Outbox
from aivoco.protocols._reader import Registration, shared_reader
from aivoco.protocols._tls import connect_failure, tls_context
from aivoco.protocols._ws_frames import FrameParser, TooBigError, frame, receive
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
# Reads per connection per turn on the shared loop (64 KiB each), and the time one turn
# may spend handling what was read: every call's reads and its uplink share the loop,
# so a peer flooding small messages (a 64 KiB read holds about 900) is handled a slice
# at a time, with the clock's wake-up and the other calls' turns in between; a 20 ms
# media message takes about 0.1 ms (docs/performance.md#reader).
READS_PER_TURN = 4
TURN_BUDGET_S = 0.002
_ABNF = websocket.ABNF


def call_url(base: str, key: str, agent: str) -> str:
    return f"{base.rstrip('/')}/{quote(key, safe='')}/{quote(agent, safe='')}"


def _close_info(data: bytes) -> str:
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        reason = data[2:].decode("utf-8", "replace")
        return f"close code {code}" + (f": {reason}" if reason else "")
    return "no close code"


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
        # Reading and writing happen on the shared loop (`_reader.py`, `_outbox.py`);
        # `_io` keeps them apart from a teardown on another thread (an SSL object is
        # not for two threads at once).
        self._io = threading.Lock()
        self._holds_loop = False
        self._parser = FrameParser(MAX_MESSAGE_BYTES)
        self._unparsed = False  # the last turn ran out of time with bytes left to parse
        self._reg: Registration | None = None
        self._done = threading.Event()  # the connection ended (reported, or closed by us)
        self._refused: tuple[str, ProtocolError] | None = None  # a message too big
        self._discard_until = 0.0
        self._opened_at = 0.0
        self._last_heard = 0.0
        self._pinged_at = 0.0
        self._heard_server = False
        self._close_sent = False
        self._silent_s: float | None = None  # set when the watchdog gave up on the peer
        # Every frame we send is queued and written on the shared loop, in order
        # (aivoco/protocols/_outbox.py): the caller never blocks on the peer.
        self._outbox = Outbox(lambda: getattr(self._ws, "sock", None), self._io)

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
        # From here on the shared loop reads and writes it, never blocking.
        ws.sock.setblocking(False)
        shared_loop().acquire()  # held until `_disconnect`: the opening goes out on it
        self._holds_loop = True
        self._ws = ws
        self._opened_at = self._last_heard = self._pinged_at = time.monotonic()

    def _after_opening(self) -> None:
        log.info("stream %s started", self.stream_sid)
        # Ready first: it must precede anything the loop queues.
        self._put(ev.Ready(message=f"connected to agent {self.agent}"))
        self._reg = shared_reader().add(self)

    # -- receiving, on the shared loop (`_reader.Served`) -------------------------------
    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def fileno(self) -> int:
        sock = getattr(self._ws, "sock", None)
        return -1 if sock is None else int(sock.fileno())

    def on_readable(self, now: float) -> bool:
        """Read what arrived (a few reads at most) and handle its frames, for at most
        TURN_BUDGET_S; True if the turn ended with more perhaps waiting (bytes read and
        not parsed yet, or unread). Errors go to `on_failure`."""
        deadline = time.perf_counter() + TURN_BUDGET_S
        for _ in range(READS_PER_TURN):
            if not self._unparsed:  # what was read is handled: read more
                data = receive(self._ws.sock, self._io)
                if data is None:
                    return False
                if self._refused is not None:
                    continue  # discarding until the peer closes (see `_refuse`)
                self._parser.feed(data)
            try:
                self._unparsed = self._handle_messages(now, deadline)
            except TooBigError as exc:
                self._unparsed = False  # nothing more is parsed: the rest is discarded
                self._refuse(exc, now)
            if self.ended or self._unparsed:
                return not self.ended
        return True

    def _handle_messages(self, now: float, deadline: float) -> bool:
        """Messages until the buffer runs dry (False) or the peer's close frame, or until
        `deadline` passed with bytes left (True); pings answered."""
        while time.perf_counter() <= deadline:
            message = self._parser.next_message()
            if message is None:
                return False
            self._last_heard = now
            opcode, data = message
            if opcode == _ABNF.OPCODE_CLOSE:
                self._send_close()  # the reply that completes the handshake
                self._end(_close_info(data))
                return False
            if opcode == _ABNF.OPCODE_PING:
                self._write(data, _ABNF.OPCODE_PONG)
            elif opcode in (_ABNF.OPCODE_TEXT, _ABNF.OPCODE_BINARY):
                self._message(opcode, data)
        return True

    def _refuse(self, exc: TooBigError, now: float) -> None:
        """A message over the limit: close with 1009, then drop what still arrives
        (unread data would make our close a TCP reset, and the peer would never read our
        close frame) until the peer closes or CLOSE_WAIT_S passed."""
        error = ProtocolError(f"{self.endpoint} sent {exc}; the connection was closed")
        self._refused = (f"the server sent {exc}", error)
        self._send_close(websocket.STATUS_MESSAGE_TOO_BIG)
        self._discard_until = now + CLOSE_WAIT_S
        if self._reg is not None:
            shared_reader().schedule(self._reg, self._discard_until)

    def on_failure(self, exc: Exception) -> None:
        """Every way reading can end but a close frame (the end of the stream, a socket
        error, a library bug) reports `Disconnected`, once."""
        error: AivocoError | None = None
        if self._refused is not None:
            detail, error = self._refused
        elif isinstance(exc, (websocket.WebSocketException, OSError, ValueError)):
            detail = redact(str(exc) or type(exc).__name__)
        else:  # a bug of ours must not leave the call waiting forever
            log.error("the WebSocket reader failed", exc_info=exc)
            detail = f"the reader failed ({type(exc).__name__})"
        self._end(detail, error)

    def _message(self, opcode: int, data: bytes) -> None:
        self._heard_server = True
        if opcode == _ABNF.OPCODE_TEXT:
            self._received(data.decode("utf-8", "replace"), len(data))
        else:
            self._received(bytes(data), len(data))

    def _end(self, detail: str, error: AivocoError | None = None) -> None:
        if not self._done.is_set():
            self._done.set()
            self._on_closed(detail, error)

    def _on_closed(self, detail: str, error: AivocoError | None = None) -> None:
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
    def on_timer(self, now: float) -> float | None:
        tick_s = max(0.01, min(self.ping_interval_s, self.ping_timeout_s) / 4)
        if self._refused is not None:
            if now >= self._discard_until:
                self._end(*self._refused)
                return None
            tick_s = min(tick_s, self._discard_until - now)
        quiet_s = now - self._last_heard
        if quiet_s >= self.ping_interval_s + self.ping_timeout_s:
            self._silent_s = quiet_s
            log.warning("no frame from %s for %.1f s: dropping it", self.endpoint, quiet_s)
            with self._io, contextlib.suppress(websocket.WebSocketException, OSError):
                self._ws.abort()  # shut down at once; closed by `close()`
            self._end("silent")
            return None
        if quiet_s >= self.ping_interval_s and now - self._pinged_at >= self.ping_interval_s:
            self._pinged_at = now  # one ping per interval at most
            self._write(b"aivoco", _ABNF.OPCODE_PING)
        return now + tick_s

    # -- sending -------------------------------------------------------------------
    def _backlogged(self) -> bool:
        """The peer has not read a second of our audio: new audio is dropped (counted)."""
        return self._outbox.pending > UPLINK_BACKLOG_LIMIT

    def _write(self, payload: bytes | str, opcode: int) -> bool:
        """Queue one frame, built (masked) on the caller's thread, for the loop to
        write (False if the queue is full)."""
        if self._ws is None:
            return False
        return self._outbox.put(frame(payload, opcode).format())

    def _transmit(self, out: Outgoing) -> int | None:
        text: str = out.data
        if self._ws is None:
            return None
        if not self._write(text, _ABNF.OPCODE_TEXT):
            log.info("send refused: %d messages wait for a peer that does not read", MAX_PENDING)
            return None
        return len(text)

    def _send_close(self, status: int = websocket.STATUS_NORMAL) -> None:
        """Our close frame, once (the handshake needs exactly one from each side), after
        everything queued before it."""
        if self._ws is None or self._close_sent:
            return
        self._close_sent = True
        reason = b"call ended" if status == websocket.STATUS_NORMAL else b""
        self._write(struct.pack("!H", status) + reason, _ABNF.OPCODE_CLOSE)

    def _after_goodbye(self) -> None:
        """Start the close handshake; the server's close frame ends the connection."""
        self._send_close()

    def _shut(self) -> None:
        """Shut the socket down and close it (the reader let it go first)."""
        ws = self._ws
        if ws is not None:
            with self._io, contextlib.suppress(websocket.WebSocketException, OSError):
                ws.abort()
            with self._io, contextlib.suppress(websocket.WebSocketException, OSError):
                ws.shutdown()

    def _disconnect(self) -> None:
        reg = self._reg
        if reg is not None and not self._done.is_set() and self._silent_s is None:
            # Whoever ended the call, close properly: what is queued and our close
            # frame, then a moment for the peer's (the reader ends the connection on it).
            deadline = time.monotonic() + CLOSE_WAIT_S
            self._send_close()
            self._outbox.flush(CLOSE_WAIT_S)
            self._done.wait(timeout=max(0.0, deadline - time.monotonic()))
        self._outbox.discard()  # the loop writes to it no more
        if reg is not None and not shared_reader().remove(reg):
            log.info("the loop did not let the connection go within 2 s")
        self._done.set()
        self._shut()
        if self._holds_loop:
            self._holds_loop = False
            shared_loop().release()
