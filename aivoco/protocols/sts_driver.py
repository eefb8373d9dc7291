"""Speech-to-Speech driver: owns the Socket.IO connection and its thread.

Ordering (protocol notes section 3): python-engineio's *sync* client dispatches every
message on a new thread, so consecutive `audio_response` events could be handled out
of order, and the protocol has no sequence number to repair that. We run python-socketio's
`AsyncClient` on a private event loop thread instead. It creates one task per message in
arrival order, and our catch-all handler is synchronous (no await before it parses and
enqueues), so tasks run their handler in FIFO order. tests/test_sts_driver.py checks
this with a burst of numbered chunks.

Transports: websocket first; engineio only ever tries `transports[0]`, so the polling
fallback is a second connect attempt made here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import socketio
from engineio.payload import Payload

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import (
    AivocoError,
    AuthError,
    ConnectionFailedError,
    CreditsError,
    ProtocolError,
    ServiceError,
)
from aivoco.protocols import sts_codec as codec
from aivoco.redact import redact
from aivoco.session import events as ev

log = logging.getLogger("aivoco.sts")

DEFAULT_URL = "wss://sts.aivoco.on.cloud.vispark.in"
# python-engineio refuses a polling response holding more than 16 packets (a DoS guard
# meant for servers) and then drops the connection; a Socket.IO server batches every
# queued event into one response, so a burst of agent audio over the polling fallback
# killed the call (tests/test_sts_driver.py). The maintainers' advice is to raise the
# limit (python-engineio#142); a payload stays bounded by the server's 1 MB maxPayload.
Payload.max_decode_packets = max(Payload.max_decode_packets, 10_000)

# Uplink backlog limit (engine.io packets queued but not yet written): ~5 s of 20 ms
# frames. Past it, new audio frames are dropped and counted, so a stalled link does
# not build an unbounded queue and the call resumes near real time.
UPLINK_BACKLOG_LIMIT = 250


def endpoint_label(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def server_error(e: codec.ServerError) -> AivocoError:
    text = e.message or e.type or "unknown error"
    if codec.is_auth_error(e):
        return AuthError(f"the server refused the API key: {text}")
    if codec.is_credit_exhaustion(e):
        return CreditsError(f"out of credits: {text}")
    return ServiceError(f"the server reported an error ({e.type or 'error'}): {text}")


class StsDriver:
    protocol = "sts"
    uplink_rate_hz = codec.INPUT_RATE_HZ
    downlink_rate_hz = codec.OUTPUT_RATE_HZ
    has_credits = True

    def __init__(
        self,
        url: str,
        key: str,
        voice: str,
        *,
        system_message: str = "",
        functions: Sequence[codec.FunctionSpec] = (),
        transports: Sequence[str] = ("websocket", "polling"),
    ) -> None:
        self.url = url
        self.endpoint = endpoint_label(url)
        self.net = ev.NetStats()
        self.transports = tuple(transports)
        # Built now so a bad key/voice/function set is a usage error before connecting.
        self._start = codec.start_call(key, system_message, voice, functions)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="aivoco-sts-loop", daemon=True
        )
        self._sio: Any = None
        self._events: ev.EventQueue | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._handshake_error: AivocoError | None = None
        self._ended = threading.Event()
        self._stopping = False
        self._closed = False

    # -- connection ----------------------------------------------------------------
    def _new_client(self) -> Any:
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, logger=False)
        sio.on("*", self._on_event)
        sio.on("disconnect", self._on_disconnect)
        return sio

    def _run(self, coro: Any, timeout_s: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=timeout_s)

    async def _connect_once(self, transport: str, timeout_s: float) -> Any:
        sio = self._new_client()
        try:
            await asyncio.wait_for(
                sio.connect(self.url, transports=[transport], wait_timeout=timeout_s),
                timeout=timeout_s,
            )
        except BaseException:
            await sio.disconnect()
            raise
        return sio

    def connect(self, events: ev.EventQueue, timeout_s: float) -> None:
        self._events = events
        self._thread.start()
        failures: list[str] = []
        for transport in self.transports:
            try:
                self._sio = self._run(self._connect_once(transport, timeout_s), timeout_s + 2)
            except (socketio.exceptions.ConnectionError, OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                failures.append(f"{transport}: {reason}")
                log.info("connect over %s failed: %s", transport, reason)
                continue
            self.net.transport = transport
            break
        if self._sio is None:
            raise ConnectionFailedError(
                redact(f"cannot connect to {self.endpoint} ({'; '.join(failures)})")
            )
        log.info("connected to %s over %s", self.endpoint, self.net.transport)
        self._send(self._start)
        if not self._ready.wait(timeout_s):
            raise ConnectionFailedError(
                f"{self.endpoint} accepted the connection but did not start the session "
                f"within {timeout_s:g} s"
            )
        if self._handshake_error is not None:
            raise self._handshake_error

    # -- receiving (loop thread; handlers stay synchronous and small) ------------------
    def _on_event(self, event: str, data: Any = None) -> None:
        self.net.messages_received += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("recv %s", codec.describe_incoming(event, data))
        if isinstance(data, str):
            self.net.bytes_received += len(data)
        elif isinstance(data, dict):
            audio = data.get("audio_data")
            self.net.bytes_received += len(audio) if isinstance(audio, str) else 64
        try:
            parsed = codec.parse_event(event, data)
        except ProtocolError as exc:
            log.warning("protocol error: %s", exc)
            self._put(ev.ProtocolIssue(str(exc)))
            return
        self._dispatch(parsed)

    def _put(self, event: ev.Event) -> None:
        if self._events is not None:
            self._events.put(event)

    def _fail_handshake(self, error: AivocoError) -> None:
        if not self._ready.is_set():
            self._handshake_error = error
            self._ready.set()
        else:
            self._put(ev.Failed(error))

    def _dispatch(self, e: codec.StsEvent) -> None:
        if isinstance(e, codec.AudioResponse):
            self.net.audio_ms_received += e.chunk.duration_ms
            self._put(ev.AgentAudio(e.chunk))
        elif isinstance(e, codec.TextResponse):
            self._put(ev.AgentText(e.text))
        elif isinstance(e, codec.SessionReady):
            self._put(
                ev.Ready(e.message, e.credits_available, e.cost_per_minute, e.functions_loaded)
            )
            self._ready.set()
        elif isinstance(e, codec.AuthSuccess):
            self._put(ev.CreditsInfo(e.credits))
        elif isinstance(e, codec.AuthFailed):
            self._fail_handshake(AuthError(f"the server refused the API key: {e.message}"))
        elif isinstance(e, codec.ServerError):
            self._fail_handshake(server_error(e))
        elif isinstance(e, codec.SessionEnded):
            self._on_session_ended(e)
        elif isinstance(e, codec.FunctionCalled):
            self._put(ev.FunctionCall(e.call_id, e.function_name, e.arguments))
        elif isinstance(e, codec.FunctionResult):
            self._put(ev.FunctionReport("result", e.function_name, e.result))
        elif isinstance(e, codec.FunctionError):
            self._put(ev.FunctionReport("error", None, e.error))
        elif isinstance(e, codec.FunctionResponseSent):
            detail = {
                "admin_units_deducted": e.admin_units_deducted,
                "remaining_admin_units": e.remaining_admin_units,
            }
            self._put(ev.FunctionReport("billed", e.function_name, detail))
        else:
            log.info("ignored unknown event %r", e.name)
            self._put(ev.Notice(f"ignored unknown event {e.name!r}"))

    def _on_session_ended(self, e: codec.SessionEnded) -> None:
        text = e.message or e.reason or "no reason given"
        error: AivocoError | None = None
        if codec.is_credit_exhaustion(e):
            error = CreditsError(f"the server ended the session: {text}")
        elif not self._stopping:
            error = ServiceError(f"the server ended the session: {text}")
        ended = ev.Ended(
            e.reason or "ended", e.message, e.total_credits_used, e.remaining_credits, error
        )
        self._ended.set()
        if not self._ready.is_set() and error is not None:
            self._fail_handshake(error)
            return
        self._put(ended)

    def _on_disconnect(self, reason: Any = None) -> None:
        log.info("disconnected (%s)", reason)
        if self._stopping or self._closed or self._ended.is_set():
            return
        error = ConnectionFailedError(f"the connection to {self.endpoint} was lost ({reason})")
        self._fail_handshake(error)

    # -- sending (any thread) ------------------------------------------------------
    def _send(self, out: codec.Outgoing) -> None:
        sio = self._sio
        if sio is None or self._closed or not sio.connected:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("send %s", codec.describe_outgoing(out))
        self.net.messages_sent += 1
        self.net.bytes_sent += len(str(out.payload)) if out.payload else 16
        args = (out.event,) if out.payload is None else (out.event, out.payload)
        # FIFO: run_coroutine_threadsafe schedules in call order and emit() queues the
        # packet before its first real suspension point.
        asyncio.run_coroutine_threadsafe(sio.emit(*args), self._loop)

    def send_audio(self, chunk: AudioChunk) -> None:
        sio = self._sio
        backlog = sio.eio.queue if sio is not None else None
        if backlog is not None and backlog.qsize() > UPLINK_BACKLOG_LIMIT:
            self.net.uplink_dropped += 1
            return
        self.net.audio_ms_sent += chunk.duration_ms
        self._send(codec.audio_data(chunk))

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        # A failure result already has the reference shape (sts_codec.failure_result).
        self._send(codec.function_response(call_id, name, result))

    def answer_mark(self, name: str) -> None:
        """Marks belong to the call protocol; the Speech-to-Speech API has none."""

    def hang_up(self, timeout_s: float) -> None:
        """stop_call, then wait up to timeout_s for session_ended (it carries the totals)."""
        self._stopping = True
        if self._sio is None or self._ended.is_set():
            return
        self._send(codec.stop_call())
        if not self._ended.wait(timeout_s):
            log.info("no session_ended within %.1f s of stop_call", timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopping = True
        if self._thread.is_alive():
            if self._sio is not None:
                try:
                    self._run(self._sio.disconnect(), 3)
                except Exception as exc:  # closing anyway; report nothing fatal here
                    log.info("disconnect: %s", exc)
            self._run(self._shutdown(), 3)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=3)
        if not self._loop.is_running():
            self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
