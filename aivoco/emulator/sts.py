"""The Speech-to-Speech service: a python-socketio AsyncServer on the shared aiohttp app.

Server options, and why:
* `async_handlers=False`: events of one client are handled in arrival order, in the
  transport's read loop. The default runs each event as its own task, which could feed
  audio chunks to the VAD out of order; handlers here only do quick work and start
  tasks for anything that waits (replies, function calls, credit timers).
* `max_http_buffer_size` = 1 MB, the JS server's default `maxHttpBufferSize`: a larger
  message closes the connection there, and so it does here (docs/protocols.md#pitfall-max-buffer).
* `cors_allowed_origins="*"`: the browser playground may be served from anywhere; the
  emulator holds no secrets worth an origin check.
* Both transports (websocket and long-polling, with upgrade) stay enabled, as on the
  real service, which the reference clients reach with `websocket` then `polling`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import engineio.packet
import socketio
from aiohttp import web

from aivoco.emulator.billing import Ledger
from aivoco.emulator.common import SessionLog, note_deviation
from aivoco.emulator.config import EmulatorConfig
from aivoco.emulator.records import StsSessionRecord
from aivoco.emulator.sts_session import StsLink, StsSession

_CLOSE_TIMEOUT_S = 1.0
# At shutdown, clients get this long to close their side after the Socket.IO
# disconnect; then their connections are aborted. (python-engineio's client can take
# 3 s to finish a websocket close, which would hold aiohttp's shutdown that long.)
_SHUTDOWN_GRACE_S = 0.3
# python-socketio/engineio log every packet at INFO, start_call (and its auth_key)
# included; their logger is pinned at WARNING whatever --log-level says.
_LIBRARY_LOGGER = logging.getLogger("aivoco.emulator.socketio")
_LIBRARY_LOGGER.setLevel(logging.WARNING)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StsService:
    def __init__(self, config: EmulatorConfig, counter: itertools.count[int]) -> None:
        self.config = config
        self._ids = counter
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            async_handlers=False,
            cors_allowed_origins="*",
            max_http_buffer_size=config.max_message_bytes,
            logger=_LIBRARY_LOGGER,
            engineio_logger=_LIBRARY_LOGGER,
        )
        self.records: list[StsSessionRecord] = []
        self.sessions: dict[str, StsSession] = {}  # by Socket.IO sid
        self._ledger = Ledger(config.credits, config.admin_units)
        # TCP transports seen per Engine.IO session id: the ones to abort for --drop-after.
        self._transports: dict[str, set[asyncio.Transport]] = {}
        self._eio_sids: dict[str, str] = {}
        self._open_transports: set[asyncio.Transport] = set()  # every live /socket.io one
        self._upgrades: set[str] = set()  # Engine.IO sessions that asked to upgrade
        self._tasks: set[asyncio.Task[None]] = set()
        self._register()

    # -- wiring ------------------------------------------------------------------------
    def attach(self, app: web.Application) -> None:
        self.sio.attach(app)

    @web.middleware
    async def track_transports(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Remember which TCP connections carry each Engine.IO session (for drops)."""
        if not request.path.startswith("/socket.io") or request.transport is None:
            return await handler(request)
        self._open_transports = {t for t in self._open_transports if not t.is_closing()}
        self._open_transports.add(request.transport)
        eio_sid = request.query.get("sid")
        if eio_sid:
            self._transports.setdefault(eio_sid, set()).add(request.transport)
            if request.query.get("transport") == "websocket":
                # An upgrade from polling; it may come before the Socket.IO connect.
                self._upgrades.add(eio_sid)
                for sid, known in self._eio_sids.items():
                    if known == eio_sid and sid in self.sessions:
                        self._note_upgrade(self.sessions[sid])
        return await handler(request)

    def _note_upgrade(self, session: StsSession) -> None:
        if session.record.transport == "polling":
            session.record.transport = "polling->websocket"
            session.log.info("transport upgraded to websocket")

    def _register(self) -> None:
        sio = self.sio

        @sio.event  # type: ignore[untyped-decorator]
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            await self._on_connect(sid, environ)

        @sio.event  # type: ignore[untyped-decorator]
        async def disconnect(sid: str, reason: Any = None) -> None:
            session = self.sessions.pop(sid, None)
            eio_sid = self._eio_sids.pop(sid, None)
            if eio_sid is not None:
                self._transports.pop(eio_sid, None)
                self._upgrades.discard(eio_sid)
                if reason == sio.reason.CLIENT_DISCONNECT:
                    self._release_long_poll(eio_sid)
            if session is not None:
                await self._guard(session, "disconnect", session.on_disconnect(str(reason)))

        handlers: dict[str, Callable[[StsSession, Any], Awaitable[None]]] = {
            "start_call": lambda s, d: s.on_start_call(d),
            "audio_data": lambda s, d: s.on_audio(d),
            "function_response": lambda s, d: s.broker.on_response(d),
            "stop_call": lambda s, d: s.on_stop_call(),
        }

        @sio.on("*")  # type: ignore[untyped-decorator]
        async def any_event(event: str, sid: str, *args: Any) -> None:
            session = self.sessions.get(sid)
            if session is None:
                return
            session.record.messages_received += 1
            session.record.events_received[event] += 1
            handler = handlers.get(event)
            if handler is None:
                note_deviation(session.record, session.log, "unknown_event", repr(event))
                return
            if len(args) > 1 or (event != "stop_call" and not args):
                note_deviation(
                    session.record, session.log, event, f"{len(args)} arguments, expected 1"
                )
            await self._guard(session, event, handler(session, args[0] if args else None))

    def _release_long_poll(self, eio_sid: str) -> None:
        """Answer a polling client's pending GET with a CLOSE packet when it leaves.

        The JS engine.io server does this; python-engineio leaves the GET hanging until
        its ping timeout, so a polling client's disconnect() would take ~30 s.
        """
        eio_socket = self.sio.eio.sockets.get(eio_sid)
        if eio_socket is not None and not eio_socket.upgraded:
            eio_socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.CLOSE))

    async def _guard(self, session: StsSession, what: str, coro: Awaitable[None]) -> None:
        """A bug in one handler must not take the connection (or the server) down."""
        try:
            await coro
        except Exception:
            session.log.exception("internal error while handling %s", what)

    async def _on_connect(self, sid: str, environ: dict[str, Any]) -> None:
        record = StsSessionRecord(id=f"sts#{next(self._ids)}")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        record.transport = query.get("transport", ["polling"])[0]
        self.records.append(record)
        log = SessionLog(record.id)
        session = StsSession(self.config, record, log, self._link(sid, log), self._ledger)
        self.sessions[sid] = session
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            self._eio_sids[sid] = eio_sid
            request = environ.get("aiohttp.request")
            if request is not None and request.transport is not None:
                self._transports.setdefault(eio_sid, set()).add(request.transport)
        session.log.info("connected over %s", record.transport)
        if eio_sid in self._upgrades:
            self._note_upgrade(session)
        if self.config.drop_after_s is not None:
            self._spawn(self._drop_later(sid, session, self.config.drop_after_s))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- faults ------------------------------------------------------------------------
    async def _drop_later(self, sid: str, session: StsSession, delay: float) -> None:
        await asyncio.sleep(delay)
        if not session.connected:
            return
        session.record.dropped = True
        session.log.warning("dropping the connection abruptly (--drop-after %g s)", delay)
        eio_sid = self._eio_sids.get(sid)
        if eio_sid is None:
            return
        for transport in self._transports.get(eio_sid, ()):
            transport.abort()  # no close frame, no Socket.IO disconnect packet
        # Forget the Engine.IO session without a CLOSE packet, so a polling client's
        # next request fails too, and release a long-poll GET still waiting for data.
        eio_socket = self.sio.eio.sockets.get(eio_sid)
        if eio_socket is not None:
            await eio_socket.close(wait=False, abort=True)
            eio_socket.queue.put_nowait(None)

    # -- session control ---------------------------------------------------------------
    def _link(self, sid: str, log: SessionLog) -> StsLink:
        """The session's only handle on its connection: send to it, or end it."""

        async def send(event: str, data: Any) -> None:
            await self.sio.emit(event, data, to=sid)

        async def disconnect() -> None:
            await self._disconnect(sid, log)

        return StsLink(send, disconnect)

    async def _disconnect(self, sid: str, log: SessionLog) -> None:
        """Server-side disconnect (credits exhausted, shutdown), bounded in time."""
        try:
            await asyncio.wait_for(self.sio.disconnect(sid), _CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("disconnect did not complete in %.1f s", _CLOSE_TIMEOUT_S)

    async def close(self) -> None:
        """Stop: end calls (session_ended reason server_shutdown), disconnect everyone."""
        for task in list(self._tasks):
            task.cancel()
        for sid, session in list(self.sessions.items()):
            try:
                await session.end_call("server_shutdown", "The emulator is shutting down")
            except Exception:
                session.log.exception("error while ending the call")
            await self._disconnect(sid, session.log)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=_CLOSE_TIMEOUT_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _SHUTDOWN_GRACE_S
        while loop.time() < deadline and any(not t.is_closing() for t in self._open_transports):
            await asyncio.sleep(0.02)
        for transport in self._open_transports:
            transport.abort()
        self._open_transports.clear()
        await self.sio.shutdown()

    def totals_line(self) -> str:
        recs = self.records
        return (
            f"sts: {len(recs)} connection(s), "
            f"{sum(r.calls_started for r in recs)} call(s), "
            f"{sum(len(r.utterances) for r in recs)} utterance(s), "
            f"{sum(len(r.replies) for r in recs)} reply(ies), "
            f"{sum(len(r.function_calls) for r in recs)} function call(s), "
            f"{sum(r.credits_used for r in recs):.4f} credits charged"
        )
