"""How a call command ends on signals and closed output, as the real process does.

SIGTERM (timeout, docker stop, CI cancellation) and SIGHUP end a call like the first
Ctrl-C: stop_call, the server's totals, the summary and the final records, then exit
128 + the signal. Output piped into `head` ends the call quietly, as Unix tools do.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from clirun import json_lines, spawn_cli, write_tone
from servers import RecordingStsServer

from aivoco.errors import ExitCode

KEY = "sk-signals-0123456789"


def sts_args(
    server: RecordingStsServer, tmp_path: Path, *extra: str, seconds: float = 20.0
) -> list[str]:
    tone = write_tone(tmp_path / "t.wav", 500, 16000, seconds)
    return [
        "sts", "--key", KEY, "--url", server.url, "--input", str(tone),
        "--output", str(tmp_path / "o.wav"), "--transcript", str(tmp_path / "t.jsonl"),
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, ExitCode.TERMINATED), (signal.SIGHUP, ExitCode.HANGUP_SIGNAL)],
)
def test_sigterm_and_sighup_hang_up_gracefully(
    tmp_path: Path, signum: signal.Signals, code: ExitCode
) -> None:
    with RecordingStsServer() as server:
        proc = spawn_cli(*sts_args(server, tmp_path, "--json"))
        server.wait_for("audio_data", count=20, timeout=20)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
        assert server.events("stop_call"), "the goodbye went out"
    assert proc.returncode == code, err
    types = [r["type"] for r in json_lines(out)]
    assert types[-3:] == ["hangup", "session_ended", "summary"], types
    assert json_lines(out)[-1]["credits_final"] is True  # the server's totals arrived
    transcript = json_lines((tmp_path / "t.jsonl").read_text())
    assert transcript[-1]["type"] == "summary"
    assert signal.Signals(signum).name in err and "internal error" not in err


def test_a_second_sigterm_leaves_at_once(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        server.on("stop_call", lambda srv, sid, data: [])  # never answers the goodbye
        proc = spawn_cli(*sts_args(server, tmp_path, "--plain"))
        server.wait_for("audio_data", count=20, timeout=20)
        proc.send_signal(signal.SIGTERM)
        server.wait_for("stop_call", timeout=10)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.TERMINATED, err
    assert "internal error" not in err


def test_output_closed_by_head_ends_quietly(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        # A 1 s tone: its end ("you: spoke 1.0 s") is the third line, soon after.
        proc = spawn_cli(*sts_args(server, tmp_path, "--plain", seconds=1.0))
        assert proc.stdout is not None and proc.stderr is not None
        for _ in range(2):  # `| head -2`
            proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        proc.wait(timeout=20)
        assert server.events("stop_call"), "it hung up before leaving"
    assert proc.returncode == 141, err  # 128 + SIGPIPE, as a shell reports for `yes | head`
    assert err == ""
    assert json_lines((tmp_path / "t.jsonl").read_text())[-1]["type"] == "summary"
