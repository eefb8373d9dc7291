"""The agent-call service: a raw WebSocket route, `/ws/{key}/{agent}`.

See docs/protocols.md#call-endpoint and docs/protocols.md#call-rejections.

Credentials live in the URL path, so they are checked *before* the WebSocket upgrade: a
refused client gets a plain HTTP answer it can report precisely (401 for the key, 404
for the agent) instead of a socket that opens and then closes. The path is parsed from
the raw (still percent-encoded) path, so a key containing `/` (sent as `%2F`) stays in
one segment; each segment is then URL-unescaped. Nothing logs the path itself.
"""

from __future__ import annotations

import asyncio
import itertools
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from aivoco.emulator.call_session import CallSession
from aivoco.emulator.common import SessionLog
from aivoco.emulator.config import EmulatorConfig
from aivoco.emulator.records import CallSessionRecord, key_fingerprint

_CLOSE_TIMEOUT_S = 1.0


class CallService:
    def __init__(self, config: EmulatorConfig, counter: itertools.count[int]) -> None:
        self.config = config
        self._ids = counter
        self.records: list[CallSessionRecord] = []
        self.sessions: set[CallSession] = set()
        self.refused: list[tuple[int, str]] = []  # (HTTP status, reason), for tests

    def attach(self, app: web.Application) -> None:
        app.router.add_get("/ws/{tail:.*}", self.handle)

    def _refuse(self, status: int, reason: str, log: SessionLog) -> web.Response:
        self.refused.append((status, reason))
        log.warning("refused before upgrade: HTTP %d, %s", status, reason)
        return web.Response(status=status, text=reason + "\n")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        tag = f"call#{next(self._ids)}"
        log = SessionLog(tag)
        parts = request.raw_path.split("?", 1)[0].split("/")
        if len(parts) != 4 or not parts[3]:
            return self._refuse(404, "expected /ws/{key}/{agent}", log)
        key, agent = unquote(parts[2]), unquote(parts[3])
        if not self.config.key_accepted(key):
            return self._refuse(401, f"invalid API key ({key_fingerprint(key)})", log)
        if agent in self.config.reject_agents:
            return self._refuse(404, f"unknown agent {agent!r}", log)
        ws = web.WebSocketResponse(max_msg_size=self.config.max_message_bytes, autoping=True)
        if not ws.can_prepare(request).ok:
            return self._refuse(426, "this endpoint only speaks WebSocket", log)
        await ws.prepare(request)
        record = CallSessionRecord(id=tag, agent_id=agent, key=key_fingerprint(key))
        record.auth_ok = True
        self.records.append(record)
        session = CallSession(self.config, record, ws, log)
        self.sessions.add(session)
        log.info("connected: key %s, agent %r", record.key, agent)
        drop: asyncio.TimerHandle | None = None
        if self.config.drop_after_s is not None:
            transport = request.transport
            drop = asyncio.get_running_loop().call_later(
                self.config.drop_after_s, self._drop, session, transport
            )
        try:
            await self._serve(session, ws)
        finally:
            if drop is not None:
                drop.cancel()
            self.sessions.discard(session)
            await session.finish(self._close_reason(session, ws))
        return ws

    async def _serve(self, session: CallSession, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await session.on_text(msg.data)
                if session.record.stop_received:
                    await ws.close()
                    break
            elif msg.type == WSMsgType.BINARY:
                session.on_binary(msg.data)
            elif msg.type == WSMsgType.ERROR:
                session.log.warning("connection error: %s", ws.exception())
                break

    def _close_reason(self, session: CallSession, ws: web.WebSocketResponse) -> str:
        if session.record.dropped:
            return "dropped"
        if session.record.stop_received:
            return "stop"
        if session.shutting_down:
            return "server shutdown"
        return f"closed by client (code {ws.close_code})"

    def _drop(self, session: CallSession, transport: asyncio.Transport | None) -> None:
        session.record.dropped = True
        session.log.warning(
            "dropping the connection abruptly (--drop-after %g s)", self.config.drop_after_s
        )
        if transport is not None:
            transport.abort()  # no close frame: the client just loses the connection

    async def close(self) -> None:
        for session in list(self.sessions):
            session.shutting_down = True
            try:
                await asyncio.wait_for(session.ws.close(code=1001), _CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                session.log.warning("close handshake timed out")

    def totals_line(self) -> str:
        recs = self.records
        return (
            f"call: {len(recs)} connection(s), {len(self.refused)} refused, "
            f"{sum(len(r.utterances) for r in recs)} utterance(s), "
            f"{sum(len(r.replies) for r in recs)} reply(ies), "
            f"{sum(len(r.marks_answered) for r in recs)}/{sum(len(r.marks) for r in recs)} "
            f"mark(s) answered, {sum(r.deviation_total for r in recs)} deviation(s)"
        )
