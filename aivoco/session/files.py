"""The call's output files: the JSON Lines transcript and the stereo recording.

Both stay valid if the process dies mid-call: the transcript is flushed line by line,
and the recording uses `WavWriter`, which patches its header after every write.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.resample import ToRate
from aivoco.audio.wav import WavWriter
from aivoco.errors import AudioFileError
from aivoco.text import utf8_line

if TYPE_CHECKING:  # records.py imports this module: annotations only
    from aivoco.session.options import CallOptions
    from aivoco.session.records import RecordBus

# If one side of the recording stops producing (a dead thread or device), the other
# side is written against silence once it runs this far ahead, so the tracks stay
# time-aligned instead of one piling up in memory. Far above any stall of a live side
# (it was 500 ms): silence written for a side that was only late pushed its late audio,
# and the rest of its track, off the call's timeline, so a loaded machine stretched the
# recording. Both sides account for their own gaps (`Pacer.skipped_s`,
# `Player.take_played`), so a late side always catches up (tests/test_timeline.py).
MAX_SKEW_MS = 20_000


class TranscriptWriter:
    """Appends one JSON object per event, flushed as it happens.

    Lines are written as UTF-8 bytes through `utf8_line`, so a lone surrogate in a
    peer's text stays a JSON escape instead of failing the write. A write that fails
    (a full disk) is reported once, by raising `AudioFileError`; the file is closed
    then, and later records are not attempted.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise AudioFileError(
                f"cannot write transcript {self.path}: {exc.strerror or exc}"
            ) from exc
        self._lock = threading.Lock()
        self.failed = False

    def write(self, record: dict[str, Any]) -> None:
        line = utf8_line(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        with self._lock:
            if self._fh.closed:
                return
            try:
                self._fh.write(line)
                self._fh.flush()
            except OSError as exc:
                self.failed = True
                self._close_quietly()
                raise AudioFileError(
                    f"cannot write transcript {self.path}: {exc.strerror or exc}"
                ) from exc

    def _close_quietly(self) -> None:
        # The failed write was reported; a failed flush at close adds nothing.
        with contextlib.suppress(OSError):
            self._fh.close()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._close_quietly()


class _Track:
    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self.pending = np.zeros(0, np.int16)
        self._to_rate = ToRate(rate_hz)

    def add(self, chunk: AudioChunk) -> None:
        converted = self._to_rate.process(chunk)
        self.pending = np.concatenate([self.pending, converted.mono_samples()])


class StereoRecorder:
    """User on the left, agent (what was played) on the right, time-aligned.

    Both inputs are real-time streams that start when the call goes live: the frames
    sent upstream and the frames handed to the speaker. Frames are written in pairs as
    both sides catch up; a side that falls more than MAX_SKEW_MS behind is padded.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate_hz: int) -> None:
        self.path = Path(path)
        self.sample_rate_hz = sample_rate_hz
        self._wav = WavWriter(self.path, sample_rate_hz, channels=2)
        self._user = _Track(sample_rate_hz)
        self._agent = _Track(sample_rate_hz)
        self._lock = threading.Lock()
        self._max_skew = sample_rate_hz * MAX_SKEW_MS // 1000

    @property
    def duration_ms(self) -> float:
        return self._wav.duration_ms

    def add_user(self, chunk: AudioChunk) -> None:
        with self._lock:
            self._user.add(chunk)
            self._write_locked(final=False)

    def add_agent(self, chunk: AudioChunk) -> None:
        with self._lock:
            self._agent.add(chunk)
            self._write_locked(final=False)

    def _write_locked(self, final: bool) -> None:
        if self._wav.closed:
            return
        left, right = self._user.pending, self._agent.pending
        n = min(left.shape[0], right.shape[0])
        longest = max(left.shape[0], right.shape[0])
        if final or longest - n > self._max_skew:
            n = longest
        if n == 0:
            return
        frames = np.zeros((n, 2), np.int16)
        frames[: min(n, left.shape[0]), 0] = left[:n]
        frames[: min(n, right.shape[0]), 1] = right[:n]
        self._user.pending = left[n:]
        self._agent.pending = right[n:]
        self._wav.write(AudioChunk(frames, self.sample_rate_hz, 2))

    def close(self) -> None:
        with self._lock:
            if self._wav.closed:
                return
            try:
                self._write_locked(final=True)
            finally:
                self._wav.close()


def open_outputs(options: CallOptions, bus: RecordBus, rate_hz: int) -> StereoRecorder | None:
    """The transcript (a writer on the record bus) and the recording, if asked for."""
    if options.transcript_file is not None:
        bus.add_writer(TranscriptWriter(options.transcript_file))
    path = options.record_file or options.scratch_record_file
    return None if path is None else StereoRecorder(path, rate_hz)
