"""The timeline's geometry and look, kept free of matplotlib so tests can predict it.

A call is drawn as rows of equal time span (like lines of text): a short call is one
row, an hour is twelve rows of five minutes, so a few-second turn stays a few
millimetres wide however long the call. Every row has the same scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DPI = 100
WIDTH_IN = 16.0
ROW_IN = 2.3
HEADER_IN = 0.5
LATENCY_HEIGHT_IN = 2.4
SINGLE_ROW_MAX_S = 90.0
MAX_ROWS = 12
ROW_SPANS_S = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0)
MIN_SPAN_S = 1.0
# Labels (latency figures, function names) are drawn only while a row has this few of
# them; past that they would overlap, and the turns table has every number anyway.
MAX_LABELS_PER_ROW = 40
SLOW_MS = 1500.0  # a latency drawn in red: a pause people notice in conversation

# y positions inside a row: two level lanes on top, then one line per marker lane.
YOU_LANE = (3.3, 1.0)  # (bottom, height)
AGENT_LANE = (2.1, 1.0)
GAP_Y = 3.2  # between the two level lanes: where latency labels go
MARKER_Y = {"functions": 1.7, "playback": 1.3, "problems": 0.9, "connection": 0.5, "other": 0.1}
Y_LIMITS = (-0.2, 4.4)
DB_RANGE = (-60.0, 0.0)  # a lane's bottom and top, in dBFS

COLORS = {
    "you": "#1f77b4",
    "you_band": "#d6e6f5",
    "agent": "#e6550d",
    "agent_band": "#fde0c5",
    "latency": "#f2f2f2",
    "slow": "#d62728",
    "info": "#555555",
    "warn": "#e69f00",
    "error": "#d62728",
    "functions": "#7b3fb5",
    "ok": "#2ca02c",
    "span": "#bbbbbb",
    "end": "#333333",
}
# Words beside markers (function calls are labelled with the function's name).
LABELS = {
    "ready": "ready",
    "input_finished": "input end",
    "hangup": "hang-up",
    "session_ended": "ended",
    "reconnecting": "reconnecting",
    "reconnected": "reconnected",
    "clear": "barge-in",
    "barge_in": "barge-in",
    "underrun": "underrun",
    "protocol_error": "protocol error",
    "error": "error",
}
LABEL_GAP = 0.04  # of a row's span: a closer label in the same lane would overprint
SYMBOLS = {
    "function_call": "v",
    "function_result": "^",
    "function_report": ".",
    "mark": "|",
    "mark_played": "|",
    "clear": "X",
    "barge_in": "X",
    "underrun": "s",
    "protocol_error": "x",
    "error": "D",
    "reconnecting": "<",
    "reconnected": ">",
    "hangup": "o",
    "session_ended": "o",
}


@dataclass(frozen=True)
class Rows:
    span_s: float  # time per row
    count: int

    def start(self, index: int) -> float:
        return index * self.span_s


def rows_for(duration_s: float) -> Rows:
    duration = max(duration_s, MIN_SPAN_S)
    if duration <= SINGLE_ROW_MAX_S:
        return Rows(duration, 1)
    for span in ROW_SPANS_S:
        if math.ceil(duration / span) <= MAX_ROWS:
            return Rows(span, math.ceil(duration / span))
    span = math.ceil(duration / MAX_ROWS / 600) * 600  # whole 10-minute steps
    return Rows(float(span), math.ceil(duration / span))


def timeline_size_in(duration_s: float) -> tuple[float, float]:
    return WIDTH_IN, HEADER_IN + rows_for(duration_s).count * ROW_IN


def timeline_size_px(duration_s: float) -> tuple[int, int]:
    """The PNG's (width, height) in pixels for a call this long."""
    w, h = timeline_size_in(duration_s)
    return round(w * DPI), round(h * DPI)


_TICK_STEPS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def tick_step(span_s: float, most: int = 12) -> float:
    """A round tick interval giving at most `most` ticks per row (m:ss stays readable)."""
    step = next((s for s in _TICK_STEPS_S if span_s / s <= most), None)
    # Past the list (rows of hours: a bogus duration), whole 10-minute steps that still
    # give at most `most` ticks, never millions.
    return step if step is not None else math.ceil(span_s / most / 600) * 600.0


def clock(seconds: float, tenths: bool = False) -> str:
    """m:ss (or h:mm:ss; m:ss.s with `tenths`) for axis ticks and tables."""
    s = max(0.0, seconds)
    h, rest = divmod(int(s), 3600)
    m, sec = divmod(rest, 60)
    text = f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
    return text + f".{int(s * 10) % 10}" if tenths else text
