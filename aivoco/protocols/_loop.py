"""One asyncio event loop, on one thread, for every connection: Speech-to-Speech ones
(python-socketio's asyncio client) and agent calls (`_reader.py`, `_outbox.py`).

python-socketio's asyncio client keeps event order
(docs/protocols.md#pitfall-engineio-order), but a loop thread per call meant one more
thread per call and a wake-up of that thread for every 20 ms frame sent. With fifty
calls in one process (`aivoco test --concurrency`) the threads queued for the GIL and
frames went out late. Here every connection shares one loop, and that loop is the
shared clock's thread (`aivoco/audio/clock.py`): the uplink jobs that make the frames run
on it, so a frame is sent by the thread that made it, with no second thread woken per
frame (docs/performance.md#batch). Sends from other threads (mark answers, the goodbye)
are batched: the first send after the loop went idle wakes it once, later ones join the
same batch.

The loop runs while a connection or a clock job needs it. Library errors on the loop go
to the log, never to the user's screen.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from aivoco.audio.clock import shared_clock
from aivoco.errors import ProtocolMisuseError

log = logging.getLogger("aivoco.sts")


class SharedLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: collections.deque[Callable[[], Any]] = collections.deque()
        self._scheduled = False

    def acquire(self) -> asyncio.AbstractEventLoop:
        """The loop (the shared clock's, started if needed); pair each call with
        `release()`."""
        with self._lock:
            self._users += 1
            if self._loop is None:
                self._loop = shared_clock().acquire_loop()
            return self._loop

    def release(self) -> None:
        """One user fewer; the last one cancels what the library left on the loop and
        gives the loop back to the clock (whose thread ends once it has no job either)."""
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._loop is None:
                return
            loop = self._loop
            self._loop = None
        # What the library left running (engine.io's ping and read loops can outlive a
        # disconnect briefly) is cancelled and awaited, so no task dies pending.
        fut = asyncio.run_coroutine_threadsafe(_cancel_all(), loop)
        try:
            fut.result(timeout=3)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.info("shared loop shutdown: %s", type(exc).__name__)
        shared_clock().release_loop()

    def on_loop(self) -> bool:
        """Whether the caller runs on the loop's thread (the shared clock's)."""
        return shared_clock().on_loop()

    def call(self, fn: Callable[[], Any], timeout_s: float) -> bool:
        """Run `fn()` on the loop and wait until it ran (from another thread); False if
        the loop is gone or it did not run within `timeout_s`."""
        loop = self._loop
        if loop is None or self.on_loop():
            raise ProtocolMisuseError(
                "the shared loop is not running" if loop is None else "call() on the loop"
            )
        ran = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                ran.set()

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # closed meanwhile
            return False
        return ran.wait(timeout_s)

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
        """Run `coro` on the loop and wait for its result (from another thread: on the
        loop's own thread this would wait for itself)."""
        loop = self._loop
        if loop is None or shared_clock().on_loop():
            coro.close()
            raise ProtocolMisuseError(
                "the shared loop is not running" if loop is None else "run() on the loop"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result(timeout=max(0.01, timeout_s))
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"no answer within {timeout_s:.1f} s") from None

    def submit(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the loop soon, in submission order (from any thread)."""
        with self._lock:
            loop = self._loop
            if loop is None:
                return
            self._batch.append(fn)
            if self._scheduled:
                return
            self._scheduled = True
        # From a clock job (the uplink's frames, on this very thread): once the batch of
        # jobs is done, without a wake-up (docs/performance.md#batch).
        shared_clock().after_batch(lambda: self._wake(loop))

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        if shared_clock().on_loop():
            self._drain()
            return
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop closed meanwhile: nothing left to send on
            with self._lock:
                self._batch.clear()
                self._scheduled = False

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._batch:
                    self._scheduled = False
                    return
                fn = self._batch.popleft()
            try:
                fn()
            except Exception:  # one connection's send must not stop the others'
                log.exception("a queued socket.io send failed")


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_shared = SharedLoop()


def shared_loop() -> SharedLoop:
    return _shared
