"""A device measurement tried again when the machine, not the code, disturbed it.

A real PortAudio stream on a busy machine (the suite's other workers, a CI host's
neighbours) can miss a period: the device underflows, and a test about what a healthy
stream plays would fail for the machine's sake. Such a test measures again, up to
`TRIES` times, as a user would call again. A fault of ours disturbs every try and still
fails, on the last try's figures; each disturbed try is printed (pytest shows it with
the test's output), so a run that needed a second try says so.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from aivoco.audio.playout import PlayerStats

T = TypeVar("T")

TRIES = 3


def quiet_try(measure: Callable[[int], T], disturbed: Callable[[T], str | None]) -> T:
    """`measure(n)` for n = 1.. until `disturbed(result)` names nothing, or the last try;
    that try's result."""
    for n in range(1, TRIES + 1):
        result = measure(n)
        why = disturbed(result)
        if why is None or n == TRIES:
            return result
        print(f"try {n} of {TRIES} disturbed ({why}); measuring again", file=sys.stderr)
    raise AssertionError("unreachable: the last try returns")


def underflowed(stats: PlayerStats) -> str | None:
    """Why a speaker's try does not count: what the machine did to it, or None."""
    if stats.device_underflows:
        return f"{stats.device_underflows} device underflow(s)"
    if stats.jitter.underruns:
        return f"{stats.jitter.underruns} jitter underrun(s)"
    return None
