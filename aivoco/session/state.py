"""The call-state object: threads update it, the UI reads snapshots (~10 per second).

Every mutation goes through a method holding one lock; `snapshot()` returns an
immutable copy, so renderers never see a half-updated state and never block the audio
or network threads for long.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from aivoco.audio.levels import SILENCE_DBFS
from aivoco.redact import redact
from aivoco.session.lifecycle import Phase
from aivoco.session.summary import PlaybackFigures
from aivoco.wire.driver import NetStats

TRANSCRIPT_UI_LIMIT = 200  # entries kept for display; files get everything


@dataclass(frozen=True)
class Entry:
    """One transcript line: seconds since the call went live, kind and text."""

    t_s: float
    kind: str  # agent | function | result | error | info | you
    text: str


@dataclass(frozen=True)
class Credits:
    """The current session's figures, plus what earlier sessions of a reconnected call
    used (each estimated up to its drop: a session that dropped sends no totals)."""

    available: float | None = None  # at session start
    cost_per_minute: float | None = None
    final_used: float | None = None  # the server's totals, once the session ended
    final_remaining: float | None = None
    session_start_s: float = 0.0  # call time at which the current session went live
    earlier_used: float = 0.0
    earlier_sessions: int = 0

    def estimate(self, elapsed_s: float) -> tuple[float | None, float | None]:
        """(used, remaining) as the playground shows them: minutes x cost per minute,
        summed over the call's sessions."""
        if self.final_used is not None:
            return self.earlier_used + self.final_used, self.final_remaining
        if self.cost_per_minute is None:
            return (self.earlier_used or None), None
        used = max(0.0, elapsed_s - self.session_start_s) / 60.0 * self.cost_per_minute
        remaining = None if self.available is None else self.available - used
        return self.earlier_used + used, remaining

    @property
    def final(self) -> bool:
        """The server's own totals cover the whole call (one session that ended)."""
        return self.final_used is not None and self.earlier_sessions == 0

    def dropped(self, elapsed_s: float) -> Credits:
        """The session dropped at `elapsed_s`: its estimate joins the earlier ones."""
        used, _ = Credits(None, self.cost_per_minute, self.final_used, None,
                          self.session_start_s).estimate(elapsed_s)  # fmt: skip
        return Credits(
            earlier_used=self.earlier_used + (used or 0.0),
            earlier_sessions=self.earlier_sessions + 1,
        )


@dataclass(frozen=True)
class ControlsView:
    """The microphone and playback controls as the view shows them (session/controls.py)."""

    muted: bool = False
    mic: str = "open"  # open | push-to-talk idle | push-to-talk talking
    mic_live: bool = True
    volume_percent: int = 100
    keys: bool = False  # a key reader is running: the keys work
    show_help: bool = False


@dataclass(frozen=True)
class EchoView:
    """Echo control as the view shows it (session/echo.py, docs/echo.md)."""

    mode: str = "off"  # the mode in force: aec | gate | off
    note: str = ""  # why this mode (auto's choice, a fallback)
    suppressing: bool = False  # it acted on the microphone within the last moment
    erle_db: float | None = None  # aec: echo return loss enhancement, the last seconds
    erle_call_db: float | None = None  # aec: the same over the whole call (the summary's)
    barge_ins: int = 0  # local barge-ins (sts): playback cut because you spoke


@dataclass(frozen=True)
class Snapshot:
    protocol: str
    endpoint: str
    label: str  # voice (sts) or agent (call)
    phase: Phase
    elapsed_s: float
    mic_dbfs: float
    agent_dbfs: float
    user_speaking: bool
    agent_speaking: bool
    transcript: tuple[Entry, ...]
    has_credits: bool
    credits: Credits
    latency_last_ms: float | None
    latency_mean_ms: float | None
    turns: int
    protocol_issues: int
    functions_called: int
    net: NetStats | None  # None until the first figures arrive
    playback: PlaybackFigures | None
    input_label: str
    output_label: str
    end_reason: str | None
    controls: ControlsView = ControlsView()
    echo: EchoView = EchoView()
    reconnect: tuple[int, int] | None = None  # (attempt, tries) while reconnecting
    # End of the user's speech -> the reply's first sound at the speaker (what is heard;
    # latency_* stop at its first byte): our playout's share is the difference.
    first_sound_last_ms: float | None = None
    first_sound_mean_ms: float | None = None

    @property
    def phase_label(self) -> str:
        """The phase as shown: `reconnecting (2/3)` while a dropped call comes back."""
        if self.phase is Phase.RECONNECTING and self.reconnect is not None:
            return f"{self.phase.value} ({self.reconnect[0]}/{self.reconnect[1]})"
        return self.phase.value


@dataclass
class _Mutable:
    phase: Phase = Phase.NEW
    live_at: float | None = None
    ended_at: float | None = None
    mic_dbfs: float = SILENCE_DBFS
    agent_dbfs: float = SILENCE_DBFS
    user_speaking: bool = False
    agent_speaking: bool = False
    credits: Credits = field(default_factory=Credits)
    latencies_ms: list[float] = field(default_factory=list)
    first_sounds_ms: list[float] = field(default_factory=list)
    protocol_issues: int = 0
    functions_called: int = 0
    net: NetStats | None = None
    playback: PlaybackFigures | None = None
    end_reason: str | None = None
    controls: ControlsView = field(default_factory=ControlsView)
    echo: EchoView = field(default_factory=EchoView)
    reconnect: tuple[int, int] | None = None


class CallState:
    def __init__(
        self,
        protocol: str,
        endpoint: str,
        label: str,
        *,
        has_credits: bool,
        input_label: str = "",
        output_label: str = "",
    ) -> None:
        self.protocol = protocol
        self.endpoint = endpoint
        self.label = label
        self.has_credits = has_credits
        self.input_label = input_label
        self.output_label = output_label
        self._lock = threading.Lock()
        self._m = _Mutable()
        self._entries: deque[Entry] = deque(maxlen=TRANSCRIPT_UI_LIMIT)

    # -- time ----------------------------------------------------------------------
    def elapsed_s(self, now: float | None = None) -> float:
        """Seconds since the call went live (0 before), frozen once it ended."""
        with self._lock:
            return self._elapsed_locked(now)

    def _elapsed_locked(self, now: float | None) -> float:
        if self._m.live_at is None:
            return 0.0
        end = self._m.ended_at if self._m.ended_at is not None else (now or time.monotonic())
        return max(0.0, end - self._m.live_at)

    # -- updates -------------------------------------------------------------------
    def set_phase(self, phase: Phase) -> None:
        """Mirrors the lifecycle (the call subscribes this to it); the clock starts at
        LIVE and stops at ENDED."""
        with self._lock:
            self._m.phase = phase
            now = time.monotonic()
            if phase is Phase.LIVE and self._m.live_at is None:
                self._m.live_at = now
            if phase is Phase.ENDED and self._m.ended_at is None:
                self._m.ended_at = now

    def set_end_reason(self, reason: str) -> None:
        with self._lock:
            self._m.end_reason = reason

    def add_entry(self, kind: str, text: str) -> Entry:
        """A transcript line for the view: redacted here (the view shows nothing
        unredacted); made terminal-safe where it is drawn."""
        text = redact(text)
        with self._lock:
            entry = Entry(self._elapsed_locked(None), kind, text)
            self._entries.append(entry)
            return entry

    def count_issue(self) -> None:
        with self._lock:
            self._m.protocol_issues += 1

    def count_function(self) -> None:
        with self._lock:
            self._m.functions_called += 1

    def set_levels(
        self,
        mic_dbfs: float | None = None,
        agent_dbfs: float | None = None,
        user_speaking: bool | None = None,
        agent_speaking: bool | None = None,
    ) -> None:
        with self._lock:
            if mic_dbfs is not None:
                self._m.mic_dbfs = mic_dbfs
            if agent_dbfs is not None:
                self._m.agent_dbfs = agent_dbfs
            if user_speaking is not None:
                self._m.user_speaking = user_speaking
            if agent_speaking is not None:
                self._m.agent_speaking = agent_speaking

    def set_credits(self, **changes: Any) -> None:
        with self._lock:
            self._m.credits = replace(self._m.credits, **changes)

    def session_started(self, available: float | None, cost_per_minute: float | None) -> None:
        """A session went live (the first, or one after a reconnect): its credits."""
        with self._lock:
            self._m.credits = replace(
                self._m.credits,
                available=available,
                cost_per_minute=cost_per_minute,
                final_used=None,
                final_remaining=None,
                session_start_s=self._elapsed_locked(None),
            )

    def session_dropped(self) -> None:
        with self._lock:
            self._m.credits = self._m.credits.dropped(self._elapsed_locked(None))

    def set_reconnect(self, attempt: tuple[int, int] | None) -> None:
        """(attempt, tries) while reconnecting, for the view; None once live again."""
        with self._lock:
            self._m.reconnect = attempt

    def add_latency(self, ms: float) -> None:
        with self._lock:
            self._m.latencies_ms.append(ms)

    def add_first_sound(self, ms: float) -> None:
        with self._lock:
            self._m.first_sounds_ms.append(ms)

    def set_stats(self, net: NetStats, playback: PlaybackFigures) -> None:
        with self._lock:
            self._m.net = net
            self._m.playback = playback

    def set_controls(self, controls: ControlsView) -> None:
        with self._lock:
            self._m.controls = controls

    def agent_audible(self) -> bool:
        """The agent was heard in the last played block (the observer's meter)."""
        with self._lock:
            return self._m.agent_speaking

    def set_echo(self, echo: EchoView) -> None:
        with self._lock:
            self._m.echo = echo

    # -- reading -------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        with self._lock:
            m = self._m
            lat, heard = m.latencies_ms, m.first_sounds_ms
            return Snapshot(
                protocol=self.protocol,
                endpoint=self.endpoint,
                label=self.label,
                phase=m.phase,
                elapsed_s=self._elapsed_locked(None),
                mic_dbfs=m.mic_dbfs,
                agent_dbfs=m.agent_dbfs,
                user_speaking=m.user_speaking,
                agent_speaking=m.agent_speaking,
                transcript=tuple(self._entries),
                has_credits=self.has_credits,
                credits=m.credits,
                latency_last_ms=lat[-1] if lat else None,
                latency_mean_ms=sum(lat) / len(lat) if lat else None,
                turns=len(lat),
                protocol_issues=m.protocol_issues,
                functions_called=m.functions_called,
                net=m.net,
                playback=m.playback,
                input_label=self.input_label,
                output_label=self.output_label,
                end_reason=m.end_reason,
                controls=m.controls,
                echo=m.echo,
                reconnect=m.reconnect if m.phase is Phase.RECONNECTING else None,
                first_sound_last_ms=heard[-1] if heard else None,
                first_sound_mean_ms=sum(heard) / len(heard) if heard else None,
            )
