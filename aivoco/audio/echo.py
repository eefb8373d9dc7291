"""Echo control's signal side: the far-end reference, the gate, coupling and ERLE.

Everything here runs on the uplink thread, never in an audio callback. Levels are RMS
in dBFS over the uplink frame (near end) or over 10 ms blocks (far end). The numbers
and how they were chosen are in docs/echo.md; each constant names its section.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aivoco.audio.chunk import Float32Array
from aivoco.audio.levels import SILENCE_DBFS, mean_square
from aivoco.audio.resample import live_resampler
from aivoco.audio.timed import TimedRing

BLOCK_MS = 10  # far-end envelope resolution
HISTORY_MS = 3000  # far-end audio kept: the delay window plus a generous stall


def level_dbfs(x: Float32Array) -> float:
    """RMS of float samples (1.0 = full scale) in dBFS, floored like the meters."""
    if x.size == 0:
        return SILENCE_DBFS
    ms = mean_square(x)
    return SILENCE_DBFS if ms <= 0 else max(SILENCE_DBFS, 10.0 * math.log10(ms))


class FarEnd:
    """What the speaker played, at the uplink rate, on the time.monotonic() clock.

    Fed from the player's `reference` tap (device rate, stamped with DAC times); the
    uplink asks for the samples heard at a capture time (`segment`) and for the loudest
    10 ms block in a time window (`level_dbfs`). Unknown times read as silence.
    """

    def __init__(self, tap: TimedRing, rate_hz: int, history_ms: int = HISTORY_MS) -> None:
        self.tap = tap
        self.rate_hz = rate_hz
        self._rs = live_resampler(tap.sample_rate_hz, rate_hz)
        self._limit = rate_hz * history_ms // 1000
        self._hist = np.zeros(0, np.float32)
        self._start = 0  # resampler output position of _hist[0]
        self._fed = 0  # device frames fed to the resampler
        self._anchor: tuple[int, float] | None = None  # (resampler input position, time)
        self._block = rate_hz * BLOCK_MS // 1000

    def pull(self) -> None:
        """Take what the speaker wrote since the last call."""
        block = self.tap.read()
        if block.frames == 0:
            return
        self._anchor = (self._fed, block.start_s)
        self._fed += block.frames
        y = self._rs.process_float(block.samples[:, 0])[:, 0]
        hist = np.concatenate([self._hist, y])
        excess = hist.shape[0] - self._limit
        if excess > 0:
            hist = hist[excess:]
            self._start += excess
        self._hist = hist

    def position(self, t_s: float) -> int | None:
        """The resampled stream position heard at `t_s` (None before any audio)."""
        if self._anchor is None:
            return None
        fed, at = self._anchor
        in_pos = fed + (t_s - at) * self.tap.sample_rate_hz
        return round(in_pos * self._rs.ratio)

    def segment(self, t_s: float, frames: int) -> Float32Array:
        """The `frames` samples heard from `t_s` on; zeros where nothing is known."""
        pos = self.position(t_s)
        if pos is None:
            return np.zeros(frames, np.float32)
        return self.segment_at(pos, frames)

    def segment_at(self, pos: int, frames: int) -> Float32Array:
        """The `frames` samples from stream position `pos`; zeros where unknown."""
        out = np.zeros(frames, np.float32)
        lo = max(pos, self._start)
        hi = min(pos + frames, self._start + self._hist.shape[0])
        if hi > lo:
            out[lo - pos : hi - pos] = self._hist[lo - self._start : hi - self._start]
        return out

    def level_dbfs(self, t0_s: float, t1_s: float) -> float:
        """The loudest 10 ms block heard between t0 and t1 (dBFS RMS)."""
        n = max(1, round((t1_s - t0_s) * self.rate_hz))
        x = self.segment(t0_s, n)
        blocks = x[: (n // self._block) * self._block].reshape(-1, self._block)
        if blocks.shape[0] == 0:
            return level_dbfs(x)
        return _dbfs_of_power(float(np.max(_block_power(blocks))))

    def window_levels_dbfs(self, t0_s: float, t1_s: float, before_s: float) -> tuple[float, float]:
        """`level_dbfs(t0, t1)` and `level_dbfs(t0 - before, t1)` from one segment, squared
        once (every uplink frame asks for both, docs/echo.md#gate-thresholds): when
        `before_s` is a whole number of blocks, the blocks of the first window are those
        of the second from `before_s` on."""
        lead = round(before_s * self.rate_hz)
        n = round((t1_s - t0_s) * self.rate_hz)
        inner = n // self._block
        if lead % self._block or inner == 0:
            return self.level_dbfs(t0_s, t1_s), self.level_dbfs(t0_s - before_s, t1_s)
        skip = lead // self._block
        x = self.segment(t0_s - before_s, (skip + inner) * self._block)
        power = _block_power(x.reshape(-1, self._block))
        return (
            _dbfs_of_power(float(np.max(power[skip:]))),
            _dbfs_of_power(float(np.max(power))),
        )


def _block_power(blocks: Float32Array) -> npt.NDArray[np.float64]:
    power: npt.NDArray[np.float64] = np.mean(np.square(blocks, dtype=np.float64), axis=1)
    return power


def _dbfs_of_power(ms: float) -> float:
    return SILENCE_DBFS if ms <= 0 else max(SILENCE_DBFS, 10.0 * math.log10(ms))


class FarCursor:
    """The far end as one continuous stream, one frame per near frame, for the canceller.

    The times of blocks wobble by a few ms from callback to callback (when Python gets
    to run each one). Cutting the far end by each frame's own timestamps would skip or
    repeat samples at every wobble, which AEC3 takes for a change of the echo path and
    answers by re-adapting (measured: ERLE dips of 10-20 dB, docs/echo.md#alignment).
    The cursor advances exactly one frame per frame and follows the timestamps only
    through a slow average, moving when they disagree by more than `jump_ms` (an
    underrun or an overflow moved one stream against the other)."""

    def __init__(self, far: FarEnd, jump_ms: float = 10.0, smoothing: float = 0.05) -> None:
        self.far = far
        self._jump = far.rate_hz * jump_ms / 1000
        self._alpha = smoothing
        self._pos: int | None = None
        self._error = 0.0  # smoothed (timestamp position - cursor), in samples
        self.jumps = 0

    def take(self, t_s: float, frames: int) -> Float32Array:
        target = self.far.position(t_s)
        if target is None:
            return np.zeros(frames, np.float32)
        if self._pos is None:
            self._pos = target
        else:
            error = target - self._pos
            self._error += self._alpha * (error - self._error)
            if abs(self._error) > self._jump:  # persistently off: move, in one step
                self._pos = target
                self._error = 0.0
                self.jumps += 1
        out = self.far.segment_at(self._pos, frames)
        self._pos += frames
        return out


@dataclass(frozen=True)
class GateSettings:
    """The gate's thresholds (docs/echo.md#gate-thresholds for how they were chosen)."""

    # Echo of a sample played at T reaches the microphone between T - lead and
    # T + path_delay: what the timestamps leave unexplained plus the room (and, on the
    # test rig, PulseAudio's loopback of up to 120 ms).
    path_delay_ms: float = 250.0
    lead_ms: float = 30.0
    # The gate stays armed this long after the agent fell silent (reverberation, and
    # a last block still in the device buffer).
    tail_ms: float = 300.0
    # Playback quieter than this (10 ms RMS) does not count as the agent being audible.
    audible_dbfs: float = -60.0
    # A frame passes while the agent is audible only this far above the loudest echo to
    # expect (gate), or the canceller's residual only this far (aec).
    margin_db: float = 3.0
    aec_margin_db: float = 0.0
    # The loudest echo to expect = playback + coupling. Until measured, the echo is
    # assumed as loud as the playback itself (0 dB).
    initial_coupling_db: float = 0.0
    # Measured coupling = the 90th percentile of (near - far) over recent frames with
    # loud playback, plus the spread of echo frames above it (their 99th percentile lay
    # 0.9-1.3 dB above their 90th on the rig, at every delay and attenuation). A frame
    # more than `outlier_db` above the ceiling is taken for the user, not echo: it only
    # raises the ceiling by `creep_db_per_s` for its duration, so a louder echo path
    # (the system volume turned up) is still learned, slowly (docs/echo.md#coupling).
    coupling_percentile: float = 90.0
    echo_spread_db: float = 2.0
    outlier_db: float = 3.0
    creep_db_per_s: float = 1.0
    coupling_frames: int = 500  # 10 s of 20 ms frames
    coupling_min_frames: int = 10  # 200 ms: users talk over a reply within a second
    coupling_far_dbfs: float = -45.0  # only frames with playback at least this loud
    # No quieter frame ever counts as speech over the agent: the level below which the
    # reference clients (has_audio) and the emulator's VAD call a frame silence.
    speech_floor_dbfs: float = -40.0


class CouplingEstimator:
    """How loud the echo is relative to the playback (dB), measured on the call.

    `coupling_db` is the ceiling of the echo relative to the playback level: echo-only
    frames sit below it (the far level is the loudest block of the delay window);
    speech over the agent sits above it, and is counted as barely above it, so it moves
    the estimate slowly (docs/echo.md#coupling).
    """

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self._ratios: deque[float] = deque(maxlen=settings.coupling_frames)
        self._value = settings.initial_coupling_db

    @property
    def coupling_db(self) -> float:
        return self._value

    @property
    def measured(self) -> bool:
        return len(self._ratios) >= self.settings.coupling_min_frames

    def observe(
        self, near_dbfs: float, far_dbfs: float, frame_s: float, trusted: bool = False
    ) -> None:
        """One frame heard while the agent played; `trusted`: known to be echo (the
        canceller explained it), never taken for the user."""
        s = self.settings
        if far_dbfs < s.coupling_far_dbfs or near_dbfs <= SILENCE_DBFS:
            return
        ratio = near_dbfs - far_dbfs
        if not trusted and self.measured and ratio > self._value + s.outlier_db:
            self._value += s.creep_db_per_s * frame_s
            return
        self._ratios.append(ratio)
        if self.measured:
            typical = float(np.percentile(np.asarray(self._ratios), s.coupling_percentile))
            self._value = typical + s.echo_spread_db


@dataclass(frozen=True)
class EchoEstimate:
    """What the playback says about one uplink frame."""

    audible: bool  # the agent is (or just was) audible at the microphone
    far_dbfs: float  # loudest playback block that can echo in this frame
    expected_echo_dbfs: float  # far + coupling


class EchoEstimator:
    """The far end and the coupling together: the echo to expect in a frame."""

    def __init__(self, far: FarEnd, settings: GateSettings | None = None) -> None:
        self.far = far
        self.settings = settings or GateSettings()
        self.coupling = CouplingEstimator(self.settings)

    def estimate(
        self, t_s: float, duration_s: float, near_dbfs: float, learn: bool = True
    ) -> EchoEstimate:
        """The echo to expect in the frame captured at `t_s`; with `learn`, the frame
        also feeds the coupling (a caller that can tell echo from speech passes False
        and calls `coupling.observe` itself for the echo)."""
        s = self.settings
        self.far.pull()
        t0 = t_s - s.path_delay_ms / 1000
        t1 = t_s + duration_s + s.lead_ms / 1000
        far_dbfs, recent_dbfs = self.far.window_levels_dbfs(t0, t1, s.tail_ms / 1000)
        audible = recent_dbfs >= s.audible_dbfs
        if audible and learn:
            self.coupling.observe(near_dbfs, far_dbfs, duration_s)
        return EchoEstimate(audible, far_dbfs, far_dbfs + self.coupling.coupling_db)


def gate_passes(near_dbfs: float, est: EchoEstimate, settings: GateSettings) -> bool:
    """True when a frame may go upstream as it is (docs/echo.md#gate-thresholds)."""
    if not est.audible:
        return True
    return near_dbfs > max(est.expected_echo_dbfs + settings.margin_db, settings.speech_floor_dbfs)


class ErleMeter:
    """Echo return loss enhancement: how much quieter the echo leaves than it came.

    10 log10(near power / output power) over frames where the agent is audible and the
    user is not talking over it, in two figures (docs/echo.md#erle): `erle_db`, both
    powers smoothed with a time constant (a first-order average, as WebRTC's own
    statistic smooths): what the canceller does now, for the live view; and
    `call_erle_db`, both energies summed over the whole call: what it did, for the
    summary. The last seconds alone swing by 10-40 dB whenever the echo path changes and
    the canceller re-adapts (on a loaded machine, PulseAudio's loopback moves), so a
    figure at the end is chance; the sum weighs every echo frame the user sent."""

    def __init__(self, frame_s: float, time_constant_s: float = 2.0, warmup_s: float = 0.5):
        self._alpha = min(1.0, frame_s / time_constant_s)
        self._warmup = max(1, round(warmup_s / frame_s))
        self._near = 0.0
        self._out = 0.0
        self._near_sum = 0.0
        self._out_sum = 0.0
        self._count = 0

    def observe(self, near: Float32Array, out: Float32Array) -> None:
        a = self._alpha
        near_ms, out_ms = mean_square(near), mean_square(out)
        self._near += a * (near_ms - self._near)
        self._out += a * (out_ms - self._out)
        self._near_sum += near_ms
        self._out_sum += out_ms
        self._count += 1

    @property
    def erle_db(self) -> float | None:
        return self._ratio_db(self._near, self._out)

    @property
    def call_erle_db(self) -> float | None:
        return self._ratio_db(self._near_sum, self._out_sum)

    def _ratio_db(self, near: float, out: float) -> float | None:
        if self._count < self._warmup or near <= 0:
            return None
        return 10.0 * math.log10(near / max(out, 1e-12))
