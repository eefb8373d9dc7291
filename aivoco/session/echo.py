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
from aivoco.audio.resample import HalfRate
from aivoco.session.bargein import LocalBargeIn
from aivoco.session.interfaces import PlayerLike
from aivoco.session.options import CallOptions, EchoMode, NoiseSuppression
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState, EchoView
from aivoco.wire.driver import ProtocolName

log = logging.getLogger("aivoco.session")

SUPPRESSING_HOLD_S = 0.5  # "echo suppressed" stays on the view this long after it acted
HEARD_DBFS = -60.0  # a quieter microphone frame had no echo worth mentioning
# aec: a frame the canceller made this much quieter was echo, and teaches the coupling;
# speech over the agent passes it nearly untouched (99 % of echo frames on the rig).
ECHO_EXPLAINED_DB = 10.0
TRACE_LIMIT = 30_000  # frames a trace keeps (10 minutes of 20 ms frames)
# WebRTC AEC3's own rate. An agent call's microphone is captured at it when echo control
# lines it up with the speaker, and the frames go down to 8 kHz after the canceller
# (resample.HalfRate): 2 ms sooner, measured, than the module's own conversion
# (docs/echo.md#rate).
AEC_RATE_HZ = 16000


def echo_rate_hz(call_rate_hz: int) -> int:
    """The rate echo control works at for a call at `call_rate_hz`."""
    return AEC_RATE_HZ if call_rate_hz * 2 == AEC_RATE_HZ else call_rate_hz


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
    requested: EchoMode = EchoMode.AUTO


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
        notes.append(
            "auto: the microphone can hear the speaker"
            if acoustic
            else "auto: a file stands in for the microphone or the speaker"
        )
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
    return EchoSetup(mode, "; ".join(notes), processor, requested)


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
        out_rate_hz: int | None = None,
    ) -> None:
        """`rate_hz`: the frames' rate, what echo control works at; `out_rate_hz`: the
        call's, half of it or the same (what `process` returns)."""
        self.setup = setup
        self.mode = setup.mode
        self.rate_hz = rate_hz
        self.out_rate_hz = out_rate_hz or rate_hz
        self._down = HalfRate(rate_hz) if self.out_rate_hz != rate_hz else None
        if self._down is not None and self._down.out_rate_hz != self.out_rate_hz:
            raise ValueError(f"echo control converts {rate_hz} Hz to half, not {out_rate_hz}")
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
        self._published_key: tuple[object, ...] | None = None  # what the view shows

    def announce(self) -> None:
        """Say which mode is in force (once the call's records have their files)."""
        self.bus.emit("echo", mode=self.mode.value, note=self.setup.note)
        if "unavailable" in self.setup.note:
            # Asked for by name, a missing canceller is an error worth seeing; under
            # auto it is information (the gate works without it).
            explicit = self.setup.requested is not EchoMode.AUTO
            self.state.add_entry("error" if explicit else "info", self.setup.note)
            log.warning("%s", self.setup.note)
        self._publish(False)

    def process(self, frame: AudioChunk, now: float) -> AudioChunk:
        """The frame to send upstream instead of `frame` (same duration, at
        `out_rate_hz`): echo removed or gated, silence while muted or push-to-talk is
        idle. The canceller runs on every frame, muted or not, so it stays converged;
        so does the conversion to the call's rate (it keeps the filter's state)."""
        out = self._process(frame, now)
        if self._down is None:
            return out
        samples = self._down.process(out.mono_samples())
        return AudioChunk(samples, self.out_rate_hz, captured_at_s=out.captured_at_s)

    def _process(self, frame: AudioChunk, now: float) -> AudioChunk:
        if self.mode is EchoMode.OFF and self.setup.processor is None:
            return self._off(frame, now)
        mic_live = self.mic_live()
        t = frame.captured_at_s if frame.captured_at_s is not None else now - self.frame_s
        near = frame.mono_samples()
        near_f = near.astype(np.float32) / 32768.0
        near_dbfs = level_dbfs(near_f)
        # With the canceller, only frames it could explain as echo teach the coupling.
        aec = self.mode is EchoMode.AEC
        est = self.estimator.estimate(t, self.frame_s, near_dbfs, learn=not aec)
        if self.mode is EchoMode.AEC:
            out, over = self._cancel(near, near_f, t, est, now, near_db=near_dbfs)
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

    def _off(self, frame: AudioChunk, now: float) -> AudioChunk:
        """No echo path (files, headphones): nothing to estimate, so the far end is not
        read at all. The frame goes up as it is (the same object: no copy) unless the
        microphone is muted; a user talking while the agent is heard still feeds the
        local barge-in, with the agent's audibility taken from the played audio's meter
        (the observer's, every 40 ms: enough for a 100 ms onset)."""
        mic_live = self.mic_live()
        barge = self.barge_in
        if barge is not None:
            over = self.state.agent_audible() and _dbfs(frame.mono_samples()) > (
                self.settings.speech_floor_dbfs
            )
            barge.feed(over and mic_live, 1000 * self.frame_s, now)
            self._publish(False)
        if mic_live:
            return frame
        silent = np.zeros_like(frame.mono_samples())
        return AudioChunk(silent, frame.sample_rate_hz, captured_at_s=frame.captured_at_s)

    def _cancel(
        self,
        near: np.ndarray,
        near_f: Float32Array,
        t: float,
        est: EchoEstimate,
        now: float,
        *,
        near_db: float,
    ) -> tuple[np.ndarray, bool]:
        processor = self.setup.processor
        assert processor is not None  # AEC is only in force with a processor
        # The reference is what the speaker was given: finite (int16 audio, resampled).
        far = float32_to_pcm16(self.cursor.take(t, near.shape[0]), finite=True)
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
        aec = self.mode is EchoMode.AEC
        erle = _erle_shown(self.erle.erle_db if aec else None)
        erle_call = _erle_shown(self.erle.call_erle_db if aec else None)
        barge_ins = 0 if self.barge_in is None else self.barge_in.count
        # Compared before anything is built: this runs for every frame (50 a second per
        # call), and the view changes a few times a call.
        key = (self.mode, suppressing, erle, erle_call, barge_ins)
        if key == self._published_key:
            return
        self._published_key = key
        self.state.set_echo(
            EchoView(
                mode=self.mode.value,
                note=self.setup.note,
                suppressing=suppressing,
                erle_db=erle,
                erle_call_db=erle_call,
                barge_ins=barge_ins,
            )
        )


def _erle_shown(raw: float | None) -> float | None:
    """To the 0.1 dB the summary reports (the view shows whole dB), so a figure that
    drifts in its last digits is not a change; capped at 60 dB (docs/echo.md#erle)."""
    return None if raw is None else round(min(raw, 60.0), 1)


def echo_for_call(
    options: CallOptions,
    *,
    acoustic: bool,
    player: PlayerLike,
    rate_hz: int,
    state: CallState,
    bus: RecordBus,
    mic_live: Callable[[], bool],
    source_rate_hz: int | None = None,
) -> tuple[EchoControl, LocalBargeIn | None]:
    """A call's echo control and, for sts with --barge-in, its local barge-in.
    `source_rate_hz`: the microphone's frames' rate, `echo_rate_hz(rate_hz)` when
    build_source captured at it (the call's rate by default)."""
    work_hz = source_rate_hz or rate_hz
    setup = choose_mode(
        options.echo,
        acoustic=acoustic,
        rate_hz=work_hz,
        noise=options.noise_suppression,
        high_pass=options.high_pass,
    )
    barge = None
    if options.barge_in and options.protocol is ProtocolName.STS:
        barge = LocalBargeIn(player, state, bus)
    echo = EchoControl(
        setup,
        player=player,
        rate_hz=work_hz,
        frame_ms=options.chunk_ms,
        state=state,
        bus=bus,
        barge_in=barge,
        mic_live=mic_live,
        out_rate_hz=rate_hz,
    )
    return echo, barge
