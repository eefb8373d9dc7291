"""The scenario machinery's parts: TTS, the reply timeline, subset matching, and the
script's timing measured against a scripted driver whose own clock is the reference."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from clirun import write_tone
from fakes import ScriptedDriver

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import UsageError
from aivoco.scenario import tts
from aivoco.scenario.expect import check_end, reconnects_of, subset
from aivoco.scenario.load import LoadPlan, LoadRunner, figures
from aivoco.scenario.model import EndChecks
from aivoco.scenario.parse import load_scenarios
from aivoco.scenario.prepare import PreparedScenario, prepare_all
from aivoco.scenario.probe import AgentTracker
from aivoco.scenario.runner import ActiveRun, RunListener, RunResult, RunSettings, execute
from aivoco.session.options import CallOptions
from aivoco.session.summary import CallSummary, CreditFigures, PlaybackFigures
from aivoco.wire import events as ev
from aivoco.wire.driver import Driver, NetStats

HAS_ESPEAK = shutil.which(tts.ESPEAK) is not None


def chunk_s(seconds: float, rate_hz: int = 24000, level: float = 0.3) -> AudioChunk:
    n = round(seconds * rate_hz)
    x = (level * 32767 * np.sin(np.arange(n) * 0.05)).astype(np.int16)
    return AudioChunk(x, rate_hz)


# -- the reply's playout timeline -----------------------------------------------------------
def test_paced_audio_lasts_from_first_arrival_to_the_end_of_the_last_chunk() -> None:
    tracker = AgentTracker()
    tracker.begin(1, 0.0)
    for k in range(3):
        tracker.on_event(10.0 + k * 0.1, ev.AgentAudio(chunk_s(0.1)))
    heard = tracker.current()
    assert heard.first_audio_at == 10.0
    assert heard.reply_s == pytest.approx(0.3)


def test_a_burst_lasts_as_long_as_its_audio_and_a_pause_counts() -> None:
    tracker = AgentTracker()
    tracker.begin(1, 0.0)
    for _ in range(5):
        tracker.on_event(10.0, ev.AgentAudio(chunk_s(0.2)))
    assert tracker.current().reply_s == pytest.approx(1.0)
    tracker.on_event(13.0, ev.AgentAudio(chunk_s(0.5)))  # a second sentence after a pause
    assert tracker.current().reply_s == pytest.approx(3.5)
    assert tracker.current().audio_s == pytest.approx(1.5)


def test_events_belong_to_the_turn_current_when_they_arrive() -> None:
    tracker = AgentTracker()
    tracker.on_event(0.5, ev.AgentText("greeting"))  # before the first turn
    tracker.begin(1, 1.0)
    tracker.on_event(1.5, ev.AgentText("one"))
    tracker.on_event(1.6, ev.FunctionCall("c1", "f", {"a": 1}))
    tracker.begin(2, 2.0)
    tracker.on_event(2.5, ev.AgentText("two"))
    assert tracker.current().texts == ["two"]
    assert tracker.current().functions == []


def test_a_clear_cuts_the_reply_short() -> None:
    tracker = AgentTracker()
    tracker.begin(1, 0.0)
    tracker.on_event(1.0, ev.AgentAudio(chunk_s(2.0)))
    tracker.on_event(1.5, ev.PlaybackClear())
    assert tracker.current().reply_s == pytest.approx(0.5)


# -- matching and figures ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ({"city": "Paris"}, {"city": "paris", "unit": "c"}, True),
        ({"city": "Paris"}, {"town": "Paris"}, False),
        ({"n": 1}, {"n": 1.0}, True),
        ({"n": True}, {"n": 1}, False),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2], "c": 3}}, True),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
        ({}, {"anything": 1}, True),
        ({"city": "Paris"}, "Paris", False),
    ],
)
def test_function_arguments_match_as_a_subset(expected: object, actual: object, ok: bool) -> None:
    assert subset(expected, actual) is ok


def test_figures_are_percentiles_over_all_values() -> None:
    f = figures([float(v) for v in range(1, 101)])
    assert (f.count, f.max) == (100, 100.0)
    assert f.p50 == pytest.approx(50.5)
    assert f.p95 == pytest.approx(95.05)
    assert figures([]).p50 is None


# -- TTS ------------------------------------------------------------------------------------
def test_a_template_fills_each_argument_without_a_shell(tmp_path: Path) -> None:
    argv, stdin = tts.argv_for(
        "piper --voice {voice} --out {wav}", "v1", "it's $HOME; rm", tmp_path / "o.wav"
    )
    assert argv == ["piper", "--voice", "v1", "--out", str(tmp_path / "o.wav")]
    assert stdin  # no {text}: the text goes on standard input
    argv, stdin = tts.argv_for("say -o {wav} '{text}'", "v", "it's $HOME; rm", tmp_path / "o.wav")
    assert argv == ["say", "-o", str(tmp_path / "o.wav"), "it's $HOME; rm"] and not stdin


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
def test_espeak_renders_once_per_text_and_voice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIVOCO_CACHE_DIR", str(tmp_path))
    first = tts.render("-rf is not an option here", "en-us")
    assert first.parent == tmp_path / "tts" and first.stat().st_size > 10_000
    stamp = first.stat().st_mtime_ns
    assert tts.render("-rf is not an option here", "en-us") == first
    assert first.stat().st_mtime_ns == stamp
    assert tts.render("-rf is not an option here", "en-gb") != first


def test_a_missing_espeak_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIVOCO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError) as info:
        tts.render("hello", "en-us")
    assert "sudo apt-get install espeak-ng" in str(info.value)
    assert "brew install espeak-ng" in str(info.value)


def test_a_failing_tts_command_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIVOCO_CACHE_DIR", str(tmp_path))
    script = tmp_path / "mytts"
    script.write_text("#!/bin/sh\necho 'model not found' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(UsageError, match=r"tts: .*mytts failed for 'hello': model not found"):
        tts.render("hello", "x", f"{script} --out {{wav}}")
    with pytest.raises(UsageError, match=r"'no-such-tts' was not found"):
        tts.render("hello", "x", "no-such-tts {wav}")


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
def test_a_custom_command_gets_text_voice_and_wav(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIVOCO_CACHE_DIR", str(tmp_path))
    out = tts.render("custom voice", "en-us", "espeak-ng -v {voice} -w {wav} {text}")
    assert out.stat().st_size > 10_000


# -- the script's timing, against a driver that keeps its own clock ------------------------------
class ReplyingDriver(ScriptedDriver):
    """Answers after the turn's audio with `reply` (a chunk list) after `delay_s`."""

    def __init__(
        self, frames_in_turn: int, voiced_frames: int, delay_s: float, reply: list[AudioChunk]
    ) -> None:
        super().__init__(on_goodbye=lambda: [ev.Ended("stopped_by_user")])
        self.frames_in_turn = frames_in_turn
        self.voiced_frames = voiced_frames
        self.delay_s = delay_s
        self.reply = reply
        self.sent_at: list[float] = []
        self.pushed_at: float | None = None

    def send_audio(self, chunk: AudioChunk) -> None:
        self.sent_at.append(time.monotonic())
        super().send_audio(chunk)
        if len(self.sent_at) == self.frames_in_turn and self.reply:
            threading.Thread(target=self._answer, daemon=True).start()

    def _answer(self) -> None:
        time.sleep(self.delay_s)
        self.pushed_at = time.monotonic()
        self.push(*(ev.AgentAudio(c) for c in self.reply))


def prepared_play(tmp_path: Path, expect: str, extra: str = "") -> PreparedScenario:
    write_tone(tmp_path / "q.wav", 440, 16000, 0.3, silence_after_s=0.2)
    (tmp_path / "s.yaml").write_text(
        f"name: timing\ntimeout: 20\nturns:\n  - play: q.wav\n{extra}    expect: {expect}\n"
    )
    return prepare_all(load_scenarios([tmp_path / "s.yaml"]))[0]


def run_with(prepared: PreparedScenario, driver: Driver) -> RunResult:
    def make(options: CallOptions) -> Driver:
        return driver

    run = ActiveRun(prepared, 1, RunSettings(key="unit-test-key"), make_driver=make)
    return execute(run, RunListener())


def test_reply_within_is_the_reply_arrival_minus_the_last_voiced_frame(tmp_path: Path) -> None:
    prepared = prepared_play(
        tmp_path, "{reply_within: 2, reply_seconds: [0.39, 0.41]}", "    reply_quiet: 0.2\n"
    )
    audio = prepared.turns[0]
    assert (len(audio.frames), audio.voiced_frames) == (25, 15)  # 0.5 s, 0.3 s voiced
    driver = ReplyingDriver(25, 15, 0.25, [chunk_s(0.4)])
    result = run_with(prepared, driver)
    assert result.passed, result.all_failures
    [turn] = result.turns
    assert driver.pushed_at is not None and turn.reply_within_s is not None
    expected = driver.pushed_at - driver.sent_at[14]
    assert turn.reply_within_s == pytest.approx(expected, abs=0.005)
    assert turn.reply_s == pytest.approx(0.4, abs=0.001)
    assert result.slips_ms and len(result.slips_ms) == len(driver.sent_at)


def test_no_reply_ends_the_turn_after_reply_timeout_with_a_message(tmp_path: Path) -> None:
    prepared = prepared_play(tmp_path, "{reply_within: 2}", "    reply_timeout: 0.4\n")
    driver = ReplyingDriver(25, 15, 0.0, [])
    result = run_with(prepared, driver)
    [turn] = result.turns
    assert turn.timed_out and turn.reply_within_s is None
    assert result.all_failures == ["turn 1: reply_within 2 s: no agent audio within 0.4 s"]
    # The turn listens from the end of our speech, which is when the last voiced frame
    # (the 15th, due 0.28 s in) was handed over, for reply_timeout, and ends at the next
    # frame: 0.68 s from the first frame, less however late that one went out.
    assert 0.28 + 0.4 - 0.01 <= turn.duration_s < 0.3 + 1.0


def test_a_late_reply_fails_with_what_happened(tmp_path: Path) -> None:
    prepared = prepared_play(tmp_path, "{reply_within: 0.1}", "    reply_quiet: 0.2\n")
    result = run_with(prepared, ReplyingDriver(25, 15, 0.3, [chunk_s(0.2)]))
    [message] = result.all_failures
    assert message.startswith("turn 1: reply_within 0.1 s: first agent audio after 0.")


def test_wait_listens_exactly_that_long(tmp_path: Path) -> None:
    prepared = prepared_play(tmp_path, "{no_reply: true}", "    wait: 0.5\n")
    result = run_with(prepared, ReplyingDriver(25, 15, 0.1, [chunk_s(0.2)]))
    [message] = result.all_failures
    assert message.startswith("turn 1: no_reply: agent audio 0.")
    assert message.endswith("after the end of our speech (0.20 s of it)")
    assert result.turns[0].duration_s == pytest.approx(0.3 + 0.5, abs=0.06)


def test_the_script_hangs_up_after_the_last_turn(tmp_path: Path) -> None:
    prepared = prepared_play(tmp_path, "{}", "    reply_timeout: 0.2\n")
    driver = ReplyingDriver(25, 15, 0.0, [])
    result = run_with(prepared, driver)
    assert result.passed and driver.sent.goodbyes == 1
    assert result.summary is not None and result.summary.reason == "hangup"


# -- end checks -------------------------------------------------------------------------------
def summary_with(**changes: object) -> CallSummary:
    base = CallSummary(
        reason="hangup", duration_s=5.0, turns=1, latency_last_ms=None, latency_mean_ms=None,
        functions_called=0, protocol_errors=0, net=NetStats(), events_dropped=0,
        playback=PlaybackFigures(),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_reconnect_fails_the_run_unless_allowed() -> None:
    summary = summary_with()
    assert check_end(EndChecks(), summary, allow_reconnect=False, reconnects=0) == []
    [message] = check_end(EndChecks(), summary, allow_reconnect=False, reconnects=2)
    assert message == (
        "end: the connection was re-established 2 time(s) "
        "(set allow_reconnect: true to accept that)"
    )
    assert check_end(EndChecks(), summary, allow_reconnect=True, reconnects=2) == []
    # The count is read from the summary where the driver keeps one, else from the records.
    assert reconnects_of(summary, 1) == 1


def test_end_checks_say_what_happened() -> None:
    summary = summary_with(
        protocol_errors=3,
        playback=PlaybackFigures(underruns=2),
        credits=CreditFigures(0.75, 10.0, True),
    )
    checks = EndChecks(credits_used_max=0.5, protocol_errors_max=0, underruns_max=1)
    assert check_end(checks, summary, allow_reconnect=False, reconnects=0) == [
        "end: credits_used_max 0.5: used 0.75",
        "end: protocol_errors_max 0: 3 malformed message(s)",
        "end: underruns_max 1: 2 playback underrun(s)",
    ]
    no_credits = check_end(EndChecks(credits_used_max=1), summary_with(), False, 0)
    assert no_credits == ["end: credits_used_max 1: no credit figure was reported"]


def test_recordings_of_two_scenarios_with_one_name_do_not_collide(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "s.yaml").write_text("name: smoke\nturns: [{silence: 0.1}]\n")
    prepared = prepare_all(load_scenarios([tmp_path / "a/s.yaml", tmp_path / "b/s.yaml"]))
    runner = LoadRunner(prepared, RunSettings(key="k-123"), LoadPlan(repeat=2), RunListener())
    assert [r.file_stem() for r in runner.runs] == [
        "smoke-1-run001",
        "smoke-1-run002",
        "smoke-2-run001",
        "smoke-2-run002",
    ]
