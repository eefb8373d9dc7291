"""The shared clock: jobs due at different phases run together on its grid.

A call's uplink, virtual speaker and observer each keep their own schedule; on one
thread, each at its own phase, they woke it three times per 20 ms frame, and fifty
calls fifty times as often (docs/performance.md#clock). These tests check the grid's
promise without asserting speed: every wake-up runs every job then due, a job never runs
before its time, and it runs at most one grid step late (plus scheduling slack).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from aivoco.audio.clock import Clock
from aivoco.audio.schedule import SAME_TIME_S, Schedule


def _raise(exc: BaseException) -> None:
    raise AssertionError(f"a clock job failed: {exc!r}")


class PhasedJob:
    """Due every `period_s`, at `offset_s` past the grid's phase; records its runs."""

    def __init__(self, clock: Clock, first_s: float, period_s: float, runs: int) -> None:
        self.clock = clock
        self.period_s = period_s
        self.first_s = first_s
        self.next_s = first_s
        self.left = runs
        self.ran: list[tuple[int, float, float]] = []  # (wake-up, due, ran at)
        self.woke: list[float] = []  # time.monotonic() at each run: the thread's own time
        self.done = threading.Event()

    def __call__(self, now: float) -> bool | float:
        if now < self.next_s - 1e-6:  # the clock's first (immediate) run
            return self.next_s
        self.ran.append((self.clock.wakeups, self.next_s, now))
        self.woke.append(time.monotonic())
        self.left -= 1
        if self.left == 0:
            self.done.set()
            return False
        self.next_s = self.first_s + len(self.ran) * self.period_s
        return self.next_s


def run_jobs(grid_s: float, offsets_s: list[float], runs: int) -> tuple[Clock, list[PhasedJob]]:
    clock = Clock("test-clock", grid_s=grid_s)
    # Offsets from a grid point a little ahead, so that every job's first item falls in
    # the same step however long this thread was preempted.
    base = clock._on_grid(time.monotonic() + 3 * grid_s)
    jobs = [PhasedJob(clock, base + off, grid_s, runs) for off in offsets_s]
    for job in jobs:
        clock.every(grid_s, job, _raise)
    for job in jobs:
        assert job.done.wait(10), "a job stopped running"
    return clock, jobs


def test_jobs_at_different_phases_share_each_wake_up() -> None:
    grid_s = 0.02
    _, jobs = run_jobs(grid_s, [0.003, 0.009, 0.017], runs=15)
    # Each job's k-th run happened in the same wake-up as the others' k-th run.
    for k in range(15):
        assert len({job.ran[k][0] for job in jobs}) == 1, [job.ran[k] for job in jobs]


def test_a_job_never_runs_early_and_waits_at_most_one_grid_step() -> None:
    grid_s = 0.02
    _, jobs = run_jobs(grid_s, [0.001, 0.011, 0.019], runs=10)
    for job in jobs:
        for (_, due, ran), woke in zip(job.ran, job.woke, strict=True):
            assert ran >= due, (due, ran)  # never early
            # The time a job is given is the last grid point before the thread woke: one
            # step after its due time at most, unless the thread itself woke later (a
            # busy machine); then the wake-up's time, never a step further.
            assert woke - grid_s - SAME_TIME_S < ran <= woke + SAME_TIME_S, (ran, woke)
            assert ran - due <= grid_s + 1e-6 or woke - due > grid_s, (due, ran, woke)


def test_a_schedule_started_by_the_clock_stays_on_its_grid() -> None:
    """A job that keeps its own Schedule (as the uplink does) is run when its items are
    due, not one step after each: the first run starts the schedule on a grid point."""
    grid_s = 0.02
    clock = Clock("test-clock", grid_s=grid_s)
    schedule = Schedule(grid_s)
    given: list[tuple[float, int]] = []
    done = threading.Event()

    def job(now: float) -> bool | float:
        given.append((now, schedule.due(now)))
        if len(given) == 20:
            done.set()
            return False
        after = schedule.next_due()
        assert after is not None
        return after

    clock.every(grid_s, job, _raise)
    assert done.wait(10)
    assert schedule.start is not None
    # Every run released frames (no run found its item one float-epsilon in the future),
    # and each was given exactly its item's due time.
    assert all(count >= 1 for _, count in given), given
    for now, _ in given:
        k = round((now - schedule.start) / grid_s)
        assert now == pytest.approx(schedule.start + k * grid_s, abs=1e-6)


def test_wake_ups_follow_the_grid_not_the_number_of_jobs() -> None:
    grid_s = 0.02
    clock, jobs = run_jobs(grid_s, [0.002 * i for i in range(10)], runs=10)
    runs = sum(len(job.ran) for job in jobs)
    assert runs == 100
    # Ten phases, one grid: about one wake-up per grid step (a first wake-up or two for
    # the jobs' immediate first runs), never one per job.
    assert clock.wakeups <= 10 + 3, clock.wakeups


@pytest.mark.parametrize("grid_s", [0.01, 0.05])
def test_a_job_due_on_a_grid_point_is_not_pushed_to_the_next(grid_s: float) -> None:
    clock = Clock("test-clock", grid_s=grid_s)
    ran = threading.Event()
    seen: list[float] = []
    target = clock._on_grid(time.monotonic() + grid_s)  # exactly a grid point

    def job(now: float) -> bool | float:
        if now < target:
            return target
        seen.append(now - target)
        ran.set()
        return False

    clock.every(grid_s, job, _raise)
    assert ran.wait(5)
    assert clock._on_grid(target) == pytest.approx(target)
    assert seen[0] >= 0.0


def test_urgent_jobs_run_first_in_a_wake_up() -> None:
    """Uplinks are urgent: in a wake-up shared by many calls, every frame goes out before
    any speaker or observer runs, whatever order the jobs were added in."""
    grid_s = 0.02
    clock = Clock("test-clock", grid_s=grid_s)
    order: list[tuple[int, str]] = []
    done = threading.Event()
    start = clock._on_grid(time.monotonic() + 2 * grid_s)

    def job(name: str) -> Callable[[float], bool | float]:
        def run(now: float) -> bool | float:
            if now < start:
                return start
            order.append((clock.wakeups, name))
            if len(order) == 6:
                done.set()
            return False

        return run

    for name, urgent in [("speaker1", False), ("uplink1", True), ("observer1", False)]:
        clock.every(grid_s, job(name), _raise, urgent=urgent)
    for name, urgent in [("speaker2", False), ("uplink2", True), ("observer2", False)]:
        clock.every(grid_s, job(name), _raise, urgent=urgent)
    assert done.wait(5)
    assert len({wake for wake, _ in order}) == 1, order
    names = [name for _, name in order]
    assert names[:2] == ["uplink1", "uplink2"], names
    assert sorted(names[2:]) == ["observer1", "observer2", "speaker1", "speaker2"]


def test_a_job_that_finds_nothing_due_does_not_spin_the_clock() -> None:
    """A job whose next time is this wake-up's own (off by a float's last digit, or a
    schedule that released nothing) waits for the next grid point instead of being run
    again at once, which would spin the clock's thread until the time moved on."""
    grid_s = 0.02
    clock = Clock("test-clock", grid_s=grid_s)
    runs: list[float] = []
    done = threading.Event()

    def job(now: float) -> bool | float:
        runs.append(now)
        if len(runs) == 5:
            done.set()
            return False
        return now + 1e-12  # "run me again now": never due in this wake-up again

    clock.every(grid_s, job, _raise)
    assert done.wait(5)
    steps = [b - a for a, b in itertools.pairwise(runs[1:])]
    assert all(step == pytest.approx(grid_s, abs=1e-6) for step in steps), steps
    assert clock.wakeups <= 6, clock.wakeups


def test_jobs_of_a_longer_period_spread_over_the_grid_points() -> None:
    """Four jobs every two grid steps (a call's speaker and observer, two calls): two
    run on each phase, so no wake-up carries all four."""
    grid_s = 0.02
    clock = Clock("test-clock", grid_s=grid_s)
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def job(name: str) -> Callable[[float], bool | None]:
        runs = 0

        def run(now: float) -> bool | None:
            nonlocal runs
            runs += 1
            seen.append((clock.wakeups, name))
            if runs == 4 and name == "d":
                done.set()
            return False if runs == 4 else None

        return run

    for name in "abcd":
        clock.every(2 * grid_s, job(name), _raise)
    assert done.wait(5)
    by_wake: dict[int, set[str]] = {}
    for wake, name in seen:
        by_wake.setdefault(wake, set()).add(name)
    assert max(len(names) for names in by_wake.values()) == 2, by_wake


def test_after_batch_runs_once_the_wake_ups_jobs_are_done() -> None:
    """A job handing work to another thread wakes it after the batch (the sts uplink's
    frames: the event loop then does not compete with the jobs still to run)."""
    grid_s = 0.02
    clock = Clock("test-clock", grid_s=grid_s)
    order: list[str] = []
    done = threading.Event()
    start = clock._on_grid(time.monotonic() + 2 * grid_s)

    def wake() -> None:
        order.append("wake")
        done.set()

    def job(name: str, hand_off: bool) -> Callable[[float], bool | float]:
        def run(now: float) -> bool | float:
            if now < start:
                return start
            order.append(name)
            if hand_off:
                clock.after_batch(wake)
            return False

        return run

    clock.every(grid_s, job("uplink1", True), _raise, urgent=True)
    clock.every(grid_s, job("uplink2", True), _raise, urgent=True)
    clock.every(grid_s, job("speaker", False), _raise)
    assert done.wait(5)
    time.sleep(0.05)
    assert order == ["uplink1", "uplink2", "speaker", "wake"], order  # once, at the end
    outside: list[int] = []
    clock.after_batch(lambda: outside.append(1))  # not from a job: at once
    assert outside == [1]


def test_the_clock_thread_is_the_event_loop_the_sockets_share() -> None:
    """Jobs and loop callbacks run on one thread (docs/performance.md#batch): a frame a
    job makes is sent without waking a second thread. The thread lives while a job or a
    loop user is left, and ends once both are gone."""
    clock = Clock("test-clock-loop", grid_s=0.01)
    loop = clock.acquire_loop()
    seen: dict[str, threading.Thread] = {}
    sent = threading.Event()

    def job(now: float) -> bool:
        seen["job"] = threading.current_thread()

        def send() -> None:  # what the sts driver's batched emit does
            seen["send"] = threading.current_thread()
            sent.set()

        clock.after_batch(lambda: (loop.call_soon(send), None)[1])
        return False

    clock.every(0.01, job, _raise)
    assert sent.wait(5)
    assert seen["job"] is seen["send"]
    assert seen["job"].name == "test-clock-loop"
    assert loop.is_running()  # no job left, but a loop user
    clock.release_loop()
    deadline = time.monotonic() + 5
    while seen["job"].is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not seen["job"].is_alive()
    assert loop.is_closed()


def test_a_blocking_run_on_the_loop_thread_is_refused_not_a_deadlock() -> None:
    import asyncio

    from aivoco.errors import ProtocolMisuseError
    from aivoco.protocols._loop import SharedLoop

    shared = SharedLoop()
    loop = shared.acquire()
    try:
        assert shared.run(asyncio.sleep(0, result=7), 5) == 7  # from another thread: fine
        outcome: list[BaseException] = []

        done = threading.Event()

        def on_loop() -> None:
            try:
                shared.run(asyncio.sleep(0), 5)
            except ProtocolMisuseError as exc:
                outcome.append(exc)
            done.set()

        loop.call_soon_threadsafe(on_loop)
        assert done.wait(5)
        assert len(outcome) == 1
    finally:
        shared.release()


def test_a_socket_callback_runs_the_due_wake_up_first() -> None:
    """asyncio runs ready sockets' callbacks before the timers due in the same turn, so
    the agent calls' reader asks the clock to run a due wake-up first
    (docs/performance.md#reader): the job runs inside the callback, once."""
    clock = Clock("test-clock-due", grid_s=0.01)
    loop = clock.acquire_loop()
    runs: list[tuple[str, float]] = []
    order: list[str] = []
    done = threading.Event()

    def job(now: float) -> None:
        runs.append((threading.current_thread().name, now))
        order.append("job")

    def busy_socket_callback() -> None:
        # The loop is held here past the job's time, as fifty reads would hold it.
        time.sleep(0.05)
        before = len(runs)
        clock.run_if_due()
        order.append("read")
        assert len(runs) == before + 1  # the due job ran here, before the read
        done.set()

    handle = clock.every(0.01, job, _raise)
    try:
        time.sleep(0.05)  # a few regular runs
        loop.call_soon_threadsafe(busy_socket_callback)
        assert done.wait(5)
        time.sleep(0.05)
    finally:
        handle.cancel()
        clock.release_loop()
    assert order[order.index("read") - 1] == "job"
    slots = [now for _, now in runs]
    assert len(slots) == len(set(slots))  # no grid point ran twice
    assert {name for name, _ in runs} == {"test-clock-due"}
    clock.run_if_due()  # off the loop: nothing happens


def test_cancel_from_another_thread_waits_for_a_running_job() -> None:
    """cancel() returns only once a run in progress is over, and the job never runs
    again: the clock only wakes a waiting canceller when one waits (a plain lock
    otherwise), so this is the path that must still be woken."""
    clock = Clock(name="test-clock-cancel", grid_s=0.01)
    started, release = threading.Event(), threading.Event()
    runs: list[float] = []
    finished: list[float] = []

    def job(now: float) -> None:
        runs.append(now)
        if len(runs) == 2:  # the second run holds the clock until released
            started.set()
            release.wait(5)
            finished.append(time.monotonic())

    handle = clock.every(0.01, job, _raise)
    assert started.wait(5)
    returned: list[float] = []

    def cancel() -> None:
        handle.cancel()
        returned.append(time.monotonic())

    canceller = threading.Thread(target=cancel, daemon=True)
    canceller.start()
    time.sleep(0.1)
    assert not returned  # still waiting: the job is running
    release.set()
    canceller.join(5)
    assert not canceller.is_alive(), "cancel() was never woken"
    assert returned and finished and returned[0] >= finished[0]
    time.sleep(0.05)
    assert len(runs) == 2  # never again after cancel() returned
