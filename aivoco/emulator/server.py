"""`Emulator`: both Aivoco services on one port, run on a background thread.

Why one aiohttp application instead of two servers: python-socketio's AsyncServer
attaches to an aiohttp app as just another route (`/socket.io/`, websocket and polling
transports), and aiohttp also serves the raw WebSocket route `/ws/{key}/{agent}`. One
app means one port to pass around (`--port`, port 0 in tests), one event loop whose
clock paces both protocols the same way, one place that binds, reports the bound port
and fails clearly when the address is taken, and one orderly shutdown. Two servers
would double all of that for no gain: the paths never collide, and a client of either
protocol cannot tell that the other one shares the port.

The asyncio loop runs on its own thread so tests and the demo can drive the emulator
from ordinary blocking code: `start()` returns once the port is bound, `stop()` ends
every session (STS calls get `session_ended {reason: server_shutdown}`, raw WebSockets
a 1001 close), stops the server and joins the thread, leaving no tasks behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import threading
import time
from collections.abc import Callable
from types import TracebackType
from urllib.parse import quote

from aiohttp import web

from aivoco.emulator.call import CallService
from aivoco.emulator.common import LOGGER
from aivoco.emulator.config import EmulatorConfig
from aivoco.emulator.records import CallSessionRecord, StsSessionRecord
from aivoco.emulator.sts import StsService
from aivoco.errors import AivocoError, ConnectionFailedError

_START_TIMEOUT_S = 15.0


class Emulator:
    """The local stand-in for both services. Use as a context manager or start()/stop()."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._sts = StsService(self.config, itertools.count(1))
        self._call = CallService(self.config, itertools.count(1))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        # Set when the loop thread has finished. Waiting on it rather than on
        # Thread.join() matters: a Ctrl-C that interrupts join() can leave the Thread
        # reporting itself finished while it still runs (CPython issue 21822 family).
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._port: int | None = None

    # -- addresses ---------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def sts_url(self) -> str:
        """Socket.IO server URL, e.g. http://127.0.0.1:11002."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def call_url(self) -> str:
        """Base of the agent-call URL; append /{key}/{agent} (see call_url_for)."""
        return f"ws://{self._url_host}:{self.port}/ws"

    def call_url_for(self, key: str, agent: str) -> str:
        return f"{self.call_url}/{quote(key, safe='')}/{quote(agent, safe='')}"

    # -- records -----------------------------------------------------------------------
    @property
    def sts_sessions(self) -> list[StsSessionRecord]:
        return list(self._sts.records)

    @property
    def call_sessions(self) -> list[CallSessionRecord]:
        return list(self._call.records)

    @property
    def refused_calls(self) -> list[tuple[int, str]]:
        """(HTTP status, reason) of every call refused before the upgrade."""
        return list(self._call.refused)

    def wait_until(
        self, predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02
    ) -> bool:
        """Poll `predicate` (e.g. over the records) until it is truthy or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def totals(self) -> list[str]:
        return [self._sts.totals_line(), self._call.totals_line()]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        """Bind and serve on a background thread; returns (host, bound port)."""
        if self._thread is not None:
            raise RuntimeError("the emulator was already started")
        self._thread = threading.Thread(target=self._thread_main, name="aivoco-emulator")
        self._thread.daemon = True
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise ConnectionFailedError("the emulator did not start within 15 s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.host, self.port

    def stop(self, timeout: float = 15.0) -> None:
        """End all sessions and stop serving; safe to call twice or before start()."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)
        if self._done.wait(timeout):
            thread.join(1.0)
        else:
            LOGGER.error("the emulator thread did not stop within %.0f s", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set() and self._error is None

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the emulator stops (by stop() or an error); True if it has."""
        return self._done.wait(timeout)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the loop thread -----------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
            else:
                LOGGER.exception("the emulator stopped with an error")
        finally:
            self._ready.set()
            self._done.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        app = web.Application(middlewares=[self._sts.track_transports])
        self._sts.attach(app)
        self._call.attach(app)
        # access_log=None: the call URL carries the API key in its path.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self.config.shutdown_timeout_s,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            self._port = int(runner.addresses[0][1])
        except OSError as exc:
            await runner.cleanup()
            raise _bind_error(self.config.host, self.config.port, exc) from None
        except BaseException:
            await runner.cleanup()
            raise
        LOGGER.info("listening: sts %s, call %s/{key}/{agent}", self.sts_url, self.call_url)
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            LOGGER.info("stopping: ending sessions")
            await self._sts.close()
            await self._call.close()
            await runner.cleanup()
            # What is left are library timers (Engine.IO's ping sleeps for 25 s):
            # cancel and await them here, so nothing outlives stop().
            current = asyncio.current_task()
            leftovers = [t for t in asyncio.all_tasks() if t is not current]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
            LOGGER.debug("stopped; %d leftover task(s) cancelled", len(leftovers))
            for line in self.totals():
                LOGGER.debug("totals %s", line)


def _bind_error(host: str, port: int, exc: OSError) -> AivocoError:
    if exc.errno == errno.EADDRINUSE:
        return ConnectionFailedError(
            f"cannot listen on {host}:{port}: the address is already in use "
            "(another emulator running? pick another --port, or --port 0 for any free one)"
        )
    reason = exc.strerror or str(exc)
    return ConnectionFailedError(f"cannot listen on {host}:{port}: {reason}")
