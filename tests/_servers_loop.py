"""The machinery under the recording test servers in `servers.py`.

`_ThreadedServer` runs its own asyncio loop in a background thread hosting one aiohttp
app: `start()` returns the bound URL (port 0 on 127.0.0.1), `stop()` closes clients,
cancels background tasks and closes the loop, so tests stay free of ResourceWarnings.

Replies are *actions* executed in order by one worker task per server, whether queued by
a hook (on the loop thread, in arrival order) or by the test thread via `run()`, which
waits until they are done. Ordering matters: the client tests check that bursts of
events arrive in order (docs/protocols.md#pitfall-engineio-order).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

# How long a test waits for what a client should do: an upper bound, never a pace (each
# wait returns as soon as it is met). A client in a subprocess starts its interpreter
# first, which on a loaded machine (the suite's workers, CI's neighbours) took over 5 s.
DEFAULT_TIMEOUT = 20.0
T = TypeVar("T")
_S = TypeVar("_S", bound="_ThreadedServer")


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit:
    """Socket.IO: emit `event` (no payload when `data` is None)."""

    event: str
    data: Any = None


@dataclass(frozen=True)
class Disconnect:
    """Socket.IO: drop the client; `abrupt` kills TCP with no disconnect/close packet."""

    abrupt: bool = False


@dataclass(frozen=True)
class SendText:
    text: str


@dataclass(frozen=True)
class SendBinary:
    data: bytes


@dataclass(frozen=True)
class SendMedia:
    """WebSocket: server `media` with these mu-law codes, numbered per connection."""

    codes: bytes


@dataclass(frozen=True)
class Close:
    """WebSocket: a clean close handshake with `code`."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Abort:
    """WebSocket: kill the TCP connection with no close frame."""


Action = Sleep | Emit | Disconnect | SendText | SendBinary | SendMedia | Close | Abort


class _ThreadedServer:
    """An asyncio loop in a thread hosting one aiohttp app, plus the action worker."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._queue: asyncio.Queue[tuple[list[Action], Any, concurrent.futures.Future[None]]]
        self._worker: asyncio.Task[None] | None = None
        self._transports: set[asyncio.Transport] = set()
        self.errors: list[BaseException] = []  # failures inside actions or hooks
        self.port = 0
        self.ssl_context: ssl.SSLContext | None = None  # set before start(): serve TLS

    # -- subclass interface ---------------------------------------------------------
    def _build_app(self) -> web.Application:
        raise NotImplementedError

    def _scheme(self) -> str:
        return "http"

    async def _execute(self, action: Action, target: Any) -> None:
        raise NotImplementedError

    async def _close_clients(self) -> None:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, name=type(self).__name__)
        self._thread.daemon = True
        self._thread.start()
        self._call(self._setup())
        return self.url

    @property
    def url(self) -> str:
        secure = "s" if self.ssl_context is not None else ""
        return f"{self._scheme()}{secure}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._teardown(), timeout=15.0)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=15.0)
            self._loop = self._thread = None

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # Cancel whatever is left (engine.io ping timers, handler tasks) before closing.
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def _call(self, coro: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        assert self._loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _setup(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())
        app = self._build_app()
        app.middlewares.append(self._track_transport)
        # A short shutdown_timeout: cleanup must not wait a minute on a stuck handler.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _teardown(self) -> None:
        await self._close_clients()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _track_transport(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        # Kept so abrupt disconnects can abort the TCP connection itself.
        transport = request.transport
        if transport is not None:
            self._transports.add(transport)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            if transport is not None:
                self._transports.discard(transport)

    async def _drain_transports(self, grace: float = 0.5) -> None:
        """Give clients `grace` seconds to hang up, then cut the rest off."""
        deadline = time.monotonic() + grace
        while self._transports and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._abort_transports()

    def _abort_transports(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    # -- actions ----------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            actions, target, done = await self._queue.get()
            try:
                for action in actions:
                    if isinstance(action, Sleep):
                        await asyncio.sleep(action.seconds)
                    else:
                        await self._execute(action, target)
            except Exception as exc:
                self.errors.append(exc)
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(None)

    def _enqueue(self, actions: Iterable[Action] | None, target: Any) -> None:
        """From the loop thread (hooks): queue actions without waiting."""
        if actions:
            self._queue.put_nowait((list(actions), target, concurrent.futures.Future()))

    def run(self, *actions: Action, timeout: float = DEFAULT_TIMEOUT) -> None:
        """From the test thread: execute `actions` in order and wait until they are done."""
        assert self._loop is not None, "server not started"
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (list(actions), None, done))
        done.result(timeout)

    # -- recording helpers ------------------------------------------------------------
    def _wait(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = predicate()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self._cond.wait(remaining)

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()
