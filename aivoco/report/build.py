"""Records in, `CallModel` out: one handler per record type, looked up in `HANDLERS`.

Every record is keyed on its `type` only. Adding a type means adding one entry to the
table; a type not in it is counted and shown as a neutral marker, never an error, because
newer aivoco versions write records this one does not know. Handlers read fields with
`.get()`: a record may lack any field but `type`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from aivoco.report.model import CallModel, Credits, FunctionUse, Marker, Span, Turn
from aivoco.report.transcript import Record
from aivoco.text import describe_output_step, output_step_rose

# `user_speech_end` is emitted once the user has been quiet this long after their last
# voiced frame (aivoco.session.turns.USER_HANGOVER_S), so the speech ended this much
# before the record's `t`. Kept here rather than imported: a report reads transcripts
# written by other versions and must not depend on the session's internals.
USER_HANGOVER_S = 0.3
_BASE_FIELDS = frozenset({"type", "t", "time"})
_TEXT_LIMIT = 300


def number(value: Any) -> float | None:
    """A finite number, else None (JSON allows NaN and Infinity; a figure cannot)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def as_json(value: Any, limit: int = _TEXT_LIMIT) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fields_text(record: Record) -> str:
    """The record's own fields as `key=value`, for types with no special wording."""
    parts = [f"{k}={as_json(v, 80)}" for k, v in record.items() if k not in _BASE_FIELDS]
    return " ".join(parts)


class Builder:
    def __init__(self) -> None:
        self.model = CallModel()
        self.turn: Turn | None = None
        self.calls: dict[str, FunctionUse] = {}
        self.reconnect: Span | None = None

    def current_turn(self) -> Turn:
        """The turn events belong to; turn 0 if the agent acts before the user speaks."""
        if self.turn is None:
            self.turn = Turn(index=0)
            self.model.turns.append(self.turn)
        return self.turn

    def new_turn(self) -> Turn:
        self.turn = Turn(index=max((t.index for t in self.model.turns), default=0) + 1)
        self.model.turns.append(self.turn)
        return self.turn

    def mark(self, t: float, kind: str, lane: str, text: str, severity: str = "info") -> None:
        self.model.markers.append(Marker(t, kind, lane, text, severity))


Handler = Callable[[Builder, Record, float], None]


def _connecting(b: Builder, r: Record, t: float) -> None:
    m = b.model
    m.protocol = r.get("protocol") if isinstance(r.get("protocol"), str) else m.protocol
    m.endpoint = r.get("endpoint") if isinstance(r.get("endpoint"), str) else m.endpoint
    b.mark(t, "connecting", "connection", f"connecting to {r.get('endpoint')}")


def _ready(b: Builder, r: Record, t: float) -> None:
    c = b.model.credits
    available, cost = number(r.get("credits_available")), number(r.get("cost_per_minute"))
    c.available = available if c.available is None else c.available
    c.cost_per_minute = cost if cost is not None else c.cost_per_minute
    b.mark(t, "ready", "connection", str(r.get("message") or "session ready"))


def _credits(b: Builder, r: Record, t: float) -> None:
    b.model.credits.latest = number(r.get("credits"))


def _agent_text(b: Builder, r: Record, t: float) -> None:
    if r.get("text") is not None:
        b.current_turn().texts.append(str(r["text"]))


def _user_speech_end(b: Builder, r: Record, t: float) -> None:
    turn = b.new_turn()
    turn.speech_end = max(0.0, t - USER_HANGOVER_S)
    turn.speech_s = number(r.get("duration_s"))
    if turn.speech_s is not None:
        turn.speech_start = max(0.0, turn.speech_end - turn.speech_s)


def _turn(b: Builder, r: Record, t: float) -> None:
    turn = b.current_turn()
    if turn.reply_t is not None:  # a second answer with no speech between: its own row
        turn = b.new_turn()
    turn.reply_t = t
    turn.latency_ms = number(r.get("latency_ms"))
    for key, value in r.items():
        # Newer versions add per-turn figures (first reply byte, first sound, ...).
        figure = number(value)
        if key not in _BASE_FIELDS and key != "latency_ms" and figure is not None:
            turn.figures[key] = figure


def _function_call(b: Builder, r: Record, t: float) -> None:
    name = str(r.get("name") or "?")
    call_id = r.get("call_id") if isinstance(r.get("call_id"), str) else None
    use = FunctionUse(t, name, call_id, r.get("arguments"))
    b.current_turn().functions.append(use)
    if call_id is not None:
        b.calls[call_id] = use
    b.mark(t, "function_call", "functions", f"{name}({as_json(r.get('arguments'))})")


def _find_call(b: Builder, r: Record) -> FunctionUse | None:
    call_id = r.get("call_id")
    if isinstance(call_id, str) and call_id in b.calls:
        return b.calls[call_id]
    # No id (or an unknown one): the latest open call of that name.
    for turn in reversed(b.model.turns):
        for use in reversed(turn.functions):
            if use.name == r.get("name") and use.ok is None:
                return use
    return None


def _function_result(b: Builder, r: Record, t: float) -> None:
    ok = r.get("ok") is not False
    use = _find_call(b, r)
    if use is None:  # a result whose call the transcript lost: keep it anyway
        use = FunctionUse(t, str(r.get("name") or "?"), None, None)
        b.current_turn().functions.append(use)
    use.ok, use.result, use.done_t = ok, r.get("result"), t
    use.duration_ms = number(r.get("duration_ms"))
    word = "returned" if ok else "FAILED"
    b.mark(
        t,
        "function_result",
        "functions",
        f"{use.name} {word}: {as_json(r.get('result'))}",
        "info" if ok else "error",
    )


def _function_report(b: Builder, r: Record, t: float) -> None:
    kind = str(r.get("kind") or "")
    text = f"server: function {kind} {r.get('name') or ''} {as_json(r.get('detail'))}"
    b.mark(t, "function_report", "functions", text, "error" if kind == "error" else "info")


def _mark(b: Builder, r: Record, t: float) -> None:
    played = r["type"] == "mark_played"
    b.mark(t, r["type"], "playback", f"mark {r.get('name')} {'played' if played else 'sent'}")


def _barge_in(b: Builder, r: Record, t: float) -> None:
    cleared = number(r.get("cleared_ms"))
    what = "barge-in" if r["type"] == "barge_in" else "barge-in: clear"
    text = f"{what}: {cleared:g} ms of agent audio cleared" if cleared is not None else what
    extra = fields_text({k: v for k, v in r.items() if k != "cleared_ms"})
    text += f" ({extra})" if extra else ""
    b.current_turn().notes.append(f"{text} at {t:.1f} s")
    b.mark(t, r["type"], "playback", text, "warn")


def _underrun(b: Builder, r: Record, t: float) -> None:
    b.mark(t, "underrun", "problems", f"underrun {fields_text(r)}".strip(), "warn")


def _output_step(b: Builder, r: Record, t: float) -> None:
    step, before = r.get("step_ms"), r.get("previous_ms")
    text = describe_output_step(step, before, r.get("output_latency_ms"))
    b.mark(t, "output_step", "playback", text, "warn" if output_step_rose(step, before) else "info")


def _protocol_error(b: Builder, r: Record, t: float) -> None:
    b.mark(t, "protocol_error", "problems", f"protocol error: {r.get('message')}", "error")


def _error(b: Builder, r: Record, t: float) -> None:
    message = str(r.get("message") or fields_text(r) or "error")
    b.model.errors.append(message)
    code = r.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool):
        b.model.exit_code = code
    b.mark(t, "error", "problems", f"error: {message}", "error")


def _notice(b: Builder, r: Record, t: float) -> None:
    b.mark(t, r["type"], "connection", str(r.get("message") or r["type"]))


def _input_finished(b: Builder, r: Record, t: float) -> None:
    b.mark(t, "input_finished", "connection", "input file finished")


def _hangup(b: Builder, r: Record, t: float) -> None:
    b.model.end_reason = b.model.end_reason or str(r.get("reason") or "hangup")
    b.mark(t, "hangup", "connection", f"hanging up ({r.get('reason')})")


def _session_ended(b: Builder, r: Record, t: float) -> None:
    c = b.model.credits
    used, remaining = number(r.get("total_credits_used")), number(r.get("remaining_credits"))
    if used is not None or remaining is not None:
        c.used, c.remaining, c.final = used, remaining, True
    text = f"session ended: {r.get('message') or r.get('reason')}"
    b.mark(t, "session_ended", "connection", text)


def _reconnecting(b: Builder, r: Record, t: float) -> None:
    if b.reconnect is None:
        b.reconnect = Span(t, None, "reconnect", "reconnecting")
        b.model.spans.append(b.reconnect)
    b.mark(t, "reconnecting", "connection", f"reconnecting {fields_text(r)}".strip(), "warn")


def _reconnected(b: Builder, r: Record, t: float) -> None:
    if b.reconnect is not None:
        b.reconnect.end, b.reconnect = t, None
    b.mark(t, "reconnected", "connection", f"reconnected {fields_text(r)}".strip())


def _summary(b: Builder, r: Record, t: float) -> None:
    m = b.model
    m.summary = r
    m.end_reason = str(r.get("reason")) if r.get("reason") else m.end_reason
    if r.get("error") and str(r["error"]) not in m.errors:
        m.errors.append(str(r["error"]))
    if not m.credits.final and ("credits_used" in r or "credits_remaining" in r):
        m.credits.used = number(r.get("credits_used"))
        m.credits.remaining = number(r.get("credits_remaining"))
        m.credits.final = r.get("credits_final") is True


def _ignore(b: Builder, r: Record, t: float) -> None:
    """A known type that adds nothing beyond its count."""


def _event(b: Builder, r: Record, t: float) -> None:
    """A known type shown as it is, a plain event (the echo mode, mute, volume)."""
    b.mark(t, r["type"], "other", f"{r['type']} {fields_text(r)}".strip())


HANDLERS: dict[str, Handler] = {
    "connecting": _connecting,
    "ready": _ready,
    "credits": _credits,
    "agent_text": _agent_text,
    "user_speech_end": _user_speech_end,
    "turn": _turn,
    "function_call": _function_call,
    "function_result": _function_result,
    "function_report": _function_report,
    "mark": _mark,
    "mark_played": _mark,
    "clear": _barge_in,
    "barge_in": _barge_in,
    "underrun": _underrun,
    "output_step": _output_step,
    "protocol_error": _protocol_error,
    "error": _error,
    "notice": _notice,
    "input_finished": _input_finished,
    "hangup": _hangup,
    "session_ended": _session_ended,
    "reconnecting": _reconnecting,
    "reconnected": _reconnected,
    "summary": _summary,
    "stats": _ignore,
    # The echo control and the keys during a call (docs/echo.md), the report record:
    "echo": _event,
    "mute": _event,
    "microphone": _event,
    "volume": _event,
    "report": _ignore,
}


def _unknown(b: Builder, r: Record, t: float) -> None:
    b.model.unknown[r["type"]] += 1
    _event(b, r, t)


def build_model(records: list[Record]) -> CallModel:
    """The report's content from one call's records (any order of types, any gaps)."""
    b = Builder()
    last_t = 0.0
    for r in records:
        kind = r["type"]
        # A record without a usable `t` is placed where the previous one was.
        t = number(r.get("t"))
        t = last_t if t is None or t < 0 else t
        last_t = max(last_t, t)
        b.model.counts[kind] += 1
        if b.model.started is None and isinstance(r.get("time"), str):
            b.model.started = r["time"]
        HANDLERS.get(kind, _unknown)(b, r, t)
    b.model.end_t = last_t
    return b.model


__all__ = ["HANDLERS", "Builder", "CallModel", "Credits", "build_model"]
