"""Checking what happened against what the scenario expected, one message per failure.

Every failure says what was expected and what happened, in one line that starts with
where it happened (`turn 1: reply_within 2.5 s: first agent audio after 3.41 s`). Text
from the agent is shown through `terminal_safe` and clipped: it came from the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aivoco.scenario.model import EndChecks, Expect, FunctionExpect, Turn, TurnKind
from aivoco.scenario.script import TurnTiming
from aivoco.session.summary import CallSummary
from aivoco.text import clip, terminal_safe

_SHOWN_TEXT = 120


@dataclass
class TurnResult:
    index: int
    kind: str
    label: str
    started_s: float  # since the call went live
    duration_s: float
    reply_within_s: float | None  # our speech's end -> the first agent audio's arrival
    reply_s: float | None  # the reply on its playout timeline, first to last audio
    agent_audio_s: float
    texts: list[str]
    functions: list[dict[str, Any]]
    timed_out: bool
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_record(self) -> dict[str, Any]:
        return {
            "turn": self.index,
            "kind": self.kind,
            "label": self.label,
            "started_s": round(self.started_s, 3),
            "duration_s": round(self.duration_s, 3),
            "reply_within_s": _r(self.reply_within_s),
            "reply_s": _r(self.reply_s),
            "agent_audio_s": round(self.agent_audio_s, 3),
            "text": self.texts,
            "functions": self.functions,
            "timed_out": self.timed_out,
            "passed": self.passed,
            "failures": self.failures,
        }


def check_turn(turn: Turn, timing: TurnTiming, live_at: float) -> TurnResult:
    heard = timing.heard
    within = None
    if heard.first_audio_at is not None:
        within = heard.first_audio_at - timing.speech_end_at
    result = TurnResult(
        index=turn.index,
        kind=turn.kind.value,
        label=terminal_safe(clip(turn.label, 80)),
        started_s=timing.started_at - live_at,
        duration_s=timing.ended_at - timing.started_at,
        reply_within_s=within,
        reply_s=heard.reply_s,
        agent_audio_s=heard.audio_s,
        texts=[terminal_safe(t) for t in heard.texts],
        functions=[{"name": f.name, "arguments": f.arguments} for f in heard.functions],
        timed_out=timing.timed_out,
    )
    result.failures = [f"turn {turn.index}: {m}" for m in _turn_failures(turn, timing, result)]
    return result


def _turn_failures(turn: Turn, timing: TurnTiming, r: TurnResult) -> list[str]:
    e: Expect = turn.expect
    out: list[str] = []
    listened = timing.ended_at - timing.speech_end_at
    silent = f"no agent audio within {listened:.1f} s"
    since = "of the turn's start" if turn.kind is TurnKind.SILENCE else "the end of our speech"
    if e.no_reply and r.reply_within_s is not None:
        out.append(
            f"no_reply: agent audio {_after(r.reply_within_s)} {since} "
            f"({r.agent_audio_s:.2f} s of it)"
        )
    if e.reply_within_s is not None:
        if r.reply_within_s is None:
            out.append(f"reply_within {e.reply_within_s:g} s: {silent}")
        elif r.reply_within_s > e.reply_within_s:
            late = f"first agent audio after {r.reply_within_s:.2f} s"
            out.append(f"reply_within {e.reply_within_s:g} s: {late}")
    if e.reply_seconds is not None:
        low, high = e.reply_seconds
        if r.reply_s is None:
            out.append(f"reply_seconds [{low:g}, {high:g}]: {silent}")
        elif not low <= r.reply_s <= high:
            out.append(f"reply_seconds [{low:g}, {high:g}]: the reply lasted {r.reply_s:.2f} s")
    text = " ".join(timing.heard.texts)
    shown = _quote(text) if text else "no text"
    for wanted in e.text_contains:
        if wanted.casefold() not in text.casefold():
            out.append(f"text_contains {_quote(wanted)}: the agent said {shown}")
    if e.text_matches is not None and not e.text_matches.search(text):
        out.append(f"text_matches {_quote(e.text_matches.pattern)}: the agent said {shown}")
    if e.function_called is not None:
        problem = _function_failure(e.function_called, r.functions)
        if problem:
            out.append(problem)
    return out


def _after(seconds: float) -> str:
    if seconds < 0:
        return f"{-seconds:.2f} s before"
    return f"{seconds:.2f} s after"


def _quote(text: str) -> str:
    return json.dumps(terminal_safe(clip(text, _SHOWN_TEXT)), ensure_ascii=False)


def _function_failure(want: FunctionExpect, calls: list[dict[str, Any]]) -> str | None:
    expected = f"function_called {want.name}"
    if want.arguments:
        expected += f" {_json(want.arguments)}"
    for call in calls:
        if call["name"] == want.name and subset(want.arguments, call["arguments"]):
            return None
    if not calls:
        return f"{expected}: no function was called"
    seen = "; ".join(
        f"{terminal_safe(clip(str(c['name']), 60))} {_json(c['arguments'])}" for c in calls
    )
    return f"{expected}: called {seen}"


def _json(value: Any) -> str:
    return terminal_safe(clip(json.dumps(value, ensure_ascii=False, default=str), _SHOWN_TEXT))


def subset(expected: Any, actual: Any) -> bool:
    """`expected` is found in `actual`: mappings by key (recursively, extra keys allowed),
    strings case-insensitively, numbers by value (1 == 1.0), lists item by item."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(subset(a, b) for a, b in zip(expected, actual, strict=True))
        )
    if isinstance(expected, str):
        return isinstance(actual, str) and expected.casefold() == actual.casefold()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


def check_end(
    checks: EndChecks, summary: CallSummary, allow_reconnect: bool, reconnects: int
) -> list[str]:
    out = []
    if checks.credits_used_max is not None:
        used = summary.credits.used if summary.credits is not None else None
        if used is None:
            out.append(
                f"credits_used_max {checks.credits_used_max:g}: no credit figure was reported"
            )
        elif used > checks.credits_used_max:
            out.append(f"credits_used_max {checks.credits_used_max:g}: used {used:.4g}")
    if (
        checks.protocol_errors_max is not None
        and summary.protocol_errors > checks.protocol_errors_max
    ):
        out.append(
            f"protocol_errors_max {checks.protocol_errors_max}: "
            f"{summary.protocol_errors} malformed message(s)"
        )
    underruns = summary.playback.underruns
    if checks.underruns_max is not None and underruns > checks.underruns_max:
        out.append(f"underruns_max {checks.underruns_max}: {underruns} playback underrun(s)")
    if reconnects and not allow_reconnect:
        out.append(
            f"the connection was re-established {reconnects} time(s) "
            "(set allow_reconnect: true to accept that)"
        )
    return [f"end: {m}" for m in out]


def reconnects_of(summary: CallSummary, records: int) -> int:
    """Reconnects, read defensively: the summary's count where the driver keeps one,
    else the number of reconnect records the call emitted."""
    counted = getattr(summary, "reconnects", None)
    if isinstance(counted, int) and not isinstance(counted, bool):
        return max(counted, records)
    return records


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
