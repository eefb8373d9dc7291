"""The recording stays on the call's timeline whatever the load.

A loaded machine shows up in the call as stalls: a thread that does not run for a
while. Each test below makes one part stall for a second or two (as starvation would)
and checks that both tracks still span the call: no silence inserted for a side that
was only late, no time lost by a clock that skipped, no tail recorded after the end.
bench/soak.py measures the same over long calls.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from clirun import read_wav, write_tone
from fakes import MemorySource, ScriptedDriver
from test_lifecycle import KEY, tone

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.playout import MONITOR_MS, ClockPlayer
from aivoco.audio.schedule import Schedule
from aivoco.session import CallOptions, open_call
from aivoco.session.interfaces import MarkToken
from aivoco.wire import events as ev

RATE = 24000


def test_a_starved_schedule_counts_the_time_it_skipped() -> None:
    schedule = Schedule(0.02)
    assert schedule.due(100.0) == 1  # frame 0 at the start
    assert schedule.due(100.045) == 2  # frames 1 and 2 (due at +20 and +40 ms)
    assert schedule.due(101.345) == 1  # 1.3 s late: the newest goes out, the rest skipped
    assert schedule.skipped_s == pytest.approx(1.28, abs=1e-6)
    assert schedule.due(101.366) == 1  # and the grid goes on from there
    catching = Schedule(0.02, catch_up=True)
    catching.due(200.0)
    assert catching.due(201.2) == 60  # a speaker plays what was due at once
    assert catching.skipped_s == 0


def test_a_virtual_speaker_keeps_its_clock_through_a_stall(tmp_path: Path) -> None:
    player: ClockPlayer[MarkToken] = ClockPlayer(RATE, tmp_path / "out.wav")
    fill = player.jitter.fill
    calls = [0]

    def stalling_fill(out: Any, at_s: float | None = None) -> Any:
        calls[0] += 1
        if calls[0] == 10:
            time.sleep(1.5)  # the thread is starved for 1.5 s
        return fill(out, at_s)

    player.jitter.fill = stalling_fill  # type: ignore[method-assign]
    t0 = time.monotonic()
    player.start()
    time.sleep(2.5)
    player.close()
    wall_s = time.monotonic() - t0
    frames = len(np.frombuffer((tmp_path / "out.wav").read_bytes()[44:], "<i2"))
    assert frames / RATE == pytest.approx(wall_s, abs=0.3)  # was 1.5 s short


def test_played_audio_lost_by_a_late_reader_comes_back_as_silence() -> None:
    player: ClockPlayer[MarkToken] = ClockPlayer(RATE)
    player.jitter.write(np.full((RATE * 3, 1), 0.25, np.float32))
    t0 = time.monotonic()
    player.start()
    time.sleep(3.0 + 0.1)  # longer than the monitor holds (MONITOR_MS)
    played = player.take_played()
    elapsed_s = time.monotonic() - t0
    player.close()
    assert MONITOR_MS < 3000
    # What played trails the wall clock by up to one tick of the speaker (it plays what
    # is due every CLOCK_PERIOD_S) plus the clock's grid step: at most 60 ms.
    assert played.frames / RATE == pytest.approx(elapsed_s, abs=0.15)  # was 2 s
    lost_s = played.frames / RATE - MONITOR_MS / 1000
    assert not played.samples[: int(lost_s * RATE * 0.9)].any()  # the lost part: silence


class StallingPlayer(ClockPlayer[MarkToken]):
    """The observer thread stalls once inside `take_played` (starved for `stall_s`)."""

    def __init__(self, stall_s: float, after_s: float) -> None:
        super().__init__(RATE)
        self.stall_s = stall_s
        self.stall_at = time.monotonic() + after_s
        self.stalled = False

    def take_played(self) -> AudioChunk:
        if not self.stalled and time.monotonic() >= self.stall_at:
            self.stalled = True
            time.sleep(self.stall_s)
        return super().take_played()


class SlowToClose(ScriptedDriver):
    def close(self) -> None:
        time.sleep(1.5)  # a loaded machine: the release takes its time
        super().close()


def run_call(tmp_path: Path, driver: ScriptedDriver, player: ClockPlayer[MarkToken]) -> Any:
    options = CallOptions(key=KEY, record_file=tmp_path / "rec.wav", hangup_timeout_s=0.2,
                          max_duration_s=3.0)  # fmt: skip
    source = MemorySource([tone(16000)] * 200, rate_hz=16000)
    call = open_call(options, driver=driver, source=source, player=player)
    call.start()
    for _ in range(10):  # the agent answers for 1 s
        driver.push(ev.AgentAudio(AudioChunk(np.full(2400, 4000, np.int16), RATE)))
    assert call.wait(6)
    result = call.close()
    assert result.error is None
    return result


def test_a_stalled_observer_does_not_stretch_the_recording(tmp_path: Path) -> None:
    result = run_call(tmp_path, ScriptedDriver(), StallingPlayer(1.5, after_s=0.5))
    # Was about 1.5 s longer: silence written for the late side, then its audio after it.
    assert result.summary.recording_s == pytest.approx(result.summary.duration_s, abs=0.3)


def test_a_slow_release_is_not_recorded(tmp_path: Path) -> None:
    driver = SlowToClose(on_goodbye=lambda: [ev.Ended("stopped_by_user")])
    result = run_call(tmp_path, driver, ClockPlayer(RATE))
    # Was the duration plus the 1.5 s the release took.
    assert result.summary.recording_s == pytest.approx(result.summary.duration_s, abs=0.3)


class SlowSender(ScriptedDriver):
    """The uplink thread stalls once, in its 25th send (0.5 s in), for 1.5 s."""

    def send_audio(self, chunk: AudioChunk) -> None:
        super().send_audio(chunk)
        if len(self.sent.audio) == 25:
            time.sleep(1.5)


def test_time_a_starved_sender_skipped_is_silence_on_its_track(tmp_path: Path) -> None:
    source_file = write_tone(tmp_path / "in.wav", 500, 16000, 2.0, amplitude=0.5)
    padded = np.concatenate([np.zeros(16000, np.int16), read_wav(source_file).samples[:, 0]])
    soundfile.write(str(tmp_path / "in.wav"), padded, 16000, subtype="PCM_16")
    options = CallOptions(key=KEY, input_file=tmp_path / "in.wav",
                          record_file=tmp_path / "rec.wav", max_duration_s=3.5)  # fmt: skip
    call = open_call(options, driver=SlowSender(), player=ClockPlayer(RATE))
    result = call.run()
    assert result.error is None
    left = read_wav(tmp_path / "rec.wav").samples[:, 0]
    onset_s = np.flatnonzero(np.abs(left) > 1000)[0] / RATE
    # The tone starts 1 s into the file; the 1.5 s stall came 0.5 s in, so it was sent
    # (and heard by the agent) at 2.5 s. Without the skipped time it was put at 1.0 s.
    assert onset_s == pytest.approx(2.5, abs=0.3)
