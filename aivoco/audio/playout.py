"""Playback paths: agent audio -> resample -> jitter buffer -> a clock that consumes it.

The clock is either a PortAudio output callback (`engine.DevicePlayer`) or, when a file
stands in for the speaker, `ClockPlayer`: a thread that consumes the buffer at real
time, so marks, barge-in and the recording behave exactly as with a speaker. Both tap
what they play into a monitor ring that observers drain with `take_played()`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from aivoco.audio.chunk import AudioChunk, float32_to_pcm16
from aivoco.audio.files import Pacer
from aivoco.audio.jitter import JitterBuffer, JitterStats
from aivoco.audio.resample import ToRate
from aivoco.audio.ring import SampleRing
from aivoco.audio.timed import TimedRing
from aivoco.audio.wav import WavWriter
from aivoco.errors import AivocoError

T = TypeVar("T")

MONITOR_MS = 2000  # the observer drains every ~50 ms; 2 s covers long stalls
# The echo reference (what was written to the device, after the volume): drained by
# the uplink every frame (10-200 ms); 2 s covers a long stall. Overflow drops the oldest.
REFERENCE_MS = 2000
TICK_MS = 10
MAX_VOLUME = 2.0


@dataclass(frozen=True)
class PlayerStats:
    jitter: JitterStats
    device_underflows: int
    clock_rate_hz: int
    # A device's measured output latency: how far ahead of the speaker the callback
    # writes (its DAC time minus now), None for a virtual speaker.
    output_latency_ms: float | None = None


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
        played = self.monitor.read()
        lost = self.monitor.dropped_frames - self._monitor_lost
        self._monitor_lost += lost
        if lost:
            played = np.concatenate([np.zeros((lost, played.shape[1]), np.float32), played])
        return AudioChunk(float32_to_pcm16(played), self.clock_rate_hz)

    def stats(self) -> PlayerStats:
        return PlayerStats(
            self.jitter.stats(), self.device_underflows, self.clock_rate_hz, self.output_latency_ms
        )

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ClockPlayer(Player[T]):
    """A virtual speaker: consumes the jitter buffer in real time on its own thread and
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aivoco-clock-player", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        tick = self.clock_rate_hz * TICK_MS // 1000
        buf = np.zeros((tick, 1), np.float32)
        pacer = Pacer(TICK_MS, catch_up=True)  # a speaker's clock does not pause
        try:
            while not self._stop.is_set():
                pacer.wait()
                self.jitter.fill(buf)
                if self.volume != 1.0:
                    buf *= self.volume
                # A virtual speaker plays each tick as it is filled.
                self.reference.write(buf, time.monotonic())
                if self._wav is not None:
                    self._wav.write(AudioChunk(float32_to_pcm16(buf), self.clock_rate_hz))
        except AivocoError as exc:  # e.g. the disk filled up: the session reports it
            self.error = exc

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self._wav is not None:
            self._wav.close()
