"""One asyncio event loop, on one thread, for every Speech-to-Speech connection.

python-socketio's asyncio client keeps event order
(docs/protocols.md#pitfall-engineio-order), but a loop thread per call meant one more
thread per call and a wake-up of that thread for every 20 ms frame sent. With fifty
calls in one process (`aivoco test --concurrency`) the threads queued for the GIL and
frames went out late. Here every connection shares one loop thread, and sends from other
threads are batched: the first send after the loop went idle wakes it once, later ones
join the same batch.

The thread starts with the first connection and stops when the last one is released.
Library errors on the loop go to the log, never to the user's screen.
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
from aivoco.redact import redact

log = logging.getLogger("aivoco.sts")


class SharedLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._batch: collections.deque[Callable[[], Any]] = collections.deque()
        self._scheduled = False

    def acquire(self) -> asyncio.AbstractEventLoop:
        """The loop (started if needed); pair each call with `release()`."""
        with self._lock:
            self._users += 1
            if self._loop is None:
                loop = asyncio.new_event_loop()
                loop.set_exception_handler(_loop_exception)
                thread = threading.Thread(target=loop.run_forever, name="aivoco-sts-loop")
                thread.daemon = True
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def release(self) -> None:
        """One user fewer; the last one stops the loop and its thread."""
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._loop is None:
                return
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        # What the library left running (engine.io's ping and read loops can outlive a
        # disconnect briefly) is cancelled and awaited, so no task dies pending.
        fut = asyncio.run_coroutine_threadsafe(_cancel_all(), loop)
        try:
            fut.result(timeout=3)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.info("shared loop shutdown: %s", type(exc).__name__)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=3)
        if not loop.is_running():
            loop.close()

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
        """Run `coro` on the loop and wait for its result (from another thread)."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the shared loop is not running")
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
        # From the shared clock (the uplink's frames): once its batch of jobs is done,
        # so the loop does not wake while the clock still runs (docs/performance.md#batch).
        shared_clock().after_batch(lambda: self._wake(loop))

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
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


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
    log.warning("socket.io client error: %s", redact(str(detail)))


_shared = SharedLoop()


def shared_loop() -> SharedLoop:
    return _shared
