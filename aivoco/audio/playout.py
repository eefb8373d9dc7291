"""Playback paths: agent audio -> resample -> jitter buffer -> a clock that consumes it.

The clock is either a PortAudio output callback (`engine.DevicePlayer`) or, when a file
stands in for the speaker, `ClockPlayer`: a job on the process's shared clock
(`clock.py`) that consumes the buffer in real time, so marks, barge-in and the recording
behave exactly as with a speaker. Both tap
what they play into a monitor ring that observers drain with `take_played()`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from aivoco.audio.chunk import AudioChunk, float32_to_pcm16
from aivoco.audio.clock import ClockHandle, shared_clock
from aivoco.audio.jitter import JitterBuffer, JitterStats
from aivoco.audio.resample import ToRate
from aivoco.audio.ring import SampleRing
from aivoco.audio.schedule import Schedule
from aivoco.audio.timed import TimedRing
from aivoco.audio.wav import WavWriter
from aivoco.errors import AivocoError

T = TypeVar("T")

MONITOR_MS = 2000  # the observer drains every ~50 ms; 2 s covers long stalls
# The echo reference (what was written to the device, after the volume): drained by
# the uplink every frame (10-200 ms); 2 s covers a long stall. Overflow drops the oldest.
REFERENCE_MS = 2000
TICK_MS = 10  # the unit a virtual speaker plays in
CLOCK_PERIOD_S = 0.04  # how often it plays what is due (four units; docs/performance.md#clock)
MAX_VOLUME = 2.0


@dataclass(frozen=True)
class PlayerStats:
    jitter: JitterStats
    device_underflows: int
    clock_rate_hz: int
    # A device's measured output latency: how far ahead of the speaker the callback
    # writes (its DAC time minus now), None for a virtual speaker.
    output_latency_ms: float | None = None
    # The latency asked of the device's stream in use once the ladder has accepted it
    # (docs/devices.md#latency); None while it settles, and for a virtual speaker.
    output_step_ms: int | None = None


def take_monitor(monitor: SampleRing, seen_lost: int, rate_hz: int) -> tuple[AudioChunk, int]:
    """What a monitor ring holds, as mono int16 at `rate_hz`, with what it dropped since
    `seen_lost` put back as silence; and the new count of dropped frames seen."""
    played = monitor.read()
    lost = monitor.dropped_frames - seen_lost
    if lost:
        played = np.concatenate([np.zeros((lost, played.shape[1]), np.float32), played])
    # What was played came from int16 agent audio (resampled, faded, scaled): finite.
    return AudioChunk(float32_to_pcm16(played, finite=True), rate_hz), seen_lost + lost


class Player(Generic[T]):
    """Shared playback logic; subclasses provide the clock (`start`/`close`)."""

    def __init__(self, clock_rate_hz: int, prefill_ms: float = 60.0) -> None:
        self.clock_rate_hz = clock_rate_hz
        self.monitor = SampleRing(clock_rate_hz * MONITOR_MS // 1000)
        self.jitter: JitterBuffer[T] = JitterBuffer(
            clock_rate_hz, prefill_ms=prefill_ms, monitor=self.monitor
        )
        self._to_clock = ToRate(clock_rate_hz)
        # play/clear/add_marker share the resampler: a local barge-in clears from the
        # uplink thread while the event thread plays.
        self._producer_lock = threading.Lock()
        self.device_underflows = 0
        self.output_latency_ms: float | None = None
        self.error: AivocoError | None = None
        # Gain applied to what is written to the device (the `+`/`-` keys); read by the
        # clock once per block, so a change is heard within one block.
        self.volume = 1.0
        # What the clock wrote, after the volume, with the time it is heard: echo control's
        # far-end reference (aivoco.audio.echo.FarEnd, docs/echo.md#alignment).
        self.reference = TimedRing(clock_rate_hz * REFERENCE_MS // 1000, clock_rate_hz)
        self._monitor_lost = 0  # monitor overflow already reported as silence

    def play(self, chunk: AudioChunk) -> None:
        """Queue agent audio (any rate; downmixed). Call from one producer thread."""
        with self._producer_lock:
            self.jitter.write(self._to_clock.process(chunk).to_float32())

    def clear(self) -> int:
        """Barge-in: discard queued audio (short fade), including resampler state."""
        with self._producer_lock:
            self._to_clock.reset()
            return self.jitter.clear()

    def add_marker(self, token: T) -> None:
        """A mark ends a stretch of audio: flush the resamplers' few held-back ms first,
        so the mark is reached after the very last sample queued before it."""
        with self._producer_lock:
            self.jitter.write(self._to_clock.flush().to_float32())
            self.jitter.add_marker(token)

    def cue_heard(self, key: int) -> None:
        """Report (`pop_heard`) when the next audio played is heard: call just before
        `play`. The time is the block's DAC time on a device, the tick on a clock."""
        with self._producer_lock:
            self.jitter.cue(key)

    def pop_heard(self) -> list[tuple[int, float | None]]:
        """Cues resolved since the last call: (key, time heard, or None if never)."""
        return self.jitter.pop_cues()

    def set_volume(self, volume: float) -> float:
        """Set the playback gain (0 .. MAX_VOLUME); returns the value in force."""
        self.volume = min(MAX_VOLUME, max(0.0, float(volume)))
        return self.volume

    def pop_reached(self) -> list[T]:
        return self.jitter.pop_reached()

    def take_played(self) -> AudioChunk:
        """Everything handed to the speaker since the last call (mono int16).

        If the reader fell more than MONITOR_MS behind, the oldest played audio was
        dropped from the monitor: it comes back as silence of the same length, so what
        is taken always spans the speaker's whole timeline."""
        chunk, self._monitor_lost = take_monitor(
            self.monitor, self._monitor_lost, self.clock_rate_hz
        )
        return chunk

    def buffered_ms(self) -> float:
        """Audio queued and not played yet (cheaper than `stats()`: read every tick)."""
        return self.jitter.buffered_frames * 1000.0 / self.clock_rate_hz

    def stats(self) -> PlayerStats:
        return PlayerStats(
            self.jitter.stats(), self.device_underflows, self.clock_rate_hz, self.output_latency_ms
        )

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ClockPlayer(Player[T]):
    """A virtual speaker: consumes the jitter buffer in real time on the shared clock and
    optionally writes what it plays to a WAV (the `--output FILE` timeline)."""

    acoustic = False  # no microphone can hear a file: echo control is not needed

    def __init__(
        self,
        clock_rate_hz: int,
        output_path: str | os.PathLike[str] | None = None,
        prefill_ms: float = 60.0,
    ) -> None:
        super().__init__(clock_rate_hz, prefill_ms)
        self.output_path = output_path
        self._wav = WavWriter(output_path, clock_rate_hz, 1) if output_path else None
        self._unit = clock_rate_hz * TICK_MS // 1000
        # A speaker's clock does not pause: after a stall it plays what was due at once.
        self._schedule = Schedule(TICK_MS / 1000, catch_up=True)
        self._buf = np.zeros((self._unit * 4, 1), np.float32)
        self._handle: ClockHandle | None = None

    def start(self) -> None:
        self._handle = shared_clock().every(CLOCK_PERIOD_S, self._tick, self._failed)

    def _failed(self, exc: BaseException) -> None:
        # e.g. the disk filled up under --output: the session reports it and ends.
        self.error = exc if isinstance(exc, AivocoError) else AivocoError(f"speaker: {exc}")

    def _tick(self, now: float) -> float | None:
        units = self._schedule.due(now)
        if units == 0:
            return None
        frames = units * self._unit
        if frames > self._buf.shape[0]:
            self._buf = np.zeros((frames, 1), np.float32)
        buf = self._buf[:frames]
        self.jitter.fill(buf)
        if self.volume != 1.0:
            buf *= self.volume
        # A virtual speaker plays each block as it is filled.
        self.reference.write(buf, now)
        if self._wav is not None:
            self._wav.write(AudioChunk(float32_to_pcm16(buf, finite=True), self.clock_rate_hz))
        # Wake when a clock period's worth of units is due (on the schedule's own grid).
        after = self._schedule.next_due()
        return None if after is None else after + CLOCK_PERIOD_S - TICK_MS / 1000

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._wav is not None:
            self._wav.close()
