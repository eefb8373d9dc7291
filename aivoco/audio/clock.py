"""One clock thread for every paced part of the process: file sources, virtual
speakers, call observers.

Each of these used to sleep on a thread of its own: a file source woke 50 times a
second, a virtual speaker 100, an observer 50. One call could afford that; fifty calls
in one process (`aivoco test --concurrency`) meant thousands of wake-ups a second and a
few hundred threads queueing for the GIL, and frames went out late. Here one thread
wakes when the earliest job is due and runs every job whose time has come.

A job is paced by its own `Schedule` (`schedule.py`: audio time, item k is due at
start + k x period) and works out from it how much is due, so a late wake-up catches up
instead of drifting. Jobs must be short and must not block: they run one after another
on the clock's thread, which is also the event loop of every Speech-to-Speech
connection (`Clock.acquire_loop`). The thread starts with the first job or connection
and ends when the last one is gone, so an idle process has no clock waking it.

The clock wakes only on a grid (`GRID_S`, 20 ms, from the clock's start): a job due
between two grid points runs at the next one, together with every other job due by
then. A call's three jobs (uplink, virtual speaker, observer) would otherwise each wake
the thread at its own phase; fifty calls, at fifty phases. On the grid a process wakes
50 times a second however many calls it runs. Every job of a wake-up is given the grid
point's time, so a Schedule started there keeps its items on grid points: a job runs
when it is due, and a job due between two points is at most one step late (its
Schedule releases what is due by then, so nothing drifts; docs/performance.md#clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from aivoco.audio.schedule import SAME_TIME_S
from aivoco.redact import redact

log = logging.getLogger("aivoco.audio")

# A job is called with the time of the grid point it runs for (time.monotonic() seconds,
# at most a wake-up's latency in the past). It returns False when it is done (it is
# then removed), a time to run next (when its next item is due), or None/True for a
# period on.
Job = Callable[[float], "bool | float | None"]
ErrorHandler = Callable[[BaseException], None]

GRID_S = 0.02  # the clock wakes on multiples of this (one 20 ms frame, the default chunk)


class _Entry:
    def __init__(
        self, job: Job, period_s: float, on_error: ErrorHandler, first: float, urgent: bool
    ) -> None:
        self.job = job
        self.period_s = period_s
        self.on_error = on_error
        self.next = first
        self.urgent = urgent
        self.cancelled = False


class ClockHandle:
    def __init__(self, clock: Clock, entry: _Entry) -> None:
        self._clock = clock
        self._entry = entry

    def cancel(self) -> None:
        """Stop the job; once this returns it is not running and will not run again
        (unless called from the job itself, which then simply is not run again)."""
        self._clock._cancel(self._entry)


class Clock:
    """The jobs' thread is an asyncio event loop: the process's Speech-to-Speech
    connections share it (`aivoco/protocols/_loop.py`, `acquire_loop`), so a frame an
    uplink job hands to its socket is sent by the thread that made it, without waking a
    second thread for every frame (docs/performance.md#batch). The thread runs while a
    job or a loop user is left."""

    def __init__(self, name: str = "aivoco-clock", grid_s: float = GRID_S) -> None:
        self.name = name
        self.grid_s = grid_s
        self._origin = time.monotonic()
        self.wakeups = 0  # how often the thread woke to run jobs (the benchmarks read it)
        # A plain lock, taken by C code: each job's run takes it twice, and
        # `threading.Condition`'s own `with` and `notify_all` are Python calls (about a quarter of
        # the clock's bookkeeping in a yappi profile of one call; docs/performance.md#clock).
        # The condition on it only serves `cancel()` waiting for a running job.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._cancel_waiters = 0  # cancel() calls waiting for a job to finish
        self._entries: list[_Entry] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop_users = 0
        self._running: _Entry | None = None
        self._after: list[Callable[[], None]] = []  # run when this wake-up's jobs are done
        self._waking = False  # the jobs of a wake-up are running (on the loop)

    def every(
        self, period_s: float, job: Job, on_error: ErrorHandler, urgent: bool = False
    ) -> ClockHandle:
        """Run `job(now)` every `period_s`, the first time at the next grid point (a job of
        a longer period: on its quietest phase, within one period). `urgent` jobs run first
        in a wake-up: an uplink's frame is late by every job run before it, while a
        virtual speaker or an observer only needs to run within its period (fifty calls
        in one process: the fiftieth call's frame waits for 49 others, not 149)."""
        with self._lock:
            first = time.monotonic()
            steps = round(period_s / self.grid_s)
            if not urgent and steps > 1:
                first = self._quietest_phase(first, steps)
            entry = _Entry(job, period_s, on_error, first, urgent)
            if urgent:  # kept in front, in the order they came
                self._entries.insert(sum(e.urgent for e in self._entries), entry)
            else:
                self._entries.append(entry)
            loop = self._start()
        self._call_soon(loop, self._reschedule)
        return ClockHandle(self, entry)

    # -- the thread: an event loop, shared with the sts connections ---------------------
    def acquire_loop(self) -> asyncio.AbstractEventLoop:
        """The clock's event loop (its thread started if needed), for sockets to share;
        pair each call with `release_loop()`."""
        with self._lock:
            self._loop_users += 1
            return self._start()

    def release_loop(self) -> None:
        """One loop user fewer; with no user and no job left the thread ends."""
        with self._lock:
            self._loop_users -= 1
            thread = self._stop_if_idle()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=3)

    def on_loop(self) -> bool:
        """Whether the caller runs on the clock's thread (a job or a loop callback)."""
        return threading.current_thread() is self._thread

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:  # under self._lock
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_loop_exception)
            thread = threading.Thread(target=_serve, args=(loop,), name=self.name, daemon=True)
            self._loop, self._thread = loop, thread
            thread.start()
        return self._loop

    def _stop_if_idle(self) -> threading.Thread | None:
        """Under self._lock: stop the loop when nothing uses it (the thread it ran on)."""
        loop, thread = self._loop, self._thread
        if loop is None or self._entries or self._loop_users > 0:
            return None
        self._loop = self._thread = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._call_soon(loop, loop.stop)
        return thread

    @staticmethod
    def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # closed meanwhile: a newer loop serves
            loop.call_soon_threadsafe(fn)

    def _reschedule(self) -> None:
        """On the loop: the timer for the next wake-up (the grid point of the next job)."""
        with self._lock:
            loop = self._loop
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if loop is None or not self.on_loop():
                return  # an old loop stopping: the new one has its own timer
            if not self._entries:
                self._stop_if_idle()
                return
            wake = self._on_grid(min(e.next for e in self._entries))
            # The loop's time is time.monotonic(); it wakes at or after `wake`, never before.
            self._timer = loop.call_at(wake, self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._timer = None
            now = time.monotonic()
            slot = self._slot(now)
            due = [e for e in self._entries if e.next <= slot + SAME_TIME_S]
            if due:
                self.wakeups += 1
        self._waking = True
        try:
            for entry in due:
                self._run_one(entry, slot)
            self._run_after()
        finally:
            self._waking = False
        self._reschedule()

    def run_if_due(self) -> None:
        """From a socket's callback on the loop: run the wake-up whose time has come
        first. asyncio runs the callbacks of every ready socket before the timers that
        fell due in the same turn, so with fifty agent calls reading, the uplinks'
        frames waited for fifty reads (docs/performance.md#reader)."""
        timer = self._timer
        if timer is None or self._waking or not self.on_loop():
            return
        if timer.when() <= time.monotonic():
            timer.cancel()
            self._wake()

    def _quietest_phase(self, first: float, steps: int) -> float:
        """The first run of a job that runs every `steps` grid points, on the phase the
        fewest other such jobs use: fifty calls' speakers and observers (every 40 ms)
        then split between even and odd points instead of all landing on one, which
        halves the longest wake-up (docs/performance.md#clock)."""
        start = self._on_grid(first)

        def phase(t: float) -> int:
            return round((self._on_grid(t) - self._origin) / self.grid_s) % steps

        load = [0] * steps
        for e in self._entries:
            if not e.urgent:
                load[phase(e.next)] += 1
        candidates = [start + i * self.grid_s for i in range(steps)]
        return min(candidates, key=lambda t: (load[phase(t)], t))

    def _cancel(self, entry: _Entry) -> None:
        with self._lock:
            entry.cancelled = True
            if entry in self._entries:
                self._entries.remove(entry)
            if self.on_loop():
                return
            self._cancel_waiters += 1
            try:
                while self._running is entry:
                    self._cond.wait()
            finally:
                self._cancel_waiters -= 1

    def after_batch(self, fn: Callable[[], None]) -> None:
        """Run `fn()` once this wake-up's jobs are all done (at once if not called from a
        job). A job that hands work to another thread (the sts uplink: a frame for the
        event loop) wakes that thread here: woken mid-batch, it would take the
        interpreter lock back and forth with the jobs still to run (measured: three
        times the loop thread's wake-ups and more kernel time), and with many calls it
        would be woken once per call instead of once per step."""
        if not self.on_loop() or self._running is None:
            fn()
            return
        if fn not in self._after:  # the same wake-up asked once per batch
            self._after.append(fn)

    def _run_after(self) -> None:
        after, self._after = self._after, []
        for fn in after:
            try:
                fn()
            except Exception:  # a hand-off failed: its owner logs what it lost
                log.exception("a clock batch callback failed")

    def _on_grid(self, t: float) -> float:
        """The first grid point at or after `t`."""
        steps = math.ceil((t - self._origin - SAME_TIME_S) / self.grid_s)
        return self._origin + max(0, steps) * self.grid_s

    def _slot(self, now: float) -> float:
        """The last grid point at or before `now`: the time every job of this wake-up is
        given. A schedule that starts at a slot then stays on the grid (its items fall
        on grid points, not just after them, which would make each wait a whole step),
        and the jobs of one wake-up agree on the time. Late wake-ups show as slip where
        frames are handed over (time.monotonic(), aivoco/scenario/probe.py)."""
        steps = math.floor((now - self._origin + SAME_TIME_S) / self.grid_s)
        return self._origin + max(0, steps) * self.grid_s

    def _run_one(self, entry: _Entry, now: float) -> None:
        with self._lock:
            if entry.cancelled:
                return
            self._running = entry
        keep: bool | float | None = True
        try:
            keep = entry.job(now)
        except BaseException as exc:  # reported to the job's owner, never lost
            keep = False
            try:
                entry.on_error(exc)
            except Exception:
                log.exception("a clock job's error handler failed")
        with self._lock:
            self._running = None
            if isinstance(keep, float):  # the job knows when its next item is due
                # Never twice in one wake-up: a time at or before this one (a job that
                # found nothing due, by a float's last digit) means the next grid point.
                entry.next = keep if keep > now + SAME_TIME_S else now + self.grid_s
            else:
                # Jobs keep their own time (a Schedule), so a late run is not repeated:
                # the next one is a period after this one.
                entry.next += entry.period_s
                if entry.next <= now:
                    entry.next = now + entry.period_s
            if keep is False and entry in self._entries:
                entry.cancelled = True
                self._entries.remove(entry)
            if self._cancel_waiters:
                self._cond.notify_all()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Library errors on the loop (socket.io's tasks) go to the log, never to the screen.
    exc = context.get("exception")
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
    log.warning("event loop error: %s", redact(str(detail)))


_shared: Clock | None = None
_shared_lock = threading.Lock()


def shared_clock() -> Clock:
    """The process's clock: every call in the process shares its thread."""
    global _shared  # noqa: PLW0603 - one per process, created on first use
    with _shared_lock:
        if _shared is None:
            _shared = Clock()
        return _shared
