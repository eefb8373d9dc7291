"""The uplink: source frames (microphone or file) -> levels, turns, recording -> driver.

Runs on its own thread; frames arrive in real time from the source. It reads the
lifecycle only through `permits()` (no audio before live or after the goodbye) and
reports what the rest of the call must know through the shared records and state,
never through the call's attributes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.levels import HAS_AUDIO_PEAK_THRESHOLD, peak, to_dbfs
from aivoco.session.echo import EchoControl
from aivoco.session.files import StereoRecorder
from aivoco.session.interfaces import Source, TimedSource
from aivoco.session.lifecycle import Lifecycle, Op
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.session.turns import TurnTracker
from aivoco.wire.driver import Driver


class Uplink:
    def __init__(
        self,
        source: Source,
        driver: Driver,
        lifecycle: Lifecycle,
        *,
        state: CallState,
        bus: RecordBus,
        turns: TurnTracker,
        recorder: StereoRecorder | None,
        frame_ms: int,
        input_finished: Callable[[float], None],
        echo: EchoControl | None = None,
    ) -> None:
        self.source = source
        self.driver = driver
        self.lifecycle = lifecycle
        self.state = state
        self.bus = bus
        self.turns = turns
        self.recorder = recorder
        self.frame_s = frame_ms / 1000.0
        self._input_finished = input_finished
        self._finished_reported = False
        self.echo = echo  # echo control, barge-in, mute and push-to-talk (session/echo.py)
        self._lost_recorded = 0
        self._timed_source: TimedSource | None = None

    def run(self) -> None:
        """Send frames until the call stops taking audio; raises what the source raises.

        While the call reconnects, frames are still taken (the microphone does not stop)
        and recorded, but not sent: the recording keeps the call's timeline."""
        frames: Iterable[AudioChunk] = self.source
        for frame in frames:
            if self.lifecycle.permits(Op.SEND_AUDIO):
                self.send(frame, time.monotonic())
            elif self.lifecycle.permits(Op.KEEP_MEDIA):
                self.send(frame, time.monotonic(), transmit=False)
            else:
                return

    def begin(self) -> None:
        """Before the first frame: say which echo mode is in force."""
        if self.echo is not None:
            self.echo.announce()

    def tick(self, now: float) -> bool | float:
        """A timed source's frames due at `now` (the shared clock's job). Returns when
        the next frame is due, or False once the call takes no more audio."""
        source = self._timed()
        for frame in source.due(now):
            if self.lifecycle.permits(Op.SEND_AUDIO):
                self.send(frame, now)
            elif self.lifecycle.permits(Op.KEEP_MEDIA):
                self.send(frame, now, transmit=False)
            else:
                return False
        if not (self.lifecycle.permits(Op.SEND_AUDIO) or self.lifecycle.permits(Op.KEEP_MEDIA)):
            return False
        return source.next_due() or now + self.frame_s

    def _timed(self) -> TimedSource:
        # Checked once: isinstance() against a runtime Protocol walks its members, which
        # cost 0.7 % of a core at 50 ticks a second (bench/profile_call.py).
        if self._timed_source is None:
            if not isinstance(self.source, TimedSource):
                raise TypeError("tick() needs a timed source (a file or a script)")
            self._timed_source = self.source
        return self._timed_source

    def send(self, frame: AudioChunk, now: float, transmit: bool = True) -> None:
        heard = level = peak(frame)  # the meter shows what the mic hears, even when muted
        source_hz = frame.sample_rate_hz  # echo control may hand back the call's rate
        if self.echo is not None:
            sent = self.echo.process(frame, now)
            if sent is not frame:  # gated, cleaned or muted: its own level
                frame, level = sent, peak(sent)
        voiced = level > HAS_AUDIO_PEAK_THRESHOLD  # has_audio(), without a second pass
        self.state.set_levels(mic_dbfs=to_dbfs(heard), user_speaking=self.turns.user_speaking)
        end = self.turns.on_user_frame(voiced, frame.frames, frame.sample_rate_hz, now)
        if end is not None:
            self.state.add_entry("you", f"spoke {end.duration_s:.1f} s")
            self.bus.emit("user_speech_end", duration_s=round(end.duration_s, 3))
        if self.recorder is not None:
            lost = self.source.lost_frames - self._lost_recorded
            if lost > 0:  # time the source skipped: silence, so the track keeps the clock
                self._lost_recorded += lost
                silent = lost * frame.sample_rate_hz // source_hz
                self.recorder.add_user(AudioChunk.silence(silent, frame.sample_rate_hz))
            self.recorder.add_user(frame)
        if transmit:
            self.driver.send_audio(frame)
        if self.source.finished and not self._finished_reported:
            self._finished_reported = True
            self._input_finished(now)
            self.bus.emit("input_finished")
