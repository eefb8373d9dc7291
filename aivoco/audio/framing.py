"""Captured device blocks -> uplink frames: converted to the call's rate, cut into whole
frames, each stamped with the time its first sample left the microphone's converter.

Phase. A sinc converter holds output back (libsamplerate's sinc_fastest, 44.1 -> 16 kHz:
1.2 ms). Cut from the converter's first output sample, a frame's last sample would come
out only with the device block *after* the one that holds it: one capture period (10 ms)
later. So the converted stream starts with as much silence as the converter holds back;
frame edges then fall where a whole device block's output ends, and a frame leaves with
the block that holds its last sample (docs/devices.md#capture). The timestamps count
that silence: a frame's `captured_at_s` stays the time of its first sample.
"""

from __future__ import annotations

import numpy as np

from aivoco.audio.chunk import AudioChunk, Float32Array, float32_to_pcm16
from aivoco.audio.resample import live_resampler


class CaptureFramer:
    def __init__(self, device_rate_hz: int, rate_hz: int, frame_frames: int) -> None:
        self.device_rate_hz = device_rate_hz
        self.rate_hz = rate_hz
        self.frame_frames = frame_frames
        self.resampler = live_resampler(device_rate_hz, rate_hz)
        self._pending = np.zeros(0, np.float32)  # converted, not yet a whole frame
        self._produced = 0  # converter output position of _pending[0]
        self._fed = 0  # device frames fed to the converter
        self._phased = False  # the leading silence is in place

    @property
    def converting(self) -> bool:
        return not self.resampler.passthrough

    def frames(self, samples: Float32Array, start_s: float) -> list[AudioChunk]:
        """The whole frames that `samples` (frames, channels) completes; `start_s`: the
        time of its first sample."""
        if samples.shape[0] == 0:
            return []
        anchor = (self._fed, start_s)
        self._fed += samples.shape[0]
        mono = downmix(samples)
        rs = self.resampler
        converted = mono if rs.passthrough else rs.process_float(mono)[:, 0]
        if not self._phased:
            self._phased = True
            held = round(self._fed * rs.ratio) - converted.shape[0]
            if held > 0:
                converted = np.concatenate([np.zeros(held, np.float32), converted])
                self._produced = -held
        pending = np.concatenate([self._pending, converted]) if self._pending.size else converted
        n = self.frame_frames
        whole = pending.shape[0] // n
        pcm = float32_to_pcm16(pending[: whole * n])
        self._pending = pending[whole * n :].copy()
        out = []
        for k in range(whole):
            # Output j of the converter is input j / ratio (libsamplerate keeps alignment).
            at = anchor[1] + (self._produced / rs.ratio - anchor[0]) / self.device_rate_hz
            self._produced += n
            out.append(AudioChunk(pcm[k * n : (k + 1) * n], self.rate_hz, captured_at_s=at))
        return out


def downmix(samples: Float32Array) -> Float32Array:
    """(frames, channels) -> mono by averaging. Stereo, the usual capture layout, as one
    add and one scale: `mean(axis=1)` costs five times as much per device block."""
    channels = samples.shape[1]
    if channels == 1:
        return samples[:, 0]
    if channels == 2:
        mono: Float32Array = samples[:, 0] + samples[:, 1]
        mono *= np.float32(0.5)
        return mono
    averaged: Float32Array = samples.mean(axis=1, dtype=np.float32)
    return averaged
