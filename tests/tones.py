"""Test signals and their analysis: sine tones, dominant frequency, steady-state RMS.

Shared by the resampler, file and device tests, which all check that a tone keeps its
frequency and level through a conversion chain.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aivoco.audio.chunk import AudioChunk

FloatArray = npt.NDArray[np.float64]


def sine(freq_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.5) -> FloatArray:
    """A sine starting at phase 0, as float64 in [-amplitude, amplitude]."""
    n = round(rate_hz * seconds)
    out: FloatArray = amplitude * np.sin(2 * np.pi * freq_hz * np.arange(n) / rate_hz)
    return out


def sine_chunk(freq_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.5) -> AudioChunk:
    return AudioChunk.from_float32(sine(freq_hz, rate_hz, seconds, amplitude), rate_hz)


def sine_dbfs(amplitude: float) -> float:
    """RMS level of a sine of `amplitude` (fraction of full scale), in dBFS."""
    return float(20 * np.log10(amplitude / np.sqrt(2)))


def as_float(x: AudioChunk | npt.ArrayLike) -> FloatArray:
    """Mono samples as float64 in [-1, 1) (int16 input is scaled by 1/32768)."""
    if isinstance(x, AudioChunk):
        x = x.mono_samples()
    arr = np.asarray(x)
    if arr.dtype == np.int16:
        return arr.astype(np.float64) / 32768.0
    return arr.astype(np.float64)


def dominant_freq(x: AudioChunk | npt.ArrayLike, rate_hz: int) -> float:
    """Frequency of the strongest FFT bin (Hann window, parabolic peak interpolation)."""
    y = as_float(x)
    if y.size < 16:
        raise ValueError(f"need at least 16 samples to find a frequency, got {y.size}")
    mag = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    k = int(np.argmax(mag[1:-1])) + 1
    # Interpolating on log magnitudes puts the peak well inside one bin, so short
    # segments still resolve the tone to a fraction of a hertz.
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return float((k + offset) * rate_hz / y.size)


def steady(x: AudioChunk | npt.ArrayLike, threshold: float = 0.05, trim: float = 0.1) -> FloatArray:
    """The part of a tone between its first and last loud sample, trimmed by `trim` of
    its length at each end so onsets, fades and filter transients are left out."""
    y = as_float(x)
    loud = np.flatnonzero(np.abs(y) > threshold)
    if loud.size == 0:
        return y[:0]
    first, last = int(loud[0]), int(loud[-1]) + 1
    cut = int((last - first) * trim)
    out: FloatArray = y[first + cut : last - cut]
    return out


def level_dbfs(x: AudioChunk | npt.ArrayLike) -> float:
    """RMS in dBFS, computed here rather than by `aivoco.audio.levels`, so the tests
    that use it do not lean on the code under test."""
    y = as_float(x)
    return float(10 * np.log10(np.mean(y * y) + 1e-20))


def max_phase_jump(x: AudioChunk | npt.ArrayLike, rate_hz: int, freq_hz: float) -> float:
    """Largest irregularity (radians) in a tone's phase advance from one 10 ms window to
    the next. A continuous tone advances by the same angle every window, so this stays
    near 0; a dropped or repeated block of audio shifts the phase and shows as a jump
    (10 ms lost from a 440 Hz tone: 4.4 cycles, a 2.5 rad jump)."""
    y = as_float(x)
    win = rate_hz // 100
    n = y.size // win
    if n < 3:
        raise ValueError("need at least 30 ms of tone")
    t = np.arange(n * win) / rate_hz
    probe = (y[: n * win] * np.exp(-2j * np.pi * freq_hz * t)).reshape(n, win).sum(axis=1)
    steps = np.angle(probe[1:] / probe[:-1])  # advance per window, wrapped to (-pi, pi]
    return float(np.abs(np.angle(np.exp(1j * (steps - np.median(steps))))).max())
