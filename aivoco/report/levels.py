"""Level envelopes (dBFS per short window) of a `--record` stereo WAV, read in blocks.

An hour at 24 kHz is 86 million stereo frames (345 MB as int16); the report needs a
few thousand points per row, so the file is streamed in blocks and reduced to one RMS
value per window as it goes. Memory stays at one block plus the envelopes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aivoco.errors import AudioFileError

FloatArray = npt.NDArray[np.float64]

WINDOW_S = 0.02  # one speech frame: fine enough to see a word, cheap for an hour
FLOOR_DBFS = -100.0  # digital silence would be -inf
# Activity: the agent's audio arrives clean (silence is digital zero), so a low
# threshold finds its speech without picking up noise; merging gaps shorter than the
# session's agent-turn gap (0.5 s) keeps a sentence with pauses as one band.
ACTIVE_DBFS = -50.0
MERGE_GAP_S = 0.5
MIN_SEGMENT_S = 0.1
_WINDOWS_PER_BLOCK = 2048  # about 1M frames (8 MB as float32 stereo) per read at 24 kHz


class RecordingMismatchError(AudioFileError):
    """The file reads as audio but is not the stereo recording a report needs."""


@dataclass
class Levels:
    path: Path
    rate_hz: int
    frames: int
    window_s: float
    user_db: FloatArray  # left channel: you
    agent_db: FloatArray  # right channel: the agent, as played

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate_hz if self.rate_hz else 0.0

    def times(self) -> FloatArray:
        """Start time of each window."""
        return np.arange(len(self.user_db), dtype=np.float64) * self.window_s


def _open(path: Path) -> Any:
    import soundfile

    try:
        return soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"cannot read recording {path}: {exc}") from exc


def _mean_squares(f: Any, window: int) -> FloatArray:
    """Mean square per window and channel (full scale = 1.0), reading block by block."""
    import soundfile

    parts: list[FloatArray] = []
    block_frames = window * _WINDOWS_PER_BLOCK
    # int16 reads are ~10x cheaper than float32 ones (libsndfile converts nothing for
    # PCM16, which is what --record writes), and einsum sums the squares without a
    # temporary: an hour's envelope takes about half a second instead of two.
    scale = 1.0 / (window * 32768.0**2)
    while True:
        try:
            block = f.read(block_frames, dtype="int16", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(f"cannot decode recording {f.name}: {exc}") from exc
        n = block.shape[0]
        if n == 0:
            break
        x = block.astype(np.float32)
        full = n // window * window
        if full:
            frames = x[:full].reshape(-1, window, x.shape[1])
            parts.append(np.einsum("wfc,wfc->wc", frames, frames).astype(np.float64) * scale)
        if full < n:  # only the last block ends mid-window
            tail = x[full:].astype(np.float64) / 32768.0
            parts.append(np.mean(tail * tail, axis=0)[None, :])
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def to_dbfs(mean_square: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(mean_square)
    return np.maximum(db, FLOOR_DBFS)


def read_levels(path: str | os.PathLike[str], window_s: float = WINDOW_S) -> Levels:
    """Envelopes of a stereo recording; RecordingMismatchError if it is not one."""
    p = Path(path)
    if p.is_dir():
        raise AudioFileError(f"recording {p} is a directory, not a WAV file")
    with _open(p) as f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        if channels != 2:
            hint = " (an --output file holds only the agent)" if channels == 1 else ""
            raise RecordingMismatchError(
                f"recording {p} has {channels} channel(s); an aivoco recording (--record) "
                f"has 2: you on the left, the agent on the right{hint}"
            )
        window = max(1, round(rate * window_s))
        ms = _mean_squares(f, window)
    if ms.shape[0] == 0:
        raise RecordingMismatchError(f"recording {p} holds no audio frames")
    db = to_dbfs(ms)
    return Levels(p, rate, frames, window / rate, db[:, 0].copy(), db[:, 1].copy())


def segments(
    db: FloatArray,
    window_s: float,
    threshold: float = ACTIVE_DBFS,
    merge_gap_s: float = MERGE_GAP_S,
    min_s: float = MIN_SEGMENT_S,
) -> list[tuple[float, float]]:
    """(start, end) seconds where the level is above `threshold`, short gaps bridged."""
    active = np.concatenate([[False], db > threshold, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    out: list[tuple[float, float]] = []
    for start, end in zip(edges[::2] * window_s, edges[1::2] * window_s, strict=True):
        if out and start - out[-1][1] < merge_gap_s:
            out[-1] = (out[-1][0], float(end))
        else:
            out.append((float(start), float(end)))
    return [(s, e) for s, e in out if e - s >= min_s]


def reduce_max(values: FloatArray, max_points: int) -> tuple[FloatArray, int]:
    """`values` max-pooled to at most `max_points` (and the pooling factor).

    Max keeps every word visible when a row has fewer pixels than windows; a mean
    would flatten short bursts into the floor.
    """
    factor = max(1, -(-len(values) // max_points))
    if factor == 1:
        return values, 1
    pad = (-len(values)) % factor
    padded = np.concatenate([values, np.full(pad, FLOOR_DBFS)]) if pad else values
    return padded.reshape(-1, factor).max(axis=1), factor
