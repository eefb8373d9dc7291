"""Who spoke when, as (start, end) bands for the timeline.

Your turns come from the transcript (`user_speech_end`: the same voice detection the
latency figures are measured against). The agent's come from the recording's right
channel, which is what was actually played, barge-in cuts included; the transcript only
says when an answer began, so without a recording each band runs to the next thing that
ends it and is drawn as an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from aivoco.report.levels import Levels, segments
from aivoco.report.model import CallModel

_MIN_BAND_S = 0.05


@dataclass(frozen=True)
class Bands:
    user: list[tuple[float, float]]
    agent: list[tuple[float, float]]
    agent_estimated: bool  # no recording: agent band ends are guesses


def user_bands(model: CallModel) -> list[tuple[float, float]]:
    out = []
    for turn in model.turns:
        if turn.speech_start is not None and turn.speech_end is not None:
            out.append((turn.speech_start, max(turn.speech_end, turn.speech_start + _MIN_BAND_S)))
    return out


def _estimated_agent_bands(model: CallModel) -> list[tuple[float, float]]:
    stops = [t.speech_start for t in model.turns if t.speech_start is not None]
    stops += [m.t for m in model.markers if m.kind in ("clear", "barge_in", "hangup")]
    stops.append(model.duration_s)
    out = []
    for turn in model.turns:
        if turn.reply_t is None:
            continue
        later = [s for s in stops if s > turn.reply_t + _MIN_BAND_S]
        out.append((turn.reply_t, min(later, default=turn.reply_t + _MIN_BAND_S)))
    return out


def call_bands(model: CallModel, levels: Levels | None) -> Bands:
    if levels is not None:
        return Bands(user_bands(model), segments(levels.agent_db, levels.window_s), False)
    return Bands(user_bands(model), _estimated_agent_bands(model), True)
