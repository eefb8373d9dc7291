"""The observer's `output_step` records: one when the speaker's stream settles, one each
time the ladder moves it, none while it settles or stays (docs/devices.md#latency)."""

from __future__ import annotations

from typing import Any

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.jitter import JitterBuffer
from aivoco.audio.playout import PlayerStats
from aivoco.session.lifecycle import Lifecycle
from aivoco.session.observer import STATS_PERIOD_S, Observer, Timers
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.ui.printers import describe_record
from aivoco.wire.driver import NetStats

RATE = 24000


class Speaker:
    """What the observer reads of a speaker; the test sets the step and latency."""

    error = None

    def __init__(self) -> None:
        self.step_ms: int | None = None
        self.latency_ms: float | None = None
        self._jitter: JitterBuffer[Any] = JitterBuffer(RATE, prefill_ms=40)

    def take_played(self) -> AudioChunk:
        return AudioChunk.silence(0, RATE)

    def pop_reached(self) -> list[Any]:
        return []

    def buffered_ms(self) -> float:
        return 0.0

    def stats(self) -> PlayerStats:
        return PlayerStats(self._jitter.stats(), 0, RATE, self.latency_ms, self.step_ms)


class Driver:
    net = NetStats()

    def answer_mark(self, name: str) -> None:
        raise AssertionError("no marks here")


class Records:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_record(self, record: dict[str, Any]) -> None:
        if record["type"] == "output_step":
            self.seen.append(record)


def test_the_speakers_step_is_recorded_when_it_settles_and_when_it_moves() -> None:
    speaker, records, bus = Speaker(), Records(), RecordBus()
    bus.subscribe(records)
    state = CallState("sts", "http://127.0.0.1", "test", has_credits=False)
    observer = Observer(
        speaker, Driver(), Lifecycle(), state=state, bus=bus,  # type: ignore[arg-type]
        recorder=None, timers=Timers(60.0, None),
    )  # fmt: skip
    now = 100.0

    def ticks(n: int) -> None:
        nonlocal now
        for _ in range(n):
            observer.tick(now)
            now += STATS_PERIOD_S

    ticks(3)  # settling: nothing to say
    speaker.step_ms, speaker.latency_ms = 20, 26.3
    ticks(3)
    speaker.step_ms = None  # a step up: the new stream settles
    ticks(2)
    speaker.step_ms, speaker.latency_ms = 100, 128.9
    ticks(3)
    speaker.step_ms, speaker.latency_ms = 20, 22.8  # back down
    ticks(2)
    steps = [(r["step_ms"], r["previous_ms"], r["output_latency_ms"]) for r in records.seen]
    assert steps == [(20, None, 26.3), (100, 20, 128.9), (20, 100, 22.8)]
    said = [describe_record(r) for r in records.seen]
    assert said == [
        "speaker: 20 ms output buffer (26.3 ms measured)",
        "speaker: output buffer 20 -> 100 ms, after an underflow (128.9 ms measured)",
        "speaker: output buffer 100 -> 20 ms, no underflow for a while (22.8 ms measured)",
    ]
    # The live view's transcript tells the moves, not the first settling.
    shown = [e.text for e in state.snapshot().transcript if e.text.startswith("speaker:")]
    assert shown == said[1:]


def test_a_crafted_output_step_record_is_told_in_one_short_line() -> None:
    said = describe_record({"type": "output_step", "step_ms": "x" * 10_000, "previous_ms": None})
    assert said is not None and len(said) < 60 and "\n" not in said
    said = describe_record({"type": "output_step", "step_ms": 20, "previous_ms": [1, 2]})
    assert said == "speaker: output buffer [1, 2] -> 20 ms, no underflow for a while"
