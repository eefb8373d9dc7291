"""Our own `sts` and `call` commands against the emulator, with every fault option.

The client must survive garbage, report drops with its files intact, and map each
refusal to its exit code. The emulator runs in-process on a free loopback port.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import file_args, json_lines, read_wav, run_cli, write_tone

from aivoco.cli.errors import ExitCode
from aivoco.emulator import CallSessionRecord, Emulator, EmulatorConfig
from aivoco.emulator.assets import demo_utterance_path

KEY = "emu-key-123456"


def sts(emu: Emulator, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "sts", "--key", KEY, "--url", emu.sts_url, "--input", str(demo_utterance_path()),
        "--output", str(tmp_path / "agent.wav"), "--idle-timeout", "1.5", "--json", *extra,
    ]  # fmt: skip


def call(emu: Emulator, tmp_path: Path, agent: str = "agent-1", *extra: str) -> list[str]:
    return [
        "call", "--agent", agent, "--key", KEY, "--url", emu.call_url,
        "--input", str(demo_utterance_path()), "--output", str(tmp_path / "agent.wav"),
        "--idle-timeout", "1.5", "--json", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("protocol", ["sts", "call"])
def test_garbage_every_n_is_survived_and_counted(protocol: str, tmp_path: Path) -> None:
    config = EmulatorConfig(port=0, latency_ms=0, garbage_every=5)
    with Emulator(config) as emu:
        args = sts(emu, tmp_path) if protocol == "sts" else call(emu, tmp_path)
        res = run_cli(*args)
        sessions = emu.sts_sessions if protocol == "sts" else emu.call_sessions
        garbage_sent = sessions[0].garbage_sent
    assert res.returncode == 0, res.stderr
    summary = json_lines(res.stdout)[-1]
    # Some garbage kinds are unknown events (logged, not errors); the rest are counted.
    assert 0 < summary["protocol_errors"] <= garbage_sent
    assert summary["turns"] == 1
    reply = read_wav(tmp_path / "agent.wav")
    assert reply.frames > 0


@pytest.mark.parametrize("protocol", ["sts", "call"])
def test_a_correct_client_is_never_flagged(protocol: str, tmp_path: Path) -> None:
    """A full call, the agent's reply and (call) our mark answer included, without one
    protocol deviation; the call client keeps streaming after the mark it answered."""
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        args = sts(emu, tmp_path) if protocol == "sts" else call(emu, tmp_path)
        res = run_cli(*args)
        record = (emu.sts_sessions if protocol == "sts" else emu.call_sessions)[0]
        assert emu.wait_until(lambda: record.closed)
    assert res.returncode == 0, res.stderr
    assert record.replies and record.replies[0].finished_at is not None
    if protocol == "call":
        assert isinstance(record, CallSessionRecord)
        assert record.marks and all(m.answered_at is not None for m in record.marks)
        assert record.stop_received
    assert record.deviation_counts["sequence_number"] == 0, record.deviations
    assert record.deviation_total == 0, record.deviations


@pytest.mark.parametrize("protocol", ["sts", "call"])
def test_drop_after_is_reported_and_files_stay_valid(protocol: str, tmp_path: Path) -> None:
    config = EmulatorConfig(port=0, latency_ms=0, drop_after_s=2.0)
    with Emulator(config) as emu:
        args = sts(emu, tmp_path) if protocol == "sts" else call(emu, tmp_path)
        res = run_cli(*args, *file_args(tmp_path), "--no-reconnect")
    assert res.returncode == ExitCode.CONNECTION, res.stderr
    assert "lost" in res.stderr
    rec = read_wav(tmp_path / "rec.wav")
    assert rec.frames / rec.sample_rate_hz == pytest.approx(2.0, abs=0.6)
    records = json_lines((tmp_path / "t.jsonl").read_text())
    assert records[-1]["type"] == "summary" and "lost" in records[-1]["error"]


def test_rejected_agent_and_unaccepted_keys(tmp_path: Path) -> None:
    config = EmulatorConfig(port=0, latency_ms=0, reject_agents=("blocked",), accept_keys=(KEY,))
    with Emulator(config) as emu:
        res = run_cli(*call(emu, tmp_path, "blocked"))
        assert res.returncode == ExitCode.AUTH and "HTTP 404" in res.stderr
        res = run_cli(*call(emu, tmp_path), "--key", "not-the-key")
        assert res.returncode == ExitCode.AUTH and "HTTP 401" in res.stderr
        res = run_cli(*sts(emu, tmp_path), "--key", "not-the-key")
        assert res.returncode == ExitCode.AUTH
        assert "not-the-key" not in res.stdout + res.stderr


def test_credits_running_out_mid_call(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "long.wav", 400, 16000, 20.0)
    config = EmulatorConfig(port=0, latency_ms=0, credits=0.05, cost_per_minute=1.0)
    with Emulator(config) as emu:  # 0.05 credits at 1/min: about 3 s of call
        res = run_cli(*sts(emu, tmp_path)[:-1], "--input", str(tone), "--plain")
    assert res.returncode == ExitCode.CREDITS, res.stderr
    assert "insufficient" in res.stderr.lower() or "credits" in res.stderr.lower()
