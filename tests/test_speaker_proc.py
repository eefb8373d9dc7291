"""The speaker in a process of its own (aivoco/audio/speaker_proc.py, docs/devices.md#process),
on the tests' private PulseAudio: real PortAudio streams in a real child process.

The point of the design is the second test: a call's process that holds the
interpreter lock for 0.4 s starves an in-process 20 ms stream (tests/test_device_ladder.py
makes it step up that way) but not the child's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pulse import PulseServer, stop_client
from quiet_try import quiet_try, underflowed
from test_device_audio import AMPLITUDE, Played, play_tone, until_reached
from test_device_ladder import STARVE_S, hold_the_gil
from tones import dominant_freq, level_dbfs, sine_dbfs, steady

from aivoco.audio import speaker_wire as wire
from aivoco.audio.chunk import AudioChunk
from aivoco.audio.playout import PlayerStats
from aivoco.audio.speaker_proc import SILENT_CHILD_S, ProcessPlayer
from aivoco.audio.streams import OUTPUT_STEPS
from aivoco.errors import DeviceError

pytestmark = pytest.mark.device

DEADLINE_S = 20.0
RATE_HZ = 24_000  # what play_tone sends


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's exit may wait for a reaper that never comes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def settled(player: ProcessPlayer[str]) -> int:
    """Wait for the child's ladder to accept a step; the latency it asked for, ms."""
    deadline = time.monotonic() + DEADLINE_S
    while (step_ms := player.stats().output_step_ms) is None:
        assert time.monotonic() < deadline, "the speaker process's stream did not settle"
        assert player.error is None, player.error
        time.sleep(0.05)
    return step_ms


def at_the_first_step(retry_after_s: float = 20.0) -> ProcessPlayer[str]:
    """A speaker settled at 20 ms. On a busy machine (the suite's other workers) the
    ladder may leave the first step while it settles, before the test starts: then
    another try, as a new call would get."""
    for _ in range(3):
        player: ProcessPlayer[str] = ProcessPlayer(
            "pulse", rate_hz=RATE_HZ, retry_after_s=retry_after_s
        )
        if settled(player) == OUTPUT_STEPS[0].latency_ms:
            return player
        player.close()
    pytest.fail("the speaker did not settle at its first step in 3 tries")


def play_through_the_child(pulse: PulseServer, raw: Path) -> Played:
    rec = pulse.record_speaker(raw, 48000)
    taps: list[AudioChunk] = []
    try:
        player: ProcessPlayer[str] = ProcessPlayer("pulse", rate_hz=RATE_HZ)
        try:
            assert player.clock_rate_hz == RATE_HZ
            settled(player)
            player.start()
            player.set_volume(0.5)
            player.cue_heard(1)
            queued_at = time.monotonic()
            play_tone(player, 1.5)
            reached = until_reached(player, taps, time.monotonic() + DEADLINE_S)
            ref = player.reference.read()
            time.sleep(0.3)  # the tail still travels through PulseAudio to parec
            taps.append(player.take_played())
            stats = player.stats()
            cues = player.pop_heard()
        finally:
            player.close()
    finally:
        stop_client(rec)
    return Played(reached, taps, cues, queued_at, stats, player, raw, ref)


def test_the_child_plays_what_the_call_sends_with_marks_cues_and_reference(
    pulse: PulseServer, tmp_path: Path
) -> None:
    got = quiet_try(
        lambda n: play_through_the_child(pulse, tmp_path / f"speaker-{n}.raw"),
        lambda p: underflowed(p.stats),
    )
    reached, taps, cues, queued_at = got.reached, got.taps, got.cues, got.queued_at
    stats, ref, player = got.stats, got.ref, got.player
    assert player.error is None
    assert reached == ["end"]
    # The figure shown is measured (DAC time minus now), not the latency asked.
    assert stats.output_latency_ms is not None and stats.output_latency_ms > 0
    [(key, heard_at)] = cues
    assert key == 1 and heard_at is not None and queued_at < heard_at < time.monotonic()
    assert stats.jitter.played_ms == pytest.approx(1500, abs=10)
    assert stats.jitter.underruns == 0 and stats.device_underflows == 0
    # The monitor is what was handed to the device before the volume; the reference,
    # what the speaker sounds like after it (echo control's far end), timed by DAC.
    played = steady(AudioChunk.concat(taps))
    assert dominant_freq(played, RATE_HZ) == pytest.approx(440, abs=1)
    assert level_dbfs(played) == pytest.approx(sine_dbfs(AMPLITUDE), abs=0.1)
    assert ref is not None and ref.frames > 0 and queued_at < ref.start_s
    heard = steady(np.frombuffer(got.raw.read_bytes(), "<i2"))
    assert heard.size > 48000
    assert level_dbfs(heard) == pytest.approx(sine_dbfs(AMPLITUDE / 2), abs=0.5)


def starved_caller() -> tuple[list[str], PlayerStats, int | None]:
    """A tone through the child while this process holds the interpreter lock: what was
    reached, the child's final figures, and its step while starved."""
    player = at_the_first_step()
    taps: list[AudioChunk] = []
    try:
        player.start()
        play_tone(player, 2.0)
        time.sleep(0.3)
        hold_the_gil(STARVE_S)  # an in-process 20 ms stream underflows and steps up here
        reached = until_reached(player, taps, time.monotonic() + DEADLINE_S)
        step_ms = player.stats().output_step_ms  # what the summary would show
    finally:
        player.close()
    return reached, player.stats(), step_ms  # the child's final figures, taken in at close


def test_a_busy_call_process_does_not_starve_the_speaker(pulse: PulseServer) -> None:
    reached, stats, step_ms = quiet_try(
        lambda _n: starved_caller(),
        lambda r: underflowed(r[1]),
    )
    assert reached == ["end"]
    assert step_ms == OUTPUT_STEPS[0].latency_ms
    assert stats.device_underflows == 0  # and so the ladder kept its first step
    assert stats.output_latency_ms is not None and stats.output_latency_ms < 60
    assert stats.jitter.underruns == 0
    assert stats.jitter.played_ms == pytest.approx(2000, abs=10)


def test_clear_discards_what_is_queued_and_resolves_marks_and_cues(pulse: PulseServer) -> None:
    player: ProcessPlayer[str] = ProcessPlayer("pulse", rate_hz=RATE_HZ)
    try:
        settled(player)
        player.start()
        player.cue_heard(1)
        play_tone(player, 0.3, mark="first")
        player.cue_heard(2)
        play_tone(player, 3.0, mark="second")
        # Into the second tone (on a busy machine the stream may first step up and settle
        # again, which takes seconds: wait for playback, not for a set time).
        deadline = time.monotonic() + DEADLINE_S
        while (queued_ms := player.buffered_ms()) > 2900 and time.monotonic() < deadline:
            time.sleep(0.01)
        cleared = player.clear()
        after_ms = player.buffered_ms()
        deadline = time.monotonic() + DEADLINE_S
        reached: list[str] = []
        while len(reached) < 2 and time.monotonic() < deadline:
            reached += player.pop_reached()
            time.sleep(0.02)
        cues = dict(player.pop_heard())
    finally:
        player.close()
    assert 2000 < queued_ms <= 2900
    # All but the fade (8 ms) of what was queued, give or take one report (10 ms).
    assert cleared * 1000 / RATE_HZ == pytest.approx(queued_ms - 8, abs=25)
    assert after_ms <= 10
    assert reached == ["first", "second"]
    assert cues[1] is not None and cues[2] is not None  # the second tone had begun


def test_a_speaker_process_that_dies_is_a_device_error(pulse: PulseServer) -> None:
    player: ProcessPlayer[str] = ProcessPlayer("pulse", rate_hz=RATE_HZ)
    try:
        player.start()
        player._proc.kill()  # what a crash of the child looks like to the call
        player._proc.wait()
        deadline = time.monotonic() + DEADLINE_S
        while player.error is None and time.monotonic() < deadline:
            player.take_played()
            time.sleep(0.02)
        assert isinstance(player.error, DeviceError)
        assert "speaker process ended (exit -9)" in str(player.error)
        play_tone(player, 0.2)  # a call still sending audio gets no exception
    finally:
        player.close()


def stall(player: ProcessPlayer[str]) -> None:
    os.kill(player._proc.pid, signal.SIGSTOP)
    time.sleep(STARVE_S)
    os.kill(player._proc.pid, signal.SIGCONT)


def steps_until(
    player: ProcessPlayer[str], first: int, done: Callable[[list[int]], bool], within_s: float
) -> list[int]:
    """The settled steps the call reads from `first` on, each change once, until `done`
    or `within_s`. The step read now counts as a change too: on a busy machine the
    ladder may already have moved when this starts."""
    deadline = time.monotonic() + within_s
    seen = [first]
    while True:
        player.take_played()
        step = player.stats().output_step_ms
        if step is not None and step != seen[-1]:
            seen.append(step)
        if done(seen) or time.monotonic() >= deadline:
            return seen
        time.sleep(0.05)


def test_a_stall_steps_the_child_up_and_it_comes_back_down(pulse: PulseServer) -> None:
    """The child runs the same ladder as the in-process player (docs/devices.md#step-down):
    a stall steps it up, and after its wait (1 s here, 20 s in a call) the first step
    is back, the figures the call reads say so, and it plays."""
    player = at_the_first_step(retry_after_s=1.0)
    first, second = (s.latency_ms for s in OUTPUT_STEPS[:2])
    taps: list[AudioChunk] = []
    try:
        player.start()
        assert player.stats().output_step_ms == first
        for _ in range(3):  # a stall the sound server rode out flags nothing: again
            stall(player)
            flagged_by = time.monotonic() + 1.0
            while player.stats().device_underflows == 0 and time.monotonic() < flagged_by:
                time.sleep(0.05)
            if player.stats().device_underflows:
                break
        seen = steps_until(player, first, lambda s: s[-2:] == [second, first], DEADLINE_S)
        stats = player.stats()
        assert seen[-2:] == [second, first], (seen, stats.device_underflows, stats)
        assert player.stats().device_underflows >= 1
        play_tone(player, 0.3, mark="after")
        assert until_reached(player, taps, time.monotonic() + DEADLINE_S) == ["after"]
        assert player.error is None
    finally:
        player.close()


def test_a_stopped_speaker_process_is_noticed(pulse: PulseServer) -> None:
    """A child that says nothing (stopped here; stuck in a driver elsewhere) fails the
    speaker within SILENT_CHILD_S, instead of a call that goes on without sound."""
    player: ProcessPlayer[str] = ProcessPlayer("pulse", rate_hz=RATE_HZ)
    try:
        settled(player)
        player.start()
        os.kill(player._proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        while player.error is None and time.monotonic() - stopped_at < DEADLINE_S:
            player.take_played()
            time.sleep(0.05)
        waited_s = time.monotonic() - stopped_at
    finally:
        player.close()  # kills what does not answer CLOSE
    assert isinstance(player.error, DeviceError)
    assert "has said nothing for 5 s" in str(player.error)
    assert SILENT_CHILD_S <= waited_s < SILENT_CHILD_S + 1
    assert player._proc.returncode == -signal.SIGKILL


def test_a_call_that_reads_late_does_not_take_the_child_for_stopped(pulse: PulseServer) -> None:
    """Silence is judged on an empty pipe: what the child said while the call was busy
    elsewhere (longer than SILENT_CHILD_S) still counts."""
    player: ProcessPlayer[str] = ProcessPlayer("pulse", rate_hz=RATE_HZ)
    try:
        settled(player)
        player.start()
        time.sleep(SILENT_CHILD_S + 1)  # nothing read meanwhile
        assert player.take_played().frames > 0
        assert player.error is None, player.error
    finally:
        player.close()


def test_ctrl_c_is_the_calls_and_the_child_outlives_no_call(pulse: PulseServer) -> None:
    """A Ctrl-C at the terminal goes to the call's process group; the child, in a session
    of its own, does not get it (the call closes it). A call killed outright leaves no
    speaker process behind."""
    script = textwrap.dedent(
        """
        import signal, time
        from aivoco.audio.speaker_proc import SILENT_CHILD_S, ProcessPlayer
        signal.signal(signal.SIGINT, lambda *_: print("interrupted", flush=True))
        player = ProcessPlayer("pulse", rate_hz=24000)
        print(player._proc.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.killpg(parent.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert parent.stdout.readline().strip() == "interrupted"
        time.sleep(0.3)
        assert alive(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + DEADLINE_S
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(child):
            os.kill(child, signal.SIGKILL)
            pytest.fail("the speaker process outlived its call")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_device_that_does_not_exist_fails_before_any_process(pulse: PulseServer) -> None:
    with pytest.raises(DeviceError, match="no audio device with index 999"):
        ProcessPlayer(999, rate_hz=RATE_HZ)


def test_a_child_that_cannot_open_its_device_says_why_and_ends(pulse: PulseServer) -> None:
    spec = {"device": 999, "rate_hz": RATE_HZ, "channels": 1, "steps": [[20, 10, 40]]}
    done = subprocess.run(
        [sys.executable, "-m", "aivoco.audio.speaker_child", json.dumps(spec)],
        input=b"",
        capture_output=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 1
    [(kind, payload)] = wire.Decoder().feed(done.stdout)
    assert kind is wire.Kind.FAIL
    assert wire.decode_json(payload) == [
        "device",
        "no audio device with index 999; see `aivoco devices`",
    ]
