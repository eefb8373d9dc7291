"""What a report shows, independent of how it is drawn: turns, markers, spans, figures.

Built from the records by `aivoco.report.build`, drawn by `figures` and `page`. Times are
seconds on the transcript's clock (`t`: since the call went live), which is also the
recording's clock: the recorder starts with the call.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Marker lanes on the timeline, top to bottom; every marker belongs to one.
LANES = ("functions", "playback", "problems", "connection", "other")


@dataclass
class Marker:
    t: float
    kind: str  # the record type
    lane: str  # one of LANES
    text: str  # one line for the events table (not yet redacted)
    severity: str = "info"  # "info", "warn" or "error": the marker's colour


@dataclass
class Span:
    """Something with a duration on the timeline (a reconnect, a function running)."""

    start: float
    end: float | None  # None: still open when the transcript ends
    kind: str
    label: str


@dataclass
class FunctionUse:
    t: float
    name: str
    call_id: str | None
    arguments: Any
    ok: bool | None = None  # None: no result recorded
    result: Any = None
    done_t: float | None = None
    duration_ms: float | None = None


@dataclass
class Turn:
    """One exchange: what you said, then what the agent did until you spoke again.

    Turn 0 holds what the agent did before you first spoke (a greeting, say); it exists
    only when something happened then.
    """

    index: int
    speech_start: float | None = None
    speech_end: float | None = None
    speech_s: float | None = None
    reply_t: float | None = None  # first agent audio of the answer
    latency_ms: float | None = None
    texts: list[str] = field(default_factory=list)
    functions: list[FunctionUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # barge-ins, per-turn figures
    figures: dict[str, float] = field(default_factory=dict)  # extra per-turn numbers

    @property
    def start(self) -> float | None:
        return self.speech_start if self.speech_start is not None else self.reply_t


@dataclass
class Credits:
    available: float | None = None
    cost_per_minute: float | None = None
    latest: float | None = None  # the last balance the server sent
    used: float | None = None
    remaining: float | None = None
    final: bool = False  # used/remaining are the server's totals, not an estimate


@dataclass
class CallModel:
    protocol: str | None = None
    endpoint: str | None = None
    started: str | None = None  # ISO time of the first record
    end_t: float = 0.0  # the last record's t
    turns: list[Turn] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    credits: Credits = field(default_factory=Credits)
    summary: dict[str, Any] | None = None  # the `summary` record, when the call ended
    end_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    exit_code: int | None = None
    counts: Counter[str] = field(default_factory=Counter)  # records per type
    unknown: Counter[str] = field(default_factory=Counter)  # types this version can't read

    @property
    def duration_s(self) -> float:
        value = self.counter("duration_s")
        return self.end_t if value is None else max(value, self.end_t)

    @property
    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None]

    def counter(self, key: str) -> float | None:
        """A numeric field of the summary record (None without one)."""
        if self.summary is None:
            return None
        value = self.summary.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if math.isfinite(value) else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (as numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
