"""`RecordingStsServer`: a real python-socketio server for the `aivoco sts` tests.

Default flow as in docs/protocols.md#sts-flow: start_call -> auth_success + session_ready
(auth_failed for a key not in `valid_keys`); stop_call -> session_ended, then
disconnect. Everything received is recorded in arrival order (handlers run in order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import socketio
from _servers_loop import DEFAULT_TIMEOUT, Action, Disconnect, Emit, _ThreadedServer
from aiohttp import web


@dataclass(frozen=True)
class Received:
    time: float
    event: str
    data: Any
    sid: str


StsHook = Callable[["RecordingStsServer", str, Any], "Iterable[Action] | None"]


class RecordingStsServer(_ThreadedServer):
    """Socket.IO server recording every event; defaults follow the documented flow.

    Also records pseudo-events `connect` (data: {"transport", "auth"}) and `disconnect`
    (data: the reason). `on(event, hook)` replaces the default handling of `event`.
    """

    def __init__(
        self,
        *,
        valid_keys: Iterable[str] | None = None,
        credits: float = 100.0,
        cost_per_minute: float = 1.0,
        transports: Iterable[str] = ("polling", "websocket"),
        hooks: Mapping[str, StsHook] | None = None,
    ) -> None:
        super().__init__()
        self.valid_keys = None if valid_keys is None else frozenset(valid_keys)
        self.credits = credits
        self.cost_per_minute = cost_per_minute
        self.transports = list(transports)
        self.received: list[Received] = []
        self.connected: list[str] = []  # sids currently connected
        self._ready_at: dict[str, float] = {}
        self._hooks: dict[str, StsHook] = {
            "start_call": RecordingStsServer.default_start_call,
            "stop_call": RecordingStsServer.default_stop_call,
        }
        self._hooks.update(hooks or {})
        self.sio: Any = None

    def on(self, event: str, hook: StsHook) -> None:
        self._hooks[event] = hook

    # -- defaults (public so custom hooks can reuse them) -----------------------------
    def default_start_call(self, sid: str, data: Any) -> list[Action]:
        key = data.get("auth_key") if isinstance(data, dict) else None
        if not key or (self.valid_keys is not None and key not in self.valid_keys):
            return [Emit("auth_failed", {"message": "Invalid API key", "credits": 0})]
        functions = data.get("custom_functions") or []
        self._ready_at[sid] = time.monotonic()
        ready = {
            "message": "Voice session started",
            "credits_available": self.credits,
            "cost_per_minute": self.cost_per_minute,
            "functions_loaded": len(functions),
        }
        return [Emit("auth_success", {"credits": self.credits}), Emit("session_ready", ready)]

    def default_stop_call(self, sid: str, data: Any) -> list[Action]:
        started = self._ready_at.pop(sid, time.monotonic())
        used = round((time.monotonic() - started) / 60.0 * self.cost_per_minute, 4)
        ended = {
            "reason": "stopped_by_user",
            "message": "Session stopped by user",
            "total_credits_used": used,
            "remaining_credits": round(self.credits - used, 4),
        }
        return [Emit("session_ended", ended), Disconnect()]

    # -- test-thread API ------------------------------------------------------------
    def emit(self, event: str, data: Any = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Emit to every connected client, in order with any queued actions."""
        self.run(Emit(event, data), timeout=timeout)

    def sio_emit_raw(self, event: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Emit `event` with several arguments (a tuple payload is sent as arguments)."""
        self.run(Emit(event, args if len(args) != 1 else args[0]), timeout=timeout)

    def disconnect(self, abrupt: bool = False, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.run(Disconnect(abrupt), timeout=timeout)

    def events(self, name: str | None = None) -> list[Received]:
        with self._cond:
            return [r for r in self.received if name is None or r.event == name]

    def wait_for(self, event: str, timeout: float = DEFAULT_TIMEOUT, count: int = 1) -> Received:
        """The `count`-th `event` received, waiting up to `timeout` seconds for it."""

        def found() -> Received | None:
            matches = [r for r in self.received if r.event == event]
            return matches[count - 1] if len(matches) >= count else None

        try:
            return self._wait(found, timeout, f"{count} x {event!r}")
        except TimeoutError as exc:
            seen = [r.event for r in self.events()][-20:]
            raise TimeoutError(f"{exc}; last events: {seen}") from None

    # -- server side ------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            transports=self.transports,
            # In-order handlers: recorded order is arrival order.
            async_handlers=False,
            cors_allowed_origins="*",
            logger=False,
            engineio_logger=False,
        )
        self.sio = sio
        app = web.Application()
        sio.attach(app)
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("*", self._on_event)
        return app

    def _record(self, sid: str, event: str, data: Any) -> None:
        with self._cond:
            self.received.append(Received(time.monotonic(), event, data, sid))
            self._cond.notify_all()

    async def _on_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        self.connected.append(sid)
        self._record(sid, "connect", {"transport": self.sio.transport(sid), "auth": auth})

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        if sid in self.connected:
            self.connected.remove(sid)
        self._record(sid, "disconnect", str(reason))

    async def _on_event(self, event: str, sid: str, *args: Any) -> None:
        # One argument is the payload; none (stop_call) is None; several stay a tuple.
        data = args[0] if len(args) == 1 else (args or None)
        self._record(sid, event, data)
        hook = self._hooks.get(event)
        if hook is not None:
            try:
                self._enqueue(hook(self, sid, data), sid)
            except Exception as exc:
                self.errors.append(exc)

    async def _execute(self, action: Action, target: Any) -> None:
        sids = [target] if target is not None else list(self.connected)
        if isinstance(action, Emit):
            if target is None:
                await self.sio.emit(action.event, action.data)
            else:
                await self.sio.emit(action.event, action.data, to=target)
        elif isinstance(action, Disconnect):
            for sid in sids:
                await self._drop(sid, action.abrupt)
            if action.abrupt:
                self._abort_transports()
        else:
            raise TypeError(f"{action!r} is not a Socket.IO action")

    async def _drop(self, sid: str, abrupt: bool) -> None:
        if not abrupt:
            await self.sio.disconnect(sid)
            return
        # No DISCONNECT/CLOSE packet: forget the engine.io session, then kill TCP.
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        sock = self.sio.eio.sockets.get(eio_sid)
        if sock is not None:
            await sock.close(wait=False, abort=True)
            self.sio.eio.sockets.pop(eio_sid, None)

    async def _close_clients(self) -> None:
        for sid in list(self.connected):
            await self.sio.disconnect(sid)
        # Close the engine.io sessions too (CLOSE packet, without waiting for a poll that
        # may never come); a client that keeps its websocket open is cut off below.
        for sock in list(self.sio.eio.sockets.values()):
            await sock.close(wait=False)
        await self.sio.shutdown()
        await self._drain_transports()
