"""A deliberately simple energy VAD that finds where user utterances end.

Why these numbers:
* 10 ms analysis frames: fine enough that utterance durations come out within ~10 ms,
  independent of how the client chunks its audio (64 ms in the browser, 20 or 100 ms on
  the call protocol; docs/protocols.md#sts-audio-data and docs/protocols.md#call-format).
* A frame is voiced when its RMS is at or above -40 dBFS (0.01 of full scale): the same
  level the terminal reference client uses for `has_audio` (as a peak), so anything a
  reference client calls silence is never speech here, while talking into a microphone
  (-30..-15 dBFS RMS) is well above it. RMS rather than peak keeps single clicks out.
* An utterance ends after 600 ms without a voiced frame: long enough to bridge the gaps
  between words, short enough that the echo comes back promptly.
* Bursts spanning less than 100 ms (clicks, a cough's edge) are discarded; the same
  100 ms of speech confirm an onset, which is what triggers barge-in.
* Utterances are cut at `max_utterance_s` so a noise floor above the threshold cannot
  grow the buffer without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aivoco.audio.chunk import Int16Array
from aivoco.audio.levels import FULL_SCALE, to_dbfs

FRAME_MS = 10


@dataclass
class SpeechStarted:
    """Onset confirmed: `min_speech_ms` of speech since the first voiced frame."""

    start_s: float


@dataclass
class UtteranceEnded:
    start_s: float
    duration_s: float
    peak_dbfs: float
    rms_dbfs: float
    samples: Int16Array  # first voiced frame to last voiced frame, at the input rate


VadEvent = SpeechStarted | UtteranceEnded


class EnergyVad:
    def __init__(
        self,
        sample_rate_hz: int,
        threshold_dbfs: float = -40.0,
        hangover_ms: float = 600.0,
        min_speech_ms: float = 100.0,
        max_utterance_s: float = 30.0,
    ) -> None:
        self.rate = sample_rate_hz
        self.frame = sample_rate_hz * FRAME_MS // 1000
        self.threshold = FULL_SCALE * 10 ** (threshold_dbfs / 20)
        self.hangover_frames = max(1, round(hangover_ms / FRAME_MS))
        self.min_frames = max(1, round(min_speech_ms / FRAME_MS))
        self.max_frames = max(self.min_frames, round(max_utterance_s * 1000 / FRAME_MS))
        self._pending = np.zeros(0, np.int16)
        self._n = 0  # frames analysed so far
        self._frames: list[Int16Array] = []  # candidate audio, first voiced frame onwards
        self._first = -1  # frame index of the first voiced frame, -1 when idle
        self._last = -1  # frame index of the last voiced frame
        self._voiced_sq: list[float] = []  # mean square of each voiced frame
        self._confirmed = False

    @property
    def in_speech(self) -> bool:
        """True between a confirmed onset and the end of that utterance."""
        return self._confirmed

    def feed(self, samples: Int16Array) -> list[VadEvent]:
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        events: list[VadEvent] = []
        whole = buf.size // self.frame
        for i in range(whole):
            self._step(buf[i * self.frame : (i + 1) * self.frame], events)
        self._pending = buf[whole * self.frame :].copy()
        return events

    def _step(self, frame: Int16Array, events: list[VadEvent]) -> None:
        x = frame.astype(np.float64)
        mean_sq = float(np.mean(x * x))
        voiced = mean_sq >= self.threshold * self.threshold
        idx = self._n
        self._n += 1
        if self._first < 0:
            if not voiced:
                return
            self._first = self._last = idx
            self._frames = [frame.copy()]
            self._voiced_sq = [mean_sq]
        else:
            self._frames.append(frame.copy())
            if voiced:
                self._last = idx
                self._voiced_sq.append(mean_sq)
        span = self._last - self._first + 1
        if not self._confirmed and span >= self.min_frames:
            self._confirmed = True
            events.append(SpeechStarted(self._first * FRAME_MS / 1000))
        if idx - self._last >= self.hangover_frames or span >= self.max_frames:
            self._finish(events)

    def _finish(self, events: list[VadEvent]) -> None:
        span = self._last - self._first + 1
        if span >= self.min_frames:
            audio = np.concatenate(self._frames[:span])
            peak = float(np.abs(audio.astype(np.int32)).max()) / FULL_SCALE
            rms = float(np.sqrt(np.mean(self._voiced_sq))) / FULL_SCALE
            events.append(
                UtteranceEnded(
                    start_s=self._first * FRAME_MS / 1000,
                    duration_s=span * FRAME_MS / 1000,
                    peak_dbfs=to_dbfs(peak),
                    rms_dbfs=to_dbfs(rms),
                    samples=audio,
                )
            )
        self._first = self._last = -1
        self._frames = []
        self._voiced_sq = []
        self._confirmed = False
