"""Signal levels per chunk: peak, RMS, dBFS and the `has_audio` decision.

Full scale is 32768 (the reference clients compute `max_amplitude` as peak |s| / 32768,
docs/protocols.md#sts-audio-data). `has_audio` follows the terminal reference client: a chunk
has audio when its peak exceeds HAS_AUDIO_PEAK_THRESHOLD = 0.01 of full scale (-40 dBFS;
the browser playground uses 0.001). Silence, line hiss and dither stay below it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from aivoco.audio.chunk import AudioChunk

FULL_SCALE = 32768.0
HAS_AUDIO_PEAK_THRESHOLD = 0.01
# dBFS reported for digital silence: a floor rather than -inf, so meters and JSON stay finite.
SILENCE_DBFS = -96.0


def peak(chunk: AudioChunk) -> float:
    """Peak |sample| / 32768 over all channels, in [0, 1] (once per chunk: cached)."""
    return chunk.peak


def mean_square(x: npt.NDArray[np.floating[Any]]) -> float:
    """The mean of x squared over float samples: one dot product. `np.mean(np.square(x))`
    cost five times as much on a 20 ms frame (its Python wrapper, not the arithmetic),
    and the uplink takes two or three levels per frame (docs/performance.md#clock)."""
    v = np.ravel(x)
    if v.size == 0:
        return 0.0
    return float(np.dot(v, v)) / v.size


def rms(chunk: AudioChunk) -> float:
    """Root-mean-square level / 32768, in [0, 1]."""
    if chunk.frames == 0:
        return 0.0
    return math.sqrt(mean_square(chunk.samples.astype(np.float32))) / FULL_SCALE


def to_dbfs(level: float) -> float:
    """A linear level (1.0 = full scale) in dBFS, floored at SILENCE_DBFS."""
    if level <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(level))


def rms_dbfs(chunk: AudioChunk) -> float:
    return to_dbfs(rms(chunk))


def peak_dbfs(chunk: AudioChunk) -> float:
    return to_dbfs(peak(chunk))


def has_audio(chunk: AudioChunk, threshold: float = HAS_AUDIO_PEAK_THRESHOLD) -> bool:
    """True when the chunk's peak exceeds `threshold` (fraction of full scale)."""
    return peak(chunk) > threshold
