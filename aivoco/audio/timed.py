"""Audio with its time: a sample ring whose reader learns when each sample met the converter.

Echo control needs to know which played sample a captured sample may contain
(docs/echo.md#alignment). The PortAudio callbacks know it: each gets the time its
block reaches the DAC (`outputBufferDacTime`) or left the ADC (`inputBufferAdcTime`),
on the stream's clock, next to `currentTime`. The callback turns that into our clock,
`time.monotonic()`, by the reported distance (`block_time_s`), and hands the block and
the time of its first sample to `TimedRing.write`. The reader gets samples back with
the time of the first one, on a worker thread.

Both sides keep to the callback rules: the writer copies into a preallocated ring and
stores one tuple under a short lock; the reader allocates. Overflow drops the oldest
samples (as `SampleRing`); the times of what remains stay exact, because they are
computed from absolute sample positions, not from what was read before.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from aivoco.audio.chunk import Float32Array
from aivoco.audio.ring import SampleRing

# A reported distance between `currentTime` and a buffer's DAC/ADC time outside this
# range is not believed (some host APIs report zeros or an unrelated clock): the
# stream's nominal latency is used instead.
MAX_BELIEVED_DELAY_S = 2.0


def block_time_s(now_s: float, current_s: float, buffer_s: float, fallback_s: float) -> float:
    """Our clock's time (`now_s` = time.monotonic() in the callback) of the buffer that
    PortAudio times at `buffer_s` on its clock, where that clock reads `current_s` now.

    Output buffers lie in the future (DAC time > current), input buffers in the past:
    the signed distance carries over. `fallback_s` is the signed distance to use when
    the reported one is not believable."""
    delta = buffer_s - current_s
    if not -MAX_BELIEVED_DELAY_S < delta < MAX_BELIEVED_DELAY_S or (
        current_s == 0.0 and buffer_s == 0.0
    ):
        delta = fallback_s
    return now_s + delta


@dataclass(frozen=True)
class TimedBlock:
    """Samples read from a `TimedRing` and the monotonic time of the first one."""

    samples: Float32Array  # (frames, channels)
    start_s: float
    start_index: int  # absolute position of the first sample in the ring's stream

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])


class TimedRing:
    def __init__(self, capacity_frames: int, sample_rate_hz: int, channels: int = 1) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._ring = SampleRing(capacity_frames, channels)
        self._lock = threading.Lock()
        self._written = 0  # frames ever written
        self._anchor = (0, time.monotonic())  # (absolute index, its time)

    @property
    def dropped_frames(self) -> int:
        return self._ring.dropped_frames

    @property
    def written_frames(self) -> int:
        return self._written

    def write(self, frames: Float32Array, start_s: float) -> None:
        """Append a block whose first sample is at `start_s` (callback side)."""
        with self._lock:
            self._anchor = (self._written, start_s)
            self._ring.write(frames)
            self._written += frames.shape[0]

    def read(self) -> TimedBlock:
        """Everything buffered, oldest first, with its time (worker side)."""
        with self._lock:
            start = self._written - self._ring.available
            samples = self._ring.read()
            index, at = self._anchor
        return TimedBlock(samples, at + (start - index) / self.sample_rate_hz, start)
