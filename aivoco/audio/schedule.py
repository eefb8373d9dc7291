"""Audio-time pacing: item k of a stream is due at start + k x period.

Every paced part (file sources, a scenario's script, virtual speakers) keeps its own
`Schedule` and works out from it how much is due, so a late wake-up catches up instead of
drifting, and the same input gives the same frames on a busy machine. The shared clock
(`clock.py`) decides when they run; this module decides what is due.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Times this close are the same instant (float sums such as start + k x period).
SAME_TIME_S = 1e-6


class Schedule:
    """Item k is due at start + k x period_s (k from 0; the start is the first call).

    A schedule starved for over `max_gap_s` (a suspended process, a loaded machine)
    either skips the missed items and counts the time (`skipped_s`: a recording puts
    that much silence on the timeline), so a sender does not burst a backlog onto the
    wire, or, with `catch_up` (a virtual speaker, which like a real one never pauses),
    makes them all due at once."""

    def __init__(self, period_s: float, catch_up: bool = False, max_gap_s: float = 1.0) -> None:
        self.period_s = period_s
        self.catch_up = catch_up
        self.max_gap_s = max_gap_s
        self.skipped_s = 0.0
        self.start: float | None = None
        self.taken = 0  # items released so far

    def due(self, now: float) -> int:
        """How many items are due at `now` that were not released yet (and take them)."""
        if self.start is None:
            self.start = now
        # Absolute tolerance: monotonic times are large floats (months of uptime leave
        # ~1e-9 s of precision), and an item due at a grid point must be released there.
        reached = math.floor((now - self.start + SAME_TIME_S) / self.period_s) + 1
        behind = reached - self.taken
        if not self.catch_up and behind * self.period_s > self.max_gap_s:
            skipped = behind - 1  # the newest one goes out now; the rest are skipped
            self.skipped_s += skipped * self.period_s
            self.start += skipped * self.period_s
            reached -= skipped
        count = max(0, reached - self.taken)
        self.taken += count
        return count

    def next_due(self) -> float | None:
        if self.start is None:
            return None
        return self.start + self.taken * self.period_s


class PacedSource:
    """The pacing every timed source shares (FileSource, the scenario's ScriptSource):
    frames on a `Schedule`, the time it skipped after a stall, and closing."""

    def __init__(self, schedule: Schedule, sample_rate_hz: int) -> None:
        self.schedule = schedule
        self.sample_rate_hz = sample_rate_hz
        self._closed = False

    @property
    def lost_frames(self) -> int:
        """Frames of time skipped after a stall (silence on the recording's timeline)."""
        return round(self.schedule.skipped_s * self.sample_rate_hz)

    def start(self) -> None:
        """Nothing to open: pacing starts with the first frame taken."""

    def close(self) -> None:
        self._closed = True

    def next_due(self) -> float | None:
        return self.schedule.next_due()


def paced(
    due: Callable[[float], list[T]], schedule: Schedule, done: Callable[[], bool]
) -> Iterator[T]:
    """A timed source as an iterator that sleeps until each item is due (for a thread of
    its own; the shared clock calls `due` instead)."""
    while not done():
        items = due(time.monotonic())
        if items:
            yield from items
            continue
        after = schedule.next_due()
        if after is not None:
            time.sleep(max(0.0, after - time.monotonic()))
