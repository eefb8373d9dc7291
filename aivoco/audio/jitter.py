"""Playback jitter buffer: pre-fill, underrun accounting, barge-in clear, playout marks.

Agent audio arrives in bursts; the output callback pulls at the device's steady pace.
The buffer holds float32 frames at the *device* rate (resampling happened on a worker),
so `fill()` from the output callback only copies.

Policies:
* Pre-fill (the hold): the first audio of a talk spurt (after start, a natural end, a
  stall or a clear) is held until it has waited the hold time, or until more than one
  of the peer's chunks plus the hold is buffered (a peer running ahead of real time
  needs no wait). Counting the hold from the first arrival, not from a buffered amount,
  is what keeps a peer that paces large chunks in real time from racing the buffer:
  with 100 ms chunks, a 60 ms "buffered" threshold is met by the first chunk alone, so
  playback started with no margin and the next chunk, due exactly as the first ran
  out, arrived a few ms late on most replies (docs/protocols.md#sts-server-events).
* Adaptive hold, from the first reply on: every arrival is compared with real-time
  pacing from the spurt's first arrival, on the device's own clock (frames played, so
  no thread timing enters); the hold covers the worst lateness of the last
  `JITTER_SPURTS` spurts plus one device block and `margin_ms`, never less than
  `prefill_ms`, never more than `max_prefill_ms`. Each underrun also raises the base
  by `prefill_step_ms`.
* Running dry while playing writes silence. It counts as an *underrun* when audio
  resumes within `stall_gap_ms` (a stall mid-utterance); a longer gap is the natural end
  of an agent turn and only counts as a *drain*.
* Overflow: bounded at `capacity_ms`; the oldest frames are dropped and counted, keeping
  playback close to live when the agent sends far ahead of real time.
* `clear()` (barge-in, Twilio `clear`): everything queued is discarded except the next
  `fade_ms`, which is faded to zero so the cut does not click.
* Marks (Twilio `mark`): a marker sits at the current write position and is reached
  once every frame queued before it has been played, dropped or cleared.
* Cues (when a reply is heard): a cue sits on the next frame written and resolves with
  the time that frame reaches the speaker (`fill`'s `at_s`: the block's DAC time), or
  with None if it is dropped or cleared before it plays.

`hold_ms` in the stats is the mean time first audio actually waited: the latency the
pre-fill adds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from aivoco.audio.chunk import Float32Array
from aivoco.audio.ring import SampleRing

T = TypeVar("T")


JITTER_SPURTS = 4  # how many talk spurts the hold remembers the worst lateness of


@dataclass(frozen=True)
class JitterStats:
    buffered_ms: float
    playing: bool
    underruns: int
    drains: int
    dropped_ms: float
    cleared_ms: float
    clears: int
    played_ms: float
    prefill_ms: float  # the hold applied to the next spurt
    hold_ms: float = 0.0  # mean time first audio waited before playing


class JitterBuffer(Generic[T]):
    def __init__(
        self,
        sample_rate_hz: int,
        channels: int = 1,
        *,
        prefill_ms: float = 60.0,
        max_prefill_ms: float = 240.0,
        prefill_step_ms: float = 20.0,
        capacity_ms: float = 60_000.0,
        fade_ms: float = 8.0,
        stall_gap_ms: float = 250.0,
        margin_ms: float = 0.0,
        monitor: SampleRing | None = None,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self.prefill_ms = prefill_ms
        self._prefill = max(1, round(prefill_ms * sample_rate_hz / 1000))
        self._max_prefill = max(self._prefill, round(max_prefill_ms * sample_rate_hz / 1000))
        self._prefill_step = round(prefill_step_ms * sample_rate_hz / 1000)
        self._fade = max(1, round(fade_ms * sample_rate_hz / 1000))
        self._stall_gap = round(stall_gap_ms * sample_rate_hz / 1000)
        self._margin = round(margin_ms * sample_rate_hz / 1000)
        # Arrival model, in device-clock frames (see the module docstring).
        self._spurt_origin = 0  # clock at the spurt's first arrival
        self._spurt_frames = 0  # frames written in this spurt so far
        self._lateness: deque[int] = deque([0], maxlen=JITTER_SPURTS)
        self._chunk = 0  # the largest write seen: the peer's chunk size
        self._block = 0  # the consumer's last block
        self._holds = 0
        self._held = 0
        self._ring = SampleRing(max(1, round(capacity_ms * sample_rate_hz / 1000)), channels)
        # Optional tap: every frame handed to the device (silence included), so meters
        # and the recorder see exactly what was played, on the device's timeline.
        self._monitor = monitor
        self._lock = threading.Lock()
        self._playing = False
        self._waited = 0
        self._clock = 0  # frames handed to the device, silence included
        self._dry_at: int | None = None
        # Set by clear(): the buffer will run dry because of the barge-in, not a stall.
        self._dry_by_clear = False
        self._write_pos = 0  # stream frames written
        self._read_pos = 0  # stream frames played, dropped or cleared
        self._markers: deque[tuple[int, T]] = deque()
        self._reached: deque[T] = deque()
        self._cues: deque[tuple[int, int]] = deque()  # (stream position, key)
        self._heard: deque[tuple[int, float | None]] = deque()  # (key, time or None)
        self._played = 0
        self._underruns = 0
        self._drains = 0
        self._dropped = 0
        self._cleared = 0
        self._clears = 0

    def raise_prefill(self, prefill_ms: float) -> None:
        """Hold at least `prefill_ms` from the next spurt on (never lowers the hold)."""
        with self._lock:
            want = round(prefill_ms * self.sample_rate_hz / 1000)
            self._prefill = min(self._max_prefill, max(self._prefill, want))

    def lower_prefill(self, from_ms: float, to_ms: float) -> None:
        """Take back what a step up added (`from_ms` -> `to_ms`), keeping whatever the
        network's jitter added on top of it."""
        with self._lock:
            drop = round((from_ms - to_ms) * self.sample_rate_hz / 1000)
            floor = max(1, round(to_ms * self.sample_rate_hz / 1000))
            self._prefill = max(floor, self._prefill - drop)

    # -- producer side (worker thread) -----------------------------------------------
    def write(self, frames: Float32Array) -> None:
        x = frames.reshape(-1, self.channels)
        if x.shape[0] == 0:
            return
        with self._lock:
            if self._dry_at is not None:
                if self._clock - self._dry_at < self._stall_gap:
                    self._underruns += 1
                    self._prefill = min(self._max_prefill, self._prefill + self._prefill_step)
                self._dry_at = None
            self._dry_by_clear = False
            if not self._playing and self._ring.available == 0:
                self._spurt_origin, self._spurt_frames = self._clock, 0
                self._lateness.append(0)
            late = (self._clock - self._spurt_origin) - self._spurt_frames
            self._lateness[-1] = max(self._lateness[-1], late)
            self._spurt_frames += x.shape[0]
            self._chunk = max(self._chunk, x.shape[0])
            dropped = self._ring.write(x)
            self._write_pos += x.shape[0]
            if dropped:
                self._dropped += dropped
                self._advance_read(dropped)

    def add_marker(self, token: T) -> None:
        """Queue `token`; it is reached once all audio written so far has been consumed."""
        with self._lock:
            if self._write_pos <= self._read_pos:
                self._reached.append(token)
            else:
                self._markers.append((self._write_pos, token))

    def cue(self, key: int) -> None:
        """Report (`pop_cues`) when the next frame written is played, and at what time."""
        with self._lock:
            self._cues.append((self._write_pos, key))

    def pop_cues(self) -> list[tuple[int, float | None]]:
        """Resolved cues, oldest first: (key, time the frame was heard, or None if it
        was dropped or cleared unplayed)."""
        with self._lock:
            out = list(self._heard)
            self._heard.clear()
            return out

    def pop_reached(self) -> list[T]:
        """Markers whose audio has played (or was dropped/cleared), oldest first."""
        with self._lock:
            out = list(self._reached)
            self._reached.clear()
            return out

    def clear(self) -> int:
        """Barge-in: drop queued audio after a short fade. Returns frames discarded."""
        with self._lock:
            fade = min(self._fade, self._ring.available) if self._playing else 0
            head = self._ring.read(fade)
            discarded = self._ring.clear()
            if fade:
                ramp = np.linspace(1.0, 0.0, fade, endpoint=False, dtype=np.float32)
                self._ring.write(head * ramp[:, None])
            self._read_pos += discarded
            self._cleared += discarded
            self._clears += 1
            # The next audio is a new turn: it gets a full pre-fill and, however soon it
            # comes, its arrival is not an underrun.
            self._waited = 0
            self._dry_at = None
            self._dry_by_clear = True
            self._reached.extend(tok for _, tok in self._markers)
            self._markers.clear()
            self._heard.extend((key, None) for _, key in self._cues)
            self._cues.clear()
            return discarded

    # -- consumer side (audio callback or virtual clock) -----------------------------
    def fill(self, out: Float32Array, at_s: float | None = None) -> None:
        """Fill `out` (frames, channels) for the device; silence where nothing is due.

        `at_s`: when out[0] is heard (time.monotonic() clock); None: now (a virtual
        speaker plays each block as it is filled). Only cues use it."""
        n = out.shape[0]
        with self._lock:
            self._clock += n
            self._block = n
            if not self._playing:
                avail = self._ring.available
                if avail:
                    self._waited += n
                hold = self._hold()
                if avail and (self._waited >= hold or avail >= self._chunk + hold):
                    self._playing = True
                    self._holds += 1
                    self._held += self._waited - n  # it played from this block's start
                    self._waited = 0
                else:
                    out[:] = 0.0
                    self._tap(out)
                    return
            got = self._ring.read_into(out)
            self._played += got
            if self._cues and self._cues[0][0] < self._read_pos + got:
                self._resolve_cues(got, time.monotonic() if at_s is None else at_s)
            self._advance_read(got)
            if got < n:
                out[got:] = 0.0
                self._playing = False
                self._drains += 1
                self._dry_at = None if self._dry_by_clear else self._clock - (n - got)
            self._tap(out)

    def _hold(self) -> int:
        """Frames the first audio of a spurt waits (see the module docstring)."""
        learned = max(self._lateness) + self._block + self._margin
        return min(self._max_prefill, max(self._prefill, learned))

    def _tap(self, out: Float32Array) -> None:
        if self._monitor is not None:
            self._monitor.write(out)

    def _resolve_cues(self, got: int, at_s: float) -> None:
        """Cues on the `got` frames just played from out[0] on: heard at their offset."""
        end = self._read_pos + got
        while self._cues and self._cues[0][0] < end:
            pos, key = self._cues.popleft()
            offset = max(0, pos - self._read_pos)
            self._heard.append((key, at_s + offset / self.sample_rate_hz))

    def _advance_read(self, n: int) -> None:
        self._read_pos += n
        while self._markers and self._markers[0][0] <= self._read_pos:
            self._reached.append(self._markers.popleft()[1])
        while self._cues and self._cues[0][0] < self._read_pos:  # dropped unplayed
            self._heard.append((self._cues.popleft()[1], None))

    # -- observation -----------------------------------------------------------------
    @property
    def buffered_frames(self) -> int:
        return self._ring.available

    @property
    def playing(self) -> bool:
        """A spurt is playing: its hold was met and it has not run dry since."""
        with self._lock:
            return self._playing

    @property
    def positions(self) -> tuple[int, int]:
        """(frames played, dropped or cleared; frames written): what is still queued is
        the difference, as a speaker in another process reports it."""
        with self._lock:
            return self._read_pos, self._write_pos

    def stats(self) -> JitterStats:
        ms = 1000.0 / self.sample_rate_hz
        with self._lock:
            return JitterStats(
                buffered_ms=self._ring.available * ms,
                playing=self._playing,
                underruns=self._underruns,
                drains=self._drains,
                dropped_ms=self._dropped * ms,
                cleared_ms=self._cleared * ms,
                clears=self._clears,
                played_ms=self._played * ms,
                prefill_ms=self._hold() * ms,
                hold_ms=self._held / self._holds * ms if self._holds else 0.0,
            )
