"""Speech-to-Speech driver: owns the Socket.IO connection, on the shared event loop.

Ordering (docs/protocols.md#pitfall-engineio-order): python-engineio's *sync* client
dispatches every message on a new thread, so consecutive `audio_response` events could
be handled out of order, and the protocol has no sequence number to repair that. We run
python-socketio's `AsyncClient` on an event loop thread instead, one shared by every sts
connection in the process (`_loop.py`). It handles
messages in arrival order, and our handler is synchronous (no await before it decodes
and enqueues), so events are queued in FIFO order. tests/test_sts_driver.py checks this
with a burst of numbered chunks.

Every event reaches one class-based namespace handler with its name (a `*` catch-all
would receive an event literally named `*` without its name, and a second argument
would break a one-argument handler). A packet python-socketio cannot decode (bad JSON,
nesting past `_bounds.MAX_DEPTH`, an event that is not a list, a stray attachment)
raised inside a library task, was logged as "Task exception was never retrieved" and
lost; `_Client` turns it into a counted `ProtocolIssue` like any malformed event.

A peer that goes silent (TCP open, nothing arrives) is detected by engine.io's ping
timeout: the server pings every pingInterval and the client gives up when neither a ping
nor anything else arrived for pingInterval + pingTimeout (45 s with Socket.IO's
defaults). Both are the server's to announce, so each is capped at `MAX_PING_S`: a
silent peer is a drop within 2 x MAX_PING_S (docs/protocols.md#leniency). That check can
be lost inside python-engineio while we send; `sts_liveness.py` is the backstop.

TLS: certificates are verified (python-engineio's default); `ca_file` replaces the
system's authorities with the given ones, for servers with a private CA.

Transports: websocket first; engineio only ever tries `transports[0]`, so the polling
fallback is a second connect attempt made here, within the same connect deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import socketio
from engineio.payload import Payload
from socketio.packet import Packet

from aivoco.audio.clock import shared_clock
from aivoco.errors import ConnectionFailedError, ProtocolError
from aivoco.protocols import _bounds
from aivoco.protocols._codec import Outgoing
from aivoco.protocols._driver import DriverBase
from aivoco.protocols._loop import shared_loop
from aivoco.protocols._summary import clip, snippet
from aivoco.protocols._tls import connect_failure, tls_context
from aivoco.protocols.sts_codec import StsCodec, StsIncoming
from aivoco.protocols.sts_engine import Engine
from aivoco.protocols.sts_liveness import Liveness
from aivoco.redact import redact
from aivoco.wire import events as ev

log = logging.getLogger("aivoco.sts")

DEFAULT_URL = "wss://sts.aivoco.on.cloud.vispark.in"
# python-engineio refuses a polling response holding more than 16 packets (a DoS guard
# meant for servers) and then drops the connection; a Socket.IO server batches every
# queued event into one response, so a burst of agent audio over the polling fallback
# killed the call (docs/protocols.md#pitfall-polling-packets). The maintainers' advice
# is to raise the limit (python-engineio#142); a payload stays bounded by the server's
# 1 MB maxPayload.
Payload.max_decode_packets = max(Payload.max_decode_packets, 10_000)

# Uplink backlog limit (engine.io packets queued but not yet written): ~5 s of 20 ms
# frames. Past it, new audio frames are dropped and counted, so a stalled link does
# not build an unbounded queue and the call resumes near real time.
UPLINK_BACKLOG_LIMIT = 250
_LIBRARY_EVENTS = frozenset({"connect", "connect_error", "__disconnect_final"})
_CLOSE_STEP_S = 3.0
# The longest pingInterval and pingTimeout we accept from a server (each, in seconds).
MAX_PING_S = 60.0


def endpoint_label(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _size(value: Any) -> int:
    """Rough wire size for the counters, without serialising audio again."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and isinstance(value.get("audio_data"), str):
        return len(value["audio_data"]) + 64
    return 64


class _BoundedJson:
    """The JSON module python-socketio decodes packets with, nesting checked first."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        _bounds.check_text_depth(text, "a Socket.IO packet")
        return json.loads(text, **kwargs)


class _Packet(Packet):  # type: ignore[misc]
    json = _BoundedJson


class _Client(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's client, with every undecodable packet reported to the driver."""

    def __init__(self, driver: StsDriver, **kwargs: Any) -> None:
        super().__init__(serializer=_Packet, **kwargs)
        self._driver = driver

    def _engineio_client_class(self) -> type[Engine]:
        return Engine  # sends without a task per packet; notes when the server was last heard

    def emit_now(self, event: str, *data: Any) -> bool:
        """What `emit()` does for an event of the default namespace without an ack, done
        on the loop without a task (False if the namespace is not connected): a task per
        frame, and engine.io's coroutine under it, cost about seven loop callbacks a
        frame (docs/performance.md#floor). The packet lands on engine.io's send queue,
        in call order, as `emit()` would put it."""
        if "/" not in self.namespaces:
            return False
        pkt = self.packet_class(socketio.packet.EVENT, namespace="/", data=[event, *data])
        encoded = pkt.encode()  # a list when the data holds binary attachments
        for part in encoded if isinstance(encoded, list) else (encoded,):
            self.eio.send_now(part)
        return True

    async def _handle_eio_message(self, data: Any) -> None:
        try:
            await super()._handle_eio_message(data)
        except Exception as exc:  # the library raises a wide range here
            self._driver._undecodable(exc, data)


class _Namespace(socketio.AsyncClientNamespace):  # type: ignore[misc]
    """Receives every event of the default namespace, name included."""

    def __init__(self, driver: StsDriver) -> None:
        super().__init__("/")
        self._driver = driver

    async def trigger_event(self, event: str, *args: Any) -> None:
        # The uplinks' frames before the replies (docs/performance.md#reader).
        shared_clock().run_if_due()
        self._driver._on_socketio(event, args)


class StsDriver(DriverBase[StsIncoming]):
    def __init__(
        self,
        url: str,
        codec: StsCodec,
        *,
        transports: Sequence[str] = ("websocket", "polling"),
        ca_file: Path | None = None,
    ) -> None:
        super().__init__(codec, endpoint_label(url), log)
        self.url = url
        self.transports = tuple(transports)
        self._tls: ssl.SSLContext | None = tls_context(ca_file)
        self._shared = shared_loop()  # every sts connection in the process shares it
        self._loop: asyncio.AbstractEventLoop | None = None  # set while acquired
        self._sio: Any = None
        self._lost = False  # a drop was reported (once per connection)

    # -- connection ----------------------------------------------------------------
    def _run(self, coro: Any, timeout_s: float) -> Any:
        return self._shared.run(coro, timeout_s)

    async def _connect_once(self, transport: str, timeout_s: float) -> Any:
        options: dict[str, Any] = {}
        tls = self._tls
        if tls is not None:  # one session for polling and websocket, with our authorities
            options["http_session"] = lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls)
            )
        sio = _Client(self, reconnection=False, handle_sigint=False, logger=False, **options)
        sio.register_namespace(_Namespace(self))
        try:
            await asyncio.wait_for(
                sio.connect(self.url, transports=[transport], wait_timeout=timeout_s),
                timeout=timeout_s,
            )
        except BaseException:
            await sio.disconnect()
            raise
        # The read loop gives up after pingInterval + pingTimeout of silence; a server
        # must not be able to make that unbounded.
        sio.eio.ping_interval = min(sio.eio.ping_interval, MAX_PING_S)
        sio.eio.ping_timeout = min(sio.eio.ping_timeout, MAX_PING_S)
        Liveness(sio.eio, self._silent).start()
        return sio

    def _connect(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        self._loop = self._shared.acquire()
        failures: list[str] = []
        for transport in self.transports:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append(f"{transport}: not tried, the connect timeout was used up")
                break
            try:
                self._sio = self._run(self._connect_once(transport, remaining), remaining + 0.5)
            except Exception as exc:  # the library raises a wide range here
                reason = str(exc) or type(exc).__name__
                failures.append(f"{transport}: {reason}")
                log.info("connect over %s failed: %s", transport, redact(reason))
                continue
            self.net.transport = transport
            log.info("connected to %s over %s", self.endpoint, transport)
            return
        detail = "; ".join(failures)
        if any("Unexpected response" in f for f in failures):  # engineio: not Socket.IO
            raise ConnectionFailedError(
                redact(
                    f"{self.url} answered, but does not speak Socket.IO: is it the "
                    f"Speech-to-Speech URL? ({detail})"
                )
            )
        raise connect_failure(self.endpoint, detail)

    # -- receiving (loop thread; synchronous, see the module docstring) ----------------
    def _on_socketio(self, event: str, args: tuple[Any, ...]) -> None:
        if event in _LIBRARY_EVENTS:
            return
        if event == "disconnect":
            self._on_disconnect(args[0] if args else None)
            return
        self._received((event, args), sum(_size(a) for a in args))

    def _undecodable(self, exc: Exception, data: Any) -> None:
        """A packet the library could not decode: one malformed message, counted."""
        self.net.messages_received += 1
        self.net.bytes_received += _size(data)
        detail = str(exc) if isinstance(exc, ProtocolError) else type(exc).__name__
        message = f"undecodable Socket.IO packet ({clip(detail, 80)}): {snippet(data, 60)}"
        log.warning("%s", message)
        self._put(ev.ProtocolIssue(message))

    def _silent(self, silent_s: float) -> None:
        self._on_disconnect(f"nothing from the server for {silent_s:.1f} s")

    def _on_disconnect(self, reason: Any) -> None:
        log.info("disconnected (%s)", reason)
        if self._closed or self._lost:
            return  # the library and the liveness backstop may both see one loss
        self._lost = True
        detail = str(reason)
        error = ConnectionFailedError(f"the connection to {self.endpoint} was lost ({detail})")
        self._put(ev.Disconnected(detail, error))

    # -- sending ---------------------------------------------------------------------
    def _backlogged(self) -> bool:
        sio = self._sio
        backlog = sio.eio.queue if sio is not None else None
        return backlog is not None and backlog.qsize() > UPLINK_BACKLOG_LIMIT

    def _transmit(self, out: Outgoing) -> int | None:
        sio = self._sio
        if sio is None or not sio.connected:
            return None
        event, payload = out.data
        args = (event,) if payload is None else (event, payload)
        # FIFO: the shared loop runs submissions in order, and each puts its packet on
        # engine.io's send queue at once (`_Client.emit_now`).
        self._shared.submit(lambda: self._emit(sio, args))
        return _size(payload) if payload is not None else 16

    @staticmethod
    def _emit(sio: Any, args: tuple[Any, ...]) -> None:
        if not sio.emit_now(*args):
            log.info("%s not sent: the namespace is no longer connected", args[0])

    # -- closing ---------------------------------------------------------------------
    def _disconnect(self) -> None:
        if self._loop is None:
            return  # never connected: nothing acquired
        try:
            if self._sio is not None:
                self._run(self._sio.disconnect(), _CLOSE_STEP_S)
        except Exception as exc:  # closing anyway; report nothing fatal here
            log.info("disconnect: %s", exc)
        finally:
            self._loop = None
            self._shared.release()
