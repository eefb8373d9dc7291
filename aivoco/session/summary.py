"""The call's figures as typed records: playback counters and the after-call summary.

`CallSummary.to_record()` gives the flat JSON object of `--json` and the transcript's
`summary` record (its keys are a public format: scripts read them); renderers read the
typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aivoco.wire.driver import NetStats

if TYPE_CHECKING:  # state.py imports this module: annotations only
    from pathlib import Path

    from aivoco.errors import AivocoError
    from aivoco.session.lifecycle import Outcome
    from aivoco.session.state import Snapshot


@dataclass(frozen=True)
class PlaybackFigures:
    buffered_ms: float = 0.0
    underruns: int = 0
    device_underflows: int = 0
    dropped_ms: float = 0.0
    clears: int = 0
    prefill_ms: float = 0.0
    hold_ms: float = 0.0  # mean time the first audio of a spurt waited: added latency
    output_latency_ms: float | None = None  # the device's, measured (None: no device)


@dataclass(frozen=True)
class CreditFigures:
    used: float | None
    remaining: float | None
    final: bool  # the server's totals, not our estimate


@dataclass(frozen=True)
class CallSummary:
    reason: str
    duration_s: float
    turns: int
    latency_last_ms: float | None
    latency_mean_ms: float | None
    functions_called: int
    protocol_errors: int
    net: NetStats
    events_dropped: int
    playback: PlaybackFigures
    credits: CreditFigures | None = None
    error: str | None = None
    server_reason: str | None = None  # the server's own words, beside our `reason`
    server_message: str | None = None
    recording: str | None = None
    recording_s: float | None = None
    echo_mode: str | None = None  # aec | gate | off (docs/echo.md)
    echo_erle_db: float | None = None  # aec: echo return loss enhancement over the call
    local_barge_ins: int = 0  # sts: playback cut because the user talked over the agent
    reconnects: int = 0
    first_sound_last_ms: float | None = None  # end of speech -> first reply sound heard
    first_sound_mean_ms: float | None = None

    def to_record(self) -> dict[str, Any]:
        n, p = self.net, self.playback
        out: dict[str, Any] = {
            "reason": self.reason,
            "duration_s": round(self.duration_s, 2),
            "turns": self.turns,
            "latency_last_ms": _round(self.latency_last_ms, 1),
            "latency_mean_ms": _round(self.latency_mean_ms, 1),
            "first_sound_last_ms": _round(self.first_sound_last_ms, 1),
            "first_sound_mean_ms": _round(self.first_sound_mean_ms, 1),
            "functions_called": self.functions_called,
            "protocol_errors": self.protocol_errors,
            "transport": n.transport,
            "messages_sent": n.messages_sent,
            "messages_received": n.messages_received,
            "bytes_sent": n.bytes_sent,
            "bytes_received": n.bytes_received,
            "audio_s_sent": round(n.audio_ms_sent / 1000, 2),
            "audio_s_received": round(n.audio_ms_received / 1000, 2),
            "events_dropped": self.events_dropped,
            "uplink_dropped": n.uplink_dropped,
            "playback_buffered_ms": round(p.buffered_ms, 1),
            "playback_underruns": p.underruns,
            "playback_device_underflows": p.device_underflows,
            "playback_dropped_ms": round(p.dropped_ms, 1),
            "playback_clears": p.clears,
            "playback_prefill_ms": round(p.prefill_ms, 1),
            "playback_hold_ms": round(p.hold_ms, 1),
            "playback_output_latency_ms": _round(p.output_latency_ms, 1),
            "reconnects": self.reconnects,
        }
        if self.echo_mode is not None:
            out["echo_mode"] = self.echo_mode
            out["echo_erle_db"] = _round(self.echo_erle_db, 1)
            out["local_barge_ins"] = self.local_barge_ins
        if self.credits is not None:
            out["credits_used"] = _round(self.credits.used, 4)
            out["credits_remaining"] = _round(self.credits.remaining, 4)
            out["credits_final"] = self.credits.final
        if self.error is not None:
            out["error"] = self.error
        if self.server_reason is not None or self.server_message is not None:
            out["server_reason"] = self.server_reason
            out["server_message"] = self.server_message
        if self.recording is not None:
            out["recording"] = self.recording
            out["recording_s"] = self.recording_s
        return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def build_summary(
    snap: Snapshot,
    outcome: Outcome,
    error: AivocoError | None,
    *,
    has_credits: bool,
    events_dropped: int,
    reconnects: int,
    recording: tuple[Path, float] | None,
) -> CallSummary:
    """The summary of a call from its last snapshot and how it ended."""
    credits = None
    if has_credits:
        used, remaining = snap.credits.estimate(snap.elapsed_s)
        credits = CreditFigures(used, remaining, snap.credits.final)
    return CallSummary(
        reason=outcome.label,
        duration_s=snap.elapsed_s,
        turns=snap.turns,
        latency_last_ms=snap.latency_last_ms,
        latency_mean_ms=snap.latency_mean_ms,
        functions_called=snap.functions_called,
        protocol_errors=snap.protocol_issues,
        net=snap.net or NetStats(),
        events_dropped=events_dropped,
        playback=snap.playback or PlaybackFigures(),
        credits=credits,
        error=None if error is None else str(error),
        server_reason=outcome.server_reason,
        server_message=outcome.server_message,
        recording=None if recording is None else str(recording[0]),
        recording_s=None if recording is None else round(recording[1] / 1000, 2),
        echo_mode=snap.echo.mode,
        echo_erle_db=snap.echo.erle_call_db,
        local_barge_ins=snap.echo.barge_ins,
        reconnects=reconnects,
        first_sound_last_ms=snap.first_sound_last_ms,
        first_sound_mean_ms=snap.first_sound_mean_ms,
    )
