"""`ScriptSource`: the call's microphone for a scenario, turn by turn, in audio time.

A timed source like a file: the process's shared clock asks it for the frames due
(`due(now)`), released on a deadline schedule (frame k is due at start + k x frame, so
late frames never accumulate drift; `UplinkLog` keeps each due time for the slip
figure). Between and after the turns' audio it sends silence, keeping the line open.

The script advances on those same frames, so every decision happens at a frame
boundary in the uplink's own timeline:
* a turn starts on the frame after the previous turn ended; its audio frames follow;
* "the end of our speech" is the hand-over time of the turn's last voiced frame (for a
  silence turn, of its first frame: nothing was said, the turn measures from its start);
* then it listens: for `wait` seconds exactly if given; else, once agent audio came,
  until the agent's playout has been quiet for `reply_quiet`; else until
  `reply_timeout` passed without any agent audio;
* after the last turn, `on_done` is called (the runner hangs up) and silence follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.schedule import PacedSource, Schedule, paced
from aivoco.scenario.model import TurnKind
from aivoco.scenario.prepare import PreparedScenario, TurnAudio
from aivoco.scenario.probe import AgentTracker, Heard, UplinkLog

# After a stall longer than this (a suspended machine), re-anchor the schedule instead
# of bursting the backlog onto the wire; the stall still shows as slip.
REANCHOR_S = 1.0


class Step(Enum):
    SPEAKING = "speaking"
    LISTENING = "listening"
    DONE = "done"


@dataclass(frozen=True)
class TurnTiming:
    """One finished turn: when it started, when our speech ended, when it ended, and
    what the agent did meanwhile (all `time.monotonic()`)."""

    index: int
    started_at: float
    speech_end_at: float
    ended_at: float
    heard: Heard
    timed_out: bool  # listened `reply_timeout` and no agent audio came


class ScriptSource(PacedSource):
    def __init__(
        self,
        prepared: PreparedScenario,
        uplink: UplinkLog,
        tracker: AgentTracker,
        on_done: Callable[[], None] = lambda: None,
        on_turn: Callable[[TurnTiming], None] = lambda t: None,
    ) -> None:
        self.prepared = prepared
        self.uplink = uplink
        self.tracker = tracker
        self.on_done = on_done
        self.on_turn = on_turn
        self.finished = False  # the session's "input finished"
        self.timings: list[TurnTiming] = []
        self.step = Step.SPEAKING
        self.turn_no = 0  # 1-based index of the current turn, 0 before the first
        self._silence = prepared.silence
        self._audio: TurnAudio | None = None
        self._pos = 0
        self._first_k = 0
        self._started_at = 0.0
        # Frame k is due at start + k x frame: late frames never accumulate drift; after
        # a stall over REANCHOR_S the missed frames are skipped (counted in lost_frames).
        schedule = Schedule(prepared.frame_ms / 1000, max_gap_s=REANCHOR_S)
        super().__init__(schedule, prepared.silence.sample_rate_hz)

    def due(self, now: float) -> list[AudioChunk]:
        """The frames due at `now` (a timed source: the shared clock paces the uplink)."""
        s = self.schedule
        count = s.due(now)
        assert s.start is not None  # due() anchors the schedule
        frames = []
        for i in range(count):
            if self._closed:
                break
            k = len(self.uplink.due)  # frames released so far: the uplink log's index
            self.uplink.due.append(s.start + (s.taken - count + i) * s.period_s)
            frames.append(self._frame(k, now))
        return frames

    def __iter__(self) -> Iterator[AudioChunk]:
        return paced(self.due, self.schedule, lambda: self._closed)

    # -- the script ----------------------------------------------------------------------
    def _frame(self, k: int, now: float) -> AudioChunk:
        if self.step is Step.LISTENING and self._listened_enough(now):
            self._finish_turn(now)
        if self.step is Step.SPEAKING and self._audio is None:
            self._begin_turn(k, now)
        audio = self._audio
        if self.step is not Step.SPEAKING or audio is None:
            return self._silence
        frame = audio.frames[self._pos]
        self._pos += 1
        if self._pos == len(audio.frames):
            self.step = Step.LISTENING  # a silence turn ends at the next frame
        return frame

    def _begin_turn(self, k: int, now: float) -> None:
        turns = self.prepared.turns
        if self.turn_no >= len(turns):
            self._end_script()
            return
        self.turn_no += 1
        self._audio = turns[self.turn_no - 1]
        self._pos = 0
        self._first_k = k
        self._started_at = now
        self.tracker.begin(self.turn_no, now)

    def _speech_end(self) -> float:
        audio = self._audio
        assert audio is not None
        if audio.turn.kind is TurnKind.SILENCE:
            k = self._first_k
        elif audio.voiced_frames:
            k = self._first_k + audio.voiced_frames - 1
        else:
            k = self._first_k + len(audio.frames) - 1
        handed = self.uplink.handed_at(k)
        return handed if handed is not None else self.uplink.due[k]

    def _listened_enough(self, now: float) -> bool:
        audio = self._audio
        assert audio is not None
        turn = audio.turn
        if turn.kind is TurnKind.SILENCE:
            return True
        ref = self._speech_end()
        heard = self.tracker.current()
        if turn.wait_s is not None:
            return now >= ref + turn.wait_s
        if heard.playout_end is not None:
            return now >= max(heard.playout_end, ref) + turn.reply_quiet_s
        return now >= ref + turn.reply_timeout_s

    def _finish_turn(self, now: float) -> None:
        audio = self._audio
        assert audio is not None
        heard = self.tracker.current()
        turn = audio.turn
        timed_out = heard.first_audio_at is None and turn.kind is not TurnKind.SILENCE
        timing = TurnTiming(
            self.turn_no, self._started_at, self._speech_end(), now, heard,
            timed_out and turn.wait_s is None,
        )  # fmt: skip
        self.timings.append(timing)
        self.on_turn(timing)
        self._audio = None
        self.step = Step.SPEAKING

    def _end_script(self) -> None:
        self.step = Step.DONE
        if not self.finished:
            self.finished = True
            self.tracker.begin(0, time.monotonic())  # later events belong to no turn
            self.on_done()
