"""A bounded float32 sample ring shared between an audio callback and a worker thread.

Overflow policy: drop the oldest frames (and count them). For live capture that keeps
the newest audio, which is what a conversation needs when the worker fell behind.
The callback side (`write` from an input callback, `read_into` from an output callback)
only copies under a short lock: no allocation in the common path, no logging.
"""

from __future__ import annotations

import threading

import numpy as np

from aivoco.audio.chunk import Float32Array


class SampleRing:
    def __init__(self, capacity_frames: int, channels: int = 1) -> None:
        if capacity_frames <= 0:
            raise ValueError("capacity must be positive")
        self.capacity_frames = capacity_frames
        self.channels = channels
        self._buf = np.zeros((capacity_frames, channels), np.float32)
        self._start = 0  # index of the oldest frame
        self._size = 0
        self._lock = threading.Lock()
        self.dropped_frames = 0  # overflow: oldest frames discarded

    @property
    def available(self) -> int:
        return self._size

    def _copy_in(self, x: Float32Array) -> None:
        n = x.shape[0]
        end = (self._start + self._size) % self.capacity_frames
        first = min(n, self.capacity_frames - end)
        self._buf[end : end + first] = x[:first]
        if first < n:
            self._buf[: n - first] = x[first:]
        self._size += n

    def _copy_out(self, out: Float32Array, n: int) -> None:
        first = min(n, self.capacity_frames - self._start)
        out[:first] = self._buf[self._start : self._start + first]
        if first < n:
            out[first:n] = self._buf[: n - first]
        self._start = (self._start + n) % self.capacity_frames
        self._size -= n

    def write(self, frames: Float32Array) -> int:
        """Append frames; returns how many old frames were dropped to make room."""
        x = frames.reshape(-1, self.channels)
        with self._lock:
            return self._write_locked(x)

    def _write_locked(self, x: Float32Array) -> int:
        dropped = 0
        if x.shape[0] > self.capacity_frames:
            dropped += x.shape[0] - self.capacity_frames
            x = x[-self.capacity_frames :]
        overflow = self._size + x.shape[0] - self.capacity_frames
        if overflow > 0:
            self._start = (self._start + overflow) % self.capacity_frames
            self._size -= overflow
            dropped += overflow
        self._copy_in(x)
        self.dropped_frames += dropped
        return dropped

    def read_into(self, out: Float32Array) -> int:
        """Copy up to len(out) frames into `out`; returns the count copied."""
        with self._lock:
            n = min(int(out.shape[0]), self._size)
            self._copy_out(out, n)
            return n

    def read(self, max_frames: int | None = None) -> Float32Array:
        """Take up to `max_frames` (default: everything buffered) as a new array."""
        with self._lock:
            n = self._size if max_frames is None else min(max_frames, self._size)
            out = np.empty((n, self.channels), np.float32)
            self._copy_out(out, n)
            return out

    def clear(self) -> int:
        with self._lock:
            n = self._size
            self._start = self._size = 0
            return n
