"""`aivoco test` as a user runs it: exit codes, JUnit (read by a JUnit parser and checked
against the schema), the JSON report, recordings, and problems reported before any call."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile
import xmlschema
from clirun import cli_env, json_lines, run_cli
from junitparser import Error, Failure, JUnitXml, Skipped

from aivoco.emulator import Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCHEMA = Path(__file__).parent / "fixtures" / "junit.xsd"
KEY = "cli-test-key-0123"


@pytest.fixture(name="emulator", scope="module")
def emulator_fixture() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(port=0, accept_keys=(KEY,))) as emu:
        yield emu


def env_for(emu: Emulator, tmp_path: Path) -> dict[str, str]:
    cache = tmp_path.parent / "tts-cache"
    return cli_env(
        AIVOCO_STS_URL=emu.sts_url, AIVOCO_CALL_URL=emu.call_url, AIVOCO_CACHE_DIR=str(cache)
    )


def validate_junit(path: Path) -> JUnitXml:
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(path))
    return JUnitXml.fromfile(str(path))


def test_the_examples_pass_with_reports_and_recordings(emulator: Emulator, tmp_path: Path) -> None:
    junit, report, rec = tmp_path / "j.xml", tmp_path / "r.json", tmp_path / "rec"
    done = run_cli(
        "test", str(EXAMPLES / "sts-smoke.yaml"), str(EXAMPLES / "call-smoke.yaml"),
        "--key", KEY, "--junit", str(junit), "--report", str(report), "--record-dir", str(rec),
        "--concurrency", "2", "--plain", env=env_for(emulator, tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sts smoke test #1: turn 1 say" in done.stdout
    assert "sts smoke test #1: PASS" in done.stdout and "call smoke test #1: PASS" in done.stdout
    assert "reply_within" in done.stdout and "p95" in done.stdout
    xml = validate_junit(junit)
    suites = list(xml)
    assert [s.name for s in suites] == ["sts smoke test", "call smoke test"]
    assert all(s.tests == 1 and s.failures == 0 and s.errors == 0 for s in suites)
    data = json.loads(report.read_text())
    assert data["totals"]["passed"] == 2 and data["totals"]["reply_within_s"]["count"] == 4
    sts = data["runs"][0]
    assert sts["turns"][0]["functions"][0]["arguments"] == {"city": "Paris"}
    assert sts["summary"]["credits_used"] is not None
    wav = rec / "sts-smoke-test-run001.wav"
    info = soundfile.info(str(wav))
    assert info.channels == 2 and info.duration > 5
    lines = json_lines((rec / "call-smoke-test-run001.jsonl").read_text())
    assert lines[-1]["type"] == "summary"
    assert KEY not in (report.read_text() + junit.read_text() + done.stdout + done.stderr)


def test_failed_expectations_exit_10_with_junit_failures(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "late.yaml"
    path.write_text("name: too fast\nturns:\n  - say: hello\n    expect: {reply_within: 0.05}\n")
    junit = tmp_path / "j.xml"
    done = run_cli(
        "test", str(path), "--key", KEY, "--junit", str(junit), "--repeat", "3", "--fail-fast",
        "--json", env=env_for(emulator, tmp_path),
    )  # fmt: skip
    assert done.returncode == 10, done.stdout + done.stderr
    assert "aivoco: scenario failed: 1 of 3 run(s) failed their expectations; first: turn 1: " in (
        done.stderr
    )
    records = json_lines(done.stdout)
    assert [r["type"] for r in records] == ["turn", "run", "totals"]
    assert records[0]["failures"][0].startswith("turn 1: reply_within 0.05 s: first agent audio")
    assert records[-1]["cancelled"] == 2
    [suite] = list(validate_junit(junit))
    cases = list(suite)
    assert isinstance(cases[0].result[0], Failure)
    assert cases[0].result[0].message.startswith("turn 1: reply_within 0.05 s")
    assert all(isinstance(c.result[0], Skipped) for c in cases[1:])


def test_problems_are_reported_at_once_before_any_call(emulator: Emulator, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            protocol: call
            turns:
              - say: hi
                expect: {text_contains: [x], reply_witin: 2}
              - play: nowhere.wav
            """
        )
    )
    sessions = len(emulator.call_sessions)
    done = run_cli("test", str(bad), env=env_for(emulator, tmp_path))
    assert done.returncode == 2
    err = done.stderr
    assert "5 problems in the scenario files, nothing was run:" in err
    assert f"{bad}:4: turns[1].expect.reply_witin: unknown key" in err
    assert f"{bad}:4: turns[1].expect.text_contains: only for protocol: sts" in err
    assert f"{bad}:5: turns[2].play: audio file not found" in err
    assert "--key: no API key" in err
    assert f"{bad}:1: agent: missing: the agent to call (or pass --agent ID)" in err
    assert len(emulator.call_sessions) == sessions


def test_a_refused_key_exits_3(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("turns:\n  - say: hello\n")
    junit = tmp_path / "j.xml"
    done = run_cli(
        "test", str(path), "--key", "wrong-key-456", "--junit", str(junit), "--plain",
        env=env_for(emulator, tmp_path),
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "authentication failed" in done.stderr
    [suite] = list(validate_junit(junit))
    [case] = list(suite)
    assert isinstance(case.result[0], Error) and case.result[0].type == "AuthError"


def test_an_unreachable_service_exits_5(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "s.yaml"
    path.write_text(f"url: http://127.0.0.1:{port}\nturns:\n  - say: hello\n")
    done = run_cli("test", str(path), "--key", KEY, "--connect-timeout", "3", "--plain")
    assert done.returncode == 5, done.stdout + done.stderr
    assert "connection failed" in done.stderr
