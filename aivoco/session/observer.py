"""The observer: what the speaker played, marks reached, counters, and the call's timers.

One tick every `OBSERVE_PERIOD_S` on the shared clock. What it finds out that the
call must act on (a timer ran out, a part failed, the agent is audible) comes back as
intents; the tick itself only feeds meters, the recording and the mark answers.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from aivoco.audio.levels import HAS_AUDIO_PEAK_THRESHOLD, SILENCE_DBFS, peak, to_dbfs
from aivoco.audio.playout import PlayerStats
from aivoco.session import intents as it
from aivoco.session.files import StereoRecorder
from aivoco.session.interfaces import PlayerLike
from aivoco.session.lifecycle import EndReason, Lifecycle, Op, Phase
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.session.summary import PlaybackFigures
from aivoco.text import describe_output_step
from aivoco.wire.driver import Driver

# Meters at 25 Hz: a tick's cost is mostly fixed, so half as many halve it; a mark is
# answered within 40 ms of being played (docs/performance.md#clock).
OBSERVE_PERIOD_S = 0.04
STATS_PERIOD_S = 0.1


class Timers:
    """Idle and maximum-duration hang-ups (pure: fed with times, asked when due)."""

    def __init__(self, idle_timeout_s: float, max_duration_s: float | None) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.max_duration_s = max_duration_s
        self._lock = threading.Lock()
        self._input_done_at: float | None = None  # set once the input file has ended
        self._agent_active_at = 0.0

    def input_finished(self, at: float) -> None:
        with self._lock:
            self._input_done_at = at

    def agent_active(self, at: float) -> None:
        with self._lock:
            self._agent_active_at = max(self._agent_active_at, at)

    def due(self, now: float, elapsed_s: float) -> it.HangUp | None:
        if self.max_duration_s is not None and elapsed_s >= self.max_duration_s:
            return it.HangUp(EndReason.MAX_DURATION)
        with self._lock:
            if self._input_done_at is None:
                return None
            quiet_since = max(self._input_done_at, self._agent_active_at)
        if now - quiet_since >= self.idle_timeout_s:
            return it.HangUp(EndReason.IDLE)
        return None


class Observer:
    def __init__(
        self,
        player: PlayerLike,
        driver: Driver,
        lifecycle: Lifecycle,
        *,
        state: CallState,
        bus: RecordBus,
        recorder: StereoRecorder | None,
        timers: Timers,
        connection: Callable[[], int] = lambda: 0,
        heard: Callable[[], None] = lambda: None,
    ) -> None:
        self.heard = heard  # answered turns whose first sound played (Downlink.heard)
        self.connection = connection  # the current connection's number (reconnect.py)
        self.player = player
        self.driver = driver
        self.lifecycle = lifecycle
        self.state = state
        self.bus = bus
        self.recorder = recorder
        self.timers = timers
        self._next_stats = 0.0
        self._underruns = 0  # jitter underruns + device underflows already reported
        self._step_ms: int | None = None  # the speaker's output step already reported

    def tick(self, now: float) -> list[it.Intent]:
        intents: list[it.Intent] = []
        if self.drain_played():
            self.timers.agent_active(now)
        for mark in self.player.pop_reached():
            # A mark from a connection since replaced means nothing to the new stream.
            if mark.origin == self.connection() and self.lifecycle.permits(Op.ANSWER_MARK):
                self.driver.answer_mark(mark.name)
            self.bus.emit("mark_played", name=mark.name)
        self.heard()
        failure = self.player.error or self.bus.error
        if failure is not None:
            intents.append(it.Fail(failure))
        if now >= self._next_stats:
            self._next_stats = now + STATS_PERIOD_S
            stats = self.publish_stats()
            self._note_underruns(stats)
            self._note_step(stats)
        if self.player.buffered_ms() > 0:
            self.timers.agent_active(now)  # audio still queued: the agent is not done
        if self.lifecycle.phase is Phase.RECONNECTING:
            self.timers.agent_active(now)  # no one can tell whether the agent is done
        due = self.timers.due(now, self.state.elapsed_s(now))
        if due is not None:
            intents.append(due)
        return intents

    def _note_underruns(self, stats: PlayerStats) -> None:
        """An `underrun` record when the speaker ran dry, so a transcript (and `aivoco
        report`) says when each dropout happened, not only how many. Checked with the
        stats, so a peer that makes every chunk late costs at most 10 records a second."""
        total = stats.jitter.underruns + stats.device_underflows
        if total > self._underruns:
            self.bus.emit(
                "underrun",
                count=total - self._underruns,
                total=total,
                prefill_ms=round(stats.jitter.prefill_ms, 1),
            )
            self._underruns = total

    def _note_step(self, stats: PlayerStats) -> None:
        """An `output_step` record when the speaker's stream settles at a step, and each
        time the ladder moves it (docs/devices.md#latency): the downlink's latency
        changes by tens of ms then, and the transcript says when and why."""
        step = stats.output_step_ms
        if step is None or step == self._step_ms:
            return
        self.bus.emit(
            "output_step",
            step_ms=step,
            previous_ms=self._step_ms,
            output_latency_ms=stats.output_latency_ms,
        )
        if self._step_ms is not None:  # a move: the live view says so too
            text = describe_output_step(step, self._step_ms, stats.output_latency_ms)
            self.state.add_entry("info", text)
        self._step_ms = step

    def drain_played(self) -> bool:
        """Meter and record what the speaker played; True if the agent was audible."""
        played = self.player.take_played()
        if played.frames == 0:
            return False
        level = peak(played)
        speaking = level > HAS_AUDIO_PEAK_THRESHOLD
        self.state.set_levels(
            agent_dbfs=to_dbfs(level) if speaking else SILENCE_DBFS, agent_speaking=speaking
        )
        if self.recorder is not None:
            self.recorder.add_agent(played)
        return speaking

    def publish_stats(self) -> PlayerStats:
        """The player's and the network's figures into the state; returns the player's."""
        j = self.player.stats()
        playback = PlaybackFigures(
            buffered_ms=j.jitter.buffered_ms,
            underruns=j.jitter.underruns,
            device_underflows=j.device_underflows,
            dropped_ms=j.jitter.dropped_ms,
            clears=j.jitter.clears,
            prefill_ms=j.jitter.prefill_ms,
            hold_ms=j.jitter.hold_ms,
            output_latency_ms=j.output_latency_ms,
        )
        self.state.set_stats(dataclasses.replace(self.driver.net), playback)
        return j
