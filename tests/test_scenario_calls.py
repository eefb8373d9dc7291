"""Scenarios as real calls, in-process: against the emulator (both protocols, functions,
every expectation failing with its message, 10 calls at once) and the tests' own
servers (no reply, refused key, a session the server ends)."""

from __future__ import annotations

import re
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Emit, RecordingStsServer, Sleep

from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.errors import AuthError
from aivoco.scenario.load import LoadPlan, LoadRunner, totals
from aivoco.scenario.parse import load_scenarios
from aivoco.scenario.prepare import prepare_all
from aivoco.scenario.runner import ActiveRun, RunListener, RunResult, RunSettings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY = "scenario-test-key"


@pytest.fixture(name="emulator")
def emulator_fixture() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(port=0)) as emu:
        yield emu


@pytest.fixture(autouse=True)
def tts_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIVOCO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tts-cache"))


class Counting(RunListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0

    def run_started(self, run: ActiveRun) -> None:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)

    def run_done(self, run: ActiveRun, result: RunResult) -> None:
        with self.lock:
            self.active -= 1


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run_all(
    paths: list[Path],
    url: str | None = None,
    plan: LoadPlan | None = None,
    listener: RunListener | None = None,
) -> list[RunResult]:
    prepared = prepare_all(load_scenarios(paths))
    plan = plan or LoadPlan(concurrency=len(paths))
    runner = LoadRunner(prepared, RunSettings(key=KEY, url=url), plan, listener or RunListener())
    return runner.run()


def test_the_examples_pass_against_the_emulator(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIVOCO_STS_URL", emulator.sts_url)
    monkeypatch.setenv("AIVOCO_CALL_URL", emulator.call_url)
    sts, call = run_all([EXAMPLES / "sts-smoke.yaml", EXAMPLES / "call-smoke.yaml"])
    assert sts.passed and call.passed, (sts.all_failures, sts.error, call.all_failures, call.error)
    first = sts.turns[0]
    assert first.functions == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert first.texts and "get_weather" in first.texts[0]
    assert first.reply_within_s is not None and 0.6 < first.reply_within_s < 2.5
    assert [t.kind for t in call.turns] == ["say", "silence", "say"]
    assert call.turns[1].reply_within_s is None
    assert sts.summary is not None and sts.summary.credits is not None


def _late_reply(failure: str, prefix: str) -> float:
    """The seconds a `reply_within` failure reports (its message must say them)."""
    match = re.fullmatch(re.escape(prefix) + r"first agent audio after (\d+\.\d\d) s", failure)
    assert match is not None, failure
    return float(match.group(1))


def _unwanted_reply(failure: str, prefix: str) -> float:
    """The seconds a `no_reply` failure reports between our speech and the reply (the
    emulator's ~0.9 s, more on a loaded machine: checked for its form, not its value)."""
    pattern = r"agent audio (\d+\.\d\d) s after the end of our speech \(\d+\.\d\d s of it\)"
    match = re.fullmatch(re.escape(prefix) + pattern, failure)
    assert match is not None, failure
    return float(match.group(1))


def test_each_expectation_fails_with_what_was_expected_and_what_happened(
    emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "tools.py").write_text((EXAMPLES / "weather_tools.py").read_text())
    sts = write(
        tmp_path,
        "sts.yaml",
        """\
        name: failing sts
        functions: tools.py
        reply_quiet: 0.5
        turns:
          - say: "What's the weather in Paris?"
            expect:
              reply_within: 0.3
              reply_seconds: [5, 10]
              text_contains: [Oslo, heard]
              text_matches: "thunder|hail"
              function_called: {name: get_weather, arguments: {city: Oslo}}
          - say: "Thanks."
            expect: {no_reply: true, function_called: get_time}
        end:
          credits_used_max: 0.00001
        """,
    )
    call = write(
        tmp_path,
        "call.yaml",
        """\
        name: failing call
        protocol: call
        agent: demo
        reply_quiet: 0.5
        turns:
          - say: "Hello there."
            expect: {reply_within: 0.2, reply_seconds: [3, 4]}
          - say: "Bye."
            wait: 2
            expect: {no_reply: true}
        """,
    )
    r_sts, r_call = run_all([sts], emulator.sts_url) + run_all([call], emulator.call_url)
    assert r_sts.error is None and r_call.error is None
    got = r_sts.all_failures
    assert len(got) == 8, "\n".join(got)
    # The emulator answers ~0.9 s after the end of speech; a loaded machine adds to it,
    # so the figure is checked for its form and for breaking the limit, not its value.
    assert _late_reply(got[0], "turn 1: reply_within 0.3 s: ") > 0.3
    assert got[1].startswith("turn 1: reply_seconds [5, 10]: the reply lasted 1.")
    assert got[2].startswith('turn 1: text_contains "Oslo": the agent said "I heard ')
    assert got[3].startswith('turn 1: text_matches "thunder|hail": the agent said "I heard ')
    assert got[4] == (
        'turn 1: function_called get_weather {"city": "Oslo"}: called get_weather {"city": "Paris"}'
    )
    assert _unwanted_reply(got[5], "turn 2: no_reply: ") > 0
    assert got[6] == 'turn 2: function_called get_time: called get_weather {"city": "Paris"}'
    assert got[7].startswith("end: credits_used_max 1e-05: used 0.")
    calls = r_call.all_failures
    assert _late_reply(calls[0], "turn 1: reply_within 0.2 s: ") > 0.2
    assert calls[1].startswith("turn 1: reply_seconds [3, 4]: the reply lasted 0.")
    assert _unwanted_reply(calls[2], "turn 2: no_reply: ") > 0
    assert len(calls) == 3


def test_protocol_errors_max_counts_malformed_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """\
        turns:
          - say: "Count the bad messages, please."
            expect: {reply_within: 3}
        end: {protocol_errors_max: 0}
        """,
    )
    with Emulator(EmulatorConfig(port=0, garbage_every=4)) as emu:
        [result] = run_all([path], emu.sts_url)
    [message] = result.all_failures
    assert message.startswith("end: protocol_errors_max 0: ") and "malformed message(s)" in message


def test_ten_calls_at_once_in_one_process(emulator: Emulator, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """\
        name: load
        reply_quiet: 1.0
        turns:
          - say: "Hello, agent."
            expect: {reply_within: 3, reply_seconds: [0.3, 5]}
        end: {protocol_errors_max: 0}
        """,
    )
    # reply_quiet is generous: ten calls and the emulator share one process (and, in the
    # suite, the machine), and a reply paused that long in arrival would end the turn.
    counting = Counting()
    results = run_all([path], emulator.sts_url, LoadPlan(repeat=10, concurrency=10), counting)
    assert [r.run for r in results] == list(range(1, 11))
    assert all(r.passed for r in results), [(r.all_failures, r.error) for r in results]
    assert counting.most == 10
    assert len(emulator.sts_sessions) == 10
    t = totals(results, 1.0)
    assert (t.calls_completed, t.failed, t.errors) == (10, 0, 0)
    assert t.reply_within_s.count == 10 and t.slip_ms.count > 0


def test_fail_fast_cancels_the_rest(emulator: Emulator, tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "turns:\n  - say: hi\n    expect: {reply_within: 0.01}\n")
    results = run_all([path], emulator.sts_url, LoadPlan(repeat=4, concurrency=1, fail_fast=True))
    assert [r.cancelled for r in results] == [False, True, True, True]
    assert not results[0].passed and len(emulator.sts_sessions) == 1


# -- the tests' own servers: what the emulator never does ------------------------------------
def test_an_agent_that_never_answers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        "turns:\n  - say: hello\n    reply_timeout: 1\n"
        "    expect: {reply_within: 2, text_contains: hi}\n",
    )
    with RecordingStsServer() as server:
        [result] = run_all([path], server.url)
    assert result.all_failures == [
        "turn 1: reply_within 2 s: no agent audio within 1.0 s",
        'turn 1: text_contains "hi": the agent said no text',
    ]
    assert result.turns[0].timed_out


def test_a_refused_key_is_the_run_error(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "turns:\n  - say: hello\n")
    with RecordingStsServer(valid_keys=["another-key"]) as server:
        [result] = run_all([path], server.url)
    assert isinstance(result.error, AuthError) and not result.passed
    assert result.turns == []


def test_a_session_the_server_ends_mid_script(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "turns:\n  - say: hello\n  - say: again\n")
    ended = {"reason": "server_shutdown", "message": "maintenance"}
    with RecordingStsServer() as server:
        count = 0

        def on_audio(srv: RecordingStsServer, sid: str, data: object) -> list[object] | None:
            nonlocal count
            count += 1
            return [Sleep(0.1), Emit("session_ended", ended)] if count == 10 else None

        server.on("audio_data", on_audio)  # type: ignore[arg-type]
        [result] = run_all([path], server.url)
    assert not result.passed
    problems = [str(result.error)] if result.error else result.all_failures
    assert any("maintenance" in p or "before the script was done" in p for p in problems), problems


def test_the_scenario_timeout_bounds_the_run(emulator: Emulator, tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "timeout: 2\nturns:\n  - say: hello\n    wait: 10\n")
    [result] = run_all([path], emulator.sts_url)
    assert result.failures == ["timeout 2 s: the scenario was still in turn 1 of 1"]
    assert result.duration_s < 6
