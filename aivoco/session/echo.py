"""Echo control on the uplink: the mode in force, the canceller or the gate, barge-in.

With open speakers the microphone hears the agent, and a service that takes that for
the user interrupts itself. Per uplink frame, on the uplink thread (never in a
callback), `EchoControl.process` compares the frame with what the speaker played at
its capture time (docs/echo.md):

* aec: WebRTC's canceller removes the echo; the residual is sent.
* gate: while the agent is audible the frame goes up as silence (has_audio false),
  unless it is clearly louder than the echo to expect.
* off: the frame goes up untouched.

In every mode a frame that is clearly the user talking over the agent feeds
`LocalBargeIn` (sts only: that protocol has no clear message), which flushes playback
and drops the rest of the reply until the agent pauses.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aivoco.audio.aec import EchoUnavailableError, WebRtcProcessor
from aivoco.audio.chunk import AudioChunk, Float32Array, float32_to_pcm16
from aivoco.audio.echo import (
    EchoEstimate,
    EchoEstimator,
    ErleMeter,
    FarCursor,
    FarEnd,
    GateSettings,
    gate_passes,
    level_dbfs,
)
from aivoco.session.interfaces import PlayerLike
from aivoco.session.options import CallOptions, EchoMode, NoiseSuppression
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState, EchoView
from aivoco.session.turns import AGENT_GAP_S
from aivoco.wire.driver import ProtocolName

log = logging.getLogger("aivoco.session")

SUPPRESSING_HOLD_S = 0.5  # "echo suppressed" stays on the view this long after it acted
HEARD_DBFS = -60.0  # a quieter microphone frame had no echo worth mentioning
# aec: a frame the canceller made this much quieter was echo, and teaches the coupling;
# speech over the agent passes it nearly untouched (99 % of echo frames on the rig).
ECHO_EXPLAINED_DB = 10.0
# Local barge-in (docs/echo.md#barge-in): within the last ONSET_WINDOW_MS, at least
# ONSET_SPEECH_MS of frames of speech over the agent, spanning at least ONSET_SPAN_MS
# from the first to the end of the last (the emulator's VAD confirms an onset by a
# 100 ms span; the gate lets speech through in pieces).
ONSET_SPEECH_MS = 60.0
ONSET_SPAN_MS = 100.0
ONSET_WINDOW_MS = 300.0


def speech_onset(recent: deque[tuple[bool, float]]) -> bool:
    """`recent`: (speech over the agent, frame ms) for the last frames, oldest first."""
    speech = sum(ms for spoke, ms in recent if spoke)
    if speech < ONSET_SPEECH_MS:
        return False
    pos, first, last = 0.0, None, 0.0
    for spoke, ms in recent:
        if spoke:
            first = pos if first is None else first
            last = pos + ms
        pos += ms
    return first is not None and last - first >= ONSET_SPAN_MS


TRACE_LIMIT = 30_000  # frames a trace keeps (10 minutes of 20 ms frames)


@dataclass(frozen=True)
class FrameTrace:
    """One uplink frame as echo control saw it (for the bench and diagnostics)."""

    t_s: float  # capture time
    near_dbfs: float  # what the microphone heard
    out_dbfs: float  # what went upstream
    processed_dbfs: float  # after the canceller (and NS), before any gating
    far_now_dbfs: float  # what the speaker played during the frame itself
    estimate: EchoEstimate
    over_agent: bool  # counted as the user talking over the agent


def _dbfs(x: np.ndarray) -> float:
    return level_dbfs(x.astype(np.float32) / 32768.0)


@dataclass(frozen=True)
class EchoSetup:
    mode: EchoMode  # the mode in force: AEC, GATE or OFF
    note: str  # why, for the view and the records
    processor: WebRtcProcessor | None  # the canceller, or NS/high-pass alone


def choose_mode(
    requested: EchoMode,
    *,
    acoustic: bool,
    rate_hz: int,
    noise: NoiseSuppression = NoiseSuppression.OFF,
    high_pass: bool = False,
) -> EchoSetup:
    """The mode to use: auto's choice, and aec's fallback to the gate when WebRTC's
    module cannot be loaded or started (the note says why)."""
    notes: list[str] = []
    mode = requested
    if requested is EchoMode.AUTO:
        mode = EchoMode.AEC if acoustic else EchoMode.OFF
        notes.append("auto: speaker and microphone" if acoustic else "auto: no speaker-mic path")
    processor: WebRtcProcessor | None = None
    if mode is EchoMode.AEC:
        try:
            processor = WebRtcProcessor(
                rate_hz, echo_cancellation=True, ns_level=noise.level, high_pass=high_pass
            )
        except EchoUnavailableError as exc:
            mode = EchoMode.GATE
            notes.append(f"aec unavailable, using the gate: {exc}")
    if processor is None and (noise.level is not None or high_pass):
        try:
            processor = WebRtcProcessor(
                rate_hz, echo_cancellation=False, ns_level=noise.level, high_pass=high_pass
            )
        except EchoUnavailableError as exc:
            notes.append(f"noise suppression / high-pass unavailable: {exc}")
    return EchoSetup(mode, "; ".join(notes), processor)


class LocalBargeIn:
    """Barge-in on our side, for sts (docs/echo.md#barge-in).

    The uplink reports frames of user speech over the agent (`feed`); once they make an
    onset (`speech_onset`), playback is flushed (the jitter buffer's fade)
    and the downlink drops agent audio (`admit`) until the agent pauses for
    `pause_s` (AGENT_GAP_S: what starts a new agent turn)."""

    def __init__(
        self, player: PlayerLike, state: CallState, bus: RecordBus, pause_s: float = AGENT_GAP_S
    ) -> None:
        self.player = player
        self.state = state
        self.bus = bus
        self.pause_s = pause_s
        self.count = 0
        self.triggered_at: list[float] = []  # when each barge-in cut playback
        self.dropped_chunks = 0
        self._lock = threading.Lock()
        self._dropping = False
        self._last_audio = 0.0
        self._recent: deque[tuple[bool, float]] = deque()

    def feed(self, over_agent: bool, frame_ms: float, now: float) -> bool:
        """One uplink frame; True when it triggered a barge-in."""
        self._recent.append((over_agent, frame_ms))
        while sum(ms for _, ms in self._recent) - self._recent[0][1] >= ONSET_WINDOW_MS:
            self._recent.popleft()
        if not speech_onset(self._recent) or self.player.stats().jitter.buffered_ms <= 0:
            return False  # not yet speech, or nothing of the agent's left to cut
        with self._lock:
            if self._dropping:
                return False
            self._dropping = True
            self._last_audio = now
            self.count += 1
            self.triggered_at.append(now)
        self._recent.clear()
        cleared = self.player.clear()
        cleared_ms = round(cleared * 1000 / self.player.clock_rate_hz, 1)
        self.state.add_entry("info", "barge-in: you spoke over the agent; playback stopped")
        self.bus.emit("barge_in", cleared_ms=cleared_ms)
        return True

    def admit(self, at: float) -> bool:
        """Agent audio arriving at `at`: False while the interrupted reply goes on."""
        with self._lock:
            if not self._dropping:
                return True
            if at - self._last_audio >= self.pause_s:
                self._dropping = False
                return True
            self._last_audio = at
            self.dropped_chunks += 1
            return False


class EchoControl:
    def __init__(
        self,
        setup: EchoSetup,
        *,
        player: PlayerLike,
        rate_hz: int,
        frame_ms: int,
        state: CallState,
        bus: RecordBus,
        barge_in: LocalBargeIn | None = None,
        mic_live: Callable[[], bool] = lambda: True,
        settings: GateSettings | None = None,
    ) -> None:
        self.setup = setup
        self.mode = setup.mode
        self.rate_hz = rate_hz
        self.frame_s = frame_ms / 1000.0
        self.state = state
        self.bus = bus
        self.barge_in = barge_in
        self.mic_live = mic_live  # mute and push-to-talk (session/controls.py)
        self.settings = settings or GateSettings()
        self.estimator = EchoEstimator(FarEnd(player.reference, rate_hz), self.settings)
        self.cursor = FarCursor(self.estimator.far)  # the canceller's continuous far end
        self.erle = ErleMeter(self.frame_s)
        self.suppressed_frames = 0  # frames the gate silenced, or aec cleaned of echo
        self.passed_frames = 0  # frames sent as speech while the agent was audible
        self._acted_at = -1e9
        self.trace: list[FrameTrace] | None = None  # set to a list to record every frame
        self._processed_dbfs = 0.0
        self._open_until = -1e9  # after a local barge-in the gate opens for the tail

    def announce(self) -> None:
        """Say which mode is in force (once the call's records have their files)."""
        self.bus.emit("echo", mode=self.mode.value, note=self.setup.note)
        if "unavailable" in self.setup.note:
            self.state.add_entry("error", self.setup.note)
            log.warning("%s", self.setup.note)
        self._publish(False)

    def process(self, frame: AudioChunk, now: float) -> AudioChunk:
        """The frame to send upstream instead of `frame` (same length and rate): echo
        removed or gated, silence while muted or push-to-talk is idle. The canceller
        runs on every frame, muted or not, so it stays converged."""
        mic_live = self.mic_live()
        t = frame.captured_at_s if frame.captured_at_s is not None else now - self.frame_s
        near = frame.mono_samples()
        near_f = near.astype(np.float32) / 32768.0
        near_dbfs = level_dbfs(near_f)
        # With the canceller, only frames it could explain as echo teach the coupling.
        aec = self.mode is EchoMode.AEC
        est = self.estimator.estimate(t, self.frame_s, near_dbfs, learn=not aec)
        if self.mode is EchoMode.AEC:
            out, over = self._cancel(near, near_f, t, est, now)
        else:
            out, over = self._gate_or_pass(near, est, now)
        if self.trace is not None and len(self.trace) < TRACE_LIMIT:
            far_now = self.estimator.far.level_dbfs(t, t + self.frame_s)
            self.trace.append(
                FrameTrace(t, near_dbfs, _dbfs(out), self._processed_dbfs, far_now, est, over)
            )
        # It acted when the microphone heard something while the agent was audible and
        # it did not go up as the user: gated, or cleaned by the canceller.
        heard = near_dbfs > HEARD_DBFS
        acted = heard and est.audible and not over and self.mode is not EchoMode.OFF
        if acted:
            self.suppressed_frames += 1
            self._acted_at = now
        elif over:
            self.passed_frames += 1
        barge = self.barge_in
        # Only over the agent's voice itself, not its tail (docs/echo.md#barge-in).
        talking = est.far_dbfs >= self.settings.audible_dbfs
        if barge is not None and barge.feed(
            over and talking and mic_live, 1000 * self.frame_s, now
        ):
            # The agent was cut: what still sounds is the tail of the device buffer; let
            # the user's speech through instead of gating it (docs/echo.md#barge-in).
            # The canceller keeps cancelling.
            s = self.settings
            self._open_until = now + (s.tail_ms + s.path_delay_ms) / 1000
        if not mic_live:
            out = np.zeros_like(near)
        self._publish(now - self._acted_at < SUPPRESSING_HOLD_S)
        return AudioChunk(out, frame.sample_rate_hz, captured_at_s=frame.captured_at_s)

    def _cancel(
        self, near: np.ndarray, near_f: Float32Array, t: float, est: EchoEstimate, now: float
    ) -> tuple[np.ndarray, bool]:
        processor = self.setup.processor
        assert processor is not None  # AEC is only in force with a processor
        far = float32_to_pcm16(self.cursor.take(t, near.shape[0]))
        out = processor.process(near, far)
        out_f = out.astype(np.float32) / 32768.0
        out_db = self._processed_dbfs = level_dbfs(out_f)
        # The residual is the user when it is louder than the echo itself would be: AEC3
        # leaves 20-50 dB less than that once converged, but for a few hundred ms after
        # the agent starts again it may leave nearly all of it (docs/echo.md#aec).
        # While the agent is audible, anything quieter goes up as silence.
        s = self.settings
        over = est.audible and out_db > max(
            est.expected_echo_dbfs + s.aec_margin_db, s.speech_floor_dbfs
        )
        near_db = level_dbfs(near_f)
        if est.audible and near_db - out_db >= ECHO_EXPLAINED_DB:
            self.estimator.coupling.observe(near_db, est.far_dbfs, self.frame_s, trusted=True)
        if est.audible and not over:
            self.erle.observe(near_f, out_f)
            if now >= self._open_until:
                out = np.zeros_like(out)
        return out, over

    def _gate_or_pass(
        self, near: np.ndarray, est: EchoEstimate, now: float
    ) -> tuple[np.ndarray, bool]:
        processor = self.setup.processor
        out = processor.process(near) if processor is not None else near
        out_db = self._processed_dbfs = level_dbfs(out.astype(np.float32) / 32768.0)
        s = self.settings
        if self.mode is EchoMode.OFF:
            return out, est.audible and out_db > s.speech_floor_dbfs
        passes = gate_passes(out_db, est, s) or now < self._open_until
        if not passes:
            return np.zeros_like(near), False
        return out, est.audible and out_db > s.speech_floor_dbfs

    def _publish(self, suppressing: bool) -> None:
        erle = self.erle.erle_db if self.mode is EchoMode.AEC else None
        self.state.set_echo(
            EchoView(
                mode=self.mode.value,
                note=self.setup.note,
                suppressing=suppressing,
                erle_db=None if erle is None else min(erle, 60.0),
                barge_ins=0 if self.barge_in is None else self.barge_in.count,
            )
        )


def echo_for_call(
    options: CallOptions,
    *,
    acoustic: bool,
    player: PlayerLike,
    rate_hz: int,
    state: CallState,
    bus: RecordBus,
    mic_live: Callable[[], bool],
) -> tuple[EchoControl, LocalBargeIn | None]:
    """A call's echo control and, for sts with --barge-in, its local barge-in."""
    setup = choose_mode(
        options.echo,
        acoustic=acoustic,
        rate_hz=rate_hz,
        noise=options.noise_suppression,
        high_pass=options.high_pass,
    )
    barge = None
    if options.barge_in and options.protocol is ProtocolName.STS:
        barge = LocalBargeIn(player, state, bus)
    echo = EchoControl(
        setup,
        player=player,
        rate_hz=rate_hz,
        frame_ms=options.chunk_ms,
        state=state,
        bus=bus,
        barge_in=barge,
        mic_live=mic_live,
    )
    return echo, barge
