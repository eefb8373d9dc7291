"""Audio files standing in for the microphone: decode, downmix, resample, pace.

Decoding uses libsndfile through `soundfile` (its wheels bundle libsndfile, so WAV,
FLAC, OGG/Vorbis, Opus and MP3 read the same everywhere). Files are read in blocks and
converted as a stream, so a long file never sits in memory whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aivoco.audio.chunk import AudioChunk, float32_to_pcm16
from aivoco.audio.resample import StreamResampler
from aivoco.audio.schedule import PacedSource, Schedule, paced
from aivoco.errors import AudioFileError

_READ_BLOCK_FRAMES = 8192


def _open(path: Path) -> Any:
    import soundfile

    if not path.exists():
        raise AudioFileError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioFileError(f"{path} is a directory, not an audio file")
    try:
        return soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"cannot read audio file {path}: {exc}") from exc


def probe(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(sample_rate_hz, channels, frames) of an audio file."""
    with _open(Path(path)) as f:
        return int(f.samplerate), int(f.channels), int(f.frames)


def iter_file_pcm(path: str | os.PathLike[str], sample_rate_hz: int) -> Iterator[AudioChunk]:
    """Decode a file as mono int16 at `sample_rate_hz`, block by block."""
    import soundfile

    p = Path(path)
    with _open(p) as f:
        rs = StreamResampler(int(f.samplerate), sample_rate_hz, 1)
        # python-soundfile seeks back to its own position after every read, and
        # libsndfile's MP3 seeking is approximate for VBR files: block reads splice in
        # audio from the wrong places (seen with `lame -V2` files). One read decodes MP3
        # sequentially, holding it in memory (~10 MB per minute at 44.1 kHz mono).
        block_frames = -1 if f.format == "MP3" else _READ_BLOCK_FRAMES
        total = 0
        while True:
            try:
                block = f.read(block_frames, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as exc:
                raise AudioFileError(f"cannot decode {p}: {exc}") from exc
            if block.shape[0] == 0:
                break
            total += block.shape[0]
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            out = rs.process_float(mono)
            if out.shape[0]:
                yield AudioChunk(float32_to_pcm16(out), sample_rate_hz)
        if total == 0:
            raise AudioFileError(f"{p} contains no audio frames")
        tail = rs.flush()
        if tail.frames:
            yield tail


def read_file(path: str | os.PathLike[str], sample_rate_hz: int) -> AudioChunk:
    """A whole file as one mono int16 chunk at `sample_rate_hz`."""
    return AudioChunk.concat(list(iter_file_pcm(path, sample_rate_hz)))


class FileSource(PacedSource):
    """Fixed-size frames from a file, paced in real time or as fast as possible.

    A timed source: `due(now)` gives the frames whose time has come (frame k is due at
    start + k x frame_ms, on a `Schedule`), so the process's shared clock can pace
    every call's uplink from one thread; iterating paces by sleeping instead. After the
    file ends, `finished` becomes True and, if `then_silence`, silence frames keep
    coming at the same pace (calls keep the uplink alive until they hang up).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate_hz: int,
        frame_ms: int,
        realtime: bool = True,
        then_silence: bool = True,
    ) -> None:
        super().__init__(Schedule(frame_ms / 1000), sample_rate_hz)
        self.path = Path(path)
        self.frame_ms = frame_ms
        self.frame_frames = sample_rate_hz * frame_ms // 1000
        self.realtime = realtime
        self.then_silence = then_silence
        self.finished = False
        self._frames: Iterator[AudioChunk] | None = None
        self._exhausted = False  # the file ended and no silence follows
        probe(self.path)  # fail early with a clear message, before any connection

    def due(self, now: float) -> list[AudioChunk]:
        """The frames due at `now` (none once closed or, without silence, at the end)."""
        if self._frames is None:
            self._frames = self._unpaced()
        count = self.schedule.due(now) if self.realtime else 1
        out = []
        for _ in range(count):
            frame = next(self._frames, None)
            if frame is None:
                self._exhausted = True
                break
            out.append(frame)
        return out

    def __iter__(self) -> Iterator[AudioChunk]:
        return paced(self.due, self.schedule, lambda: self._closed or self._exhausted)

    def _unpaced(self) -> Iterator[AudioChunk]:
        pending = np.zeros(0, np.int16)
        for chunk in iter_file_pcm(self.path, self.sample_rate_hz):
            pending = np.concatenate([pending, chunk.mono_samples()])
            while pending.shape[0] >= self.frame_frames:
                if self._closed:
                    return
                frame, pending = pending[: self.frame_frames], pending[self.frame_frames :]
                yield AudioChunk(frame.copy(), self.sample_rate_hz)
        if pending.shape[0] and not self._closed:
            padded = np.zeros(self.frame_frames, np.int16)
            padded[: pending.shape[0]] = pending
            yield AudioChunk(padded, self.sample_rate_hz)
        self.finished = True
        silence = AudioChunk.silence(self.frame_frames, self.sample_rate_hz)
        while self.then_silence and not self._closed:
            yield silence
