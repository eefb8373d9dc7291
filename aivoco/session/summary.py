"""The call's figures as typed records: playback counters and the after-call summary.

`CallSummary.to_record()` gives the flat JSON object of `--json` and the transcript's
`summary` record (its keys are a public format: scripts read them); renderers read the
typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aivoco.wire.driver import NetStats


@dataclass(frozen=True)
class PlaybackFigures:
    buffered_ms: float = 0.0
    underruns: int = 0
    device_underflows: int = 0
    dropped_ms: float = 0.0
    clears: int = 0
    prefill_ms: float = 0.0


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
    recording: str | None = None
    recording_s: float | None = None
    reconnects: int = 0

    def to_record(self) -> dict[str, Any]:
        n, p = self.net, self.playback
        out: dict[str, Any] = {
            "reason": self.reason,
            "duration_s": round(self.duration_s, 2),
            "turns": self.turns,
            "latency_last_ms": _round(self.latency_last_ms, 1),
            "latency_mean_ms": _round(self.latency_mean_ms, 1),
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
            "reconnects": self.reconnects,
        }
        if self.credits is not None:
            out["credits_used"] = _round(self.credits.used, 4)
            out["credits_remaining"] = _round(self.credits.remaining, 4)
            out["credits_final"] = self.credits.final
        if self.error is not None:
            out["error"] = self.error
        if self.recording is not None:
            out["recording"] = self.recording
            out["recording_s"] = self.recording_s
        return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
