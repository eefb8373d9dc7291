"""`aivoco sts/call --report FILE`: the page written when the call ends, however it ends.

The real CLI in a subprocess against the emulator or a scripted loopback server. The
page is checked as parsed HTML (it is self-contained); the browser checks are in
tests/test_report_calls.py. TMPDIR points into the test's directory, so the scratch
transcript and recording a report without --transcript/--record needs are seen to go.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from clirun import cli_env, json_lines, run_cli, spawn_cli, write_tone
from reportcheck import parse_page
from servers import Emit, RecordingStsServer

from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.emulator.assets import demo_utterance_path
from aivoco.errors import ExitCode

KEY = "sk-report-option-7f3a9b21"


def _env(tmp_path: Path) -> dict[str, str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    return cli_env(TMPDIR=str(scratch))


def _records(out: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in json_lines(out) if r["type"] == kind]


def _quiet_args(server_url: str, tmp_path: Path, *extra: str, seconds: float = 0.3) -> list[str]:
    tone = write_tone(tmp_path / "in.wav", 500, 16000, seconds, amplitude=0.0)
    return [
        "sts", "--key", KEY, "--url", server_url, "--input", str(tone),
        "--output", str(tmp_path / "agent.wav"), "--idle-timeout", "0.5", "--json", *extra,
    ]  # fmt: skip


def test_report_of_a_call_without_transcript_or_recording(tmp_path: Path) -> None:
    page_path = tmp_path / "call.html"
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        res = run_cli(
            "sts", "--key", KEY, "--url", emu.sts_url, "--input", str(demo_utterance_path()),
            "--output", str(tmp_path / "agent.wav"), "--idle-timeout", "1", "--json",
            "--report", str(page_path), env=_env(tmp_path),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    (report,) = _records(res.stdout, "report")
    assert report["ok"] is True and report["path"] == str(page_path)
    assert report["turns"] == report["answered"] == 1
    (summary,) = _records(res.stdout, "summary")
    assert "recording" not in summary  # the scratch recording is gone: not named
    html = page_path.read_text(encoding="utf-8")
    page = parse_page(html)
    assert KEY not in html and page.external == []
    (turn,) = _records(res.stdout, "turn")
    (said,) = _records(res.stdout, "agent_text")
    assert f"{turn['latency_ms']:.0f} ms" in page.text and said["text"] in page.text
    assert len(page.images) == 2  # the timeline (with the levels) and the latency
    assert "does not know" not in page.text  # every record the call writes is known
    assert list((tmp_path / "tmp").iterdir()) == []  # the scratch files were removed


def test_report_keeps_the_given_files_and_redacts_an_echoed_key(tmp_path: Path) -> None:
    transcript, recording, page_path = tmp_path / "t.jsonl", tmp_path / "r.wav", tmp_path / "p.html"

    def start(srv: RecordingStsServer, sid: str, data: object) -> list[Any]:
        return [*srv.default_start_call(sid, data), Emit("text_response", {"text": KEY})]

    with RecordingStsServer() as server:
        server.on("start_call", start)
        res = run_cli(
            *_quiet_args(server.url, tmp_path, "--transcript", str(transcript)),
            "--record", str(recording), "--report", str(page_path), env=_env(tmp_path),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json_lines(transcript.read_text())[-1]["type"] == "summary"
    assert recording.stat().st_size > 44  # the recording holds the call
    html = page_path.read_text(encoding="utf-8")
    assert KEY not in html and "***" in html  # the echoed key, masked
    assert recording.name in parse_page(html).text


def _interrupted(tmp_path: Path, signum: signal.Signals) -> tuple[int, str, str]:
    page_path = tmp_path / "p.html"
    with RecordingStsServer() as server:
        proc = spawn_cli(
            *_quiet_args(server.url, tmp_path, "--report", str(page_path), seconds=20),
            env=_env(tmp_path),
        )
        try:
            server.wait_for("audio_data", count=20, timeout=20)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:  # a failed wait: the process is not left behind
                proc.kill()
                proc.communicate()
    assert page_path.is_file() and parse_page(page_path.read_text()).text
    assert list((tmp_path / "tmp").iterdir()) == []
    return proc.returncode, out, err


def test_report_after_ctrl_c(tmp_path: Path) -> None:
    code, out, err = _interrupted(tmp_path, signal.SIGINT)
    assert code == ExitCode.OK, err
    assert [r["type"] for r in json_lines(out)][-2:] == ["summary", "report"]


def test_report_after_sigterm(tmp_path: Path) -> None:
    code, out, err = _interrupted(tmp_path, signal.SIGTERM)
    assert code == ExitCode.TERMINATED, err
    assert _records(out, "report")[0]["ok"] is True


def test_report_of_a_call_that_could_not_connect(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        url = server.url  # closed once the block ends: nothing listens there
    page_path = tmp_path / "p.html"
    res = run_cli(*_quiet_args(url, tmp_path, "--report", str(page_path)), env=_env(tmp_path))
    assert res.returncode == ExitCode.CONNECTION, res.stderr
    assert _records(res.stdout, "error")[0]["exit_code"] == ExitCode.CONNECTION
    assert _records(res.stdout, "report")[0]["ok"] is True
    assert "cannot connect" in parse_page(page_path.read_text()).text


def test_an_unwritable_report_is_a_file_error_that_loses_nothing(tmp_path: Path) -> None:
    transcript, page_path = tmp_path / "t.jsonl", tmp_path / "missing-dir" / "p.html"
    with RecordingStsServer() as server:
        res = run_cli(
            *_quiet_args(server.url, tmp_path, "--transcript", str(transcript)),
            "--report", str(page_path), env=_env(tmp_path),
        )  # fmt: skip
    assert res.returncode == ExitCode.AUDIO_FILE, res.stderr
    (report,) = _records(res.stdout, "report")
    assert report["ok"] is False and report["exit_code"] == ExitCode.AUDIO_FILE
    assert _records(res.stdout, "error")[0]["exit_code"] == ExitCode.AUDIO_FILE
    assert "cannot write report" in res.stderr and "internal error" not in res.stderr
    assert json_lines(transcript.read_text())[-1]["type"] == "summary"  # the call's file


def test_an_unwritable_report_leaves_the_exit_code_of_a_failed_call(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        url = server.url
    page_path = tmp_path / "missing-dir" / "p.html"
    res = run_cli(*_quiet_args(url, tmp_path, "--report", str(page_path)), env=_env(tmp_path))
    assert res.returncode == ExitCode.CONNECTION, res.stderr
    assert "warning: report not written" in res.stderr
    assert list((tmp_path / "tmp").iterdir()) == []


def test_report_and_another_output_may_not_share_a_file(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        same = str(tmp_path / "same")
        res = run_cli(*_quiet_args(server.url, tmp_path, "--transcript", same, "--report", same))
        assert server.events("start_call") == []
    assert res.returncode == ExitCode.USAGE
    assert "--transcript and --report name the same file" in res.stderr


def test_report_without_matplotlib_is_a_usage_error_before_the_call(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        args = _quiet_args(server.url, tmp_path, "--report", str(tmp_path / "p.html"))
        code = (
            "import sys; sys.modules['matplotlib'] = None; "
            "from aivoco.cli.app import main; sys.argv = ['aivoco', *sys.argv[1:]]; main()"
        )
        res = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
            check=False,
        )
        assert server.events("start_call") == []
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert "--report" in res.stderr and "pip install 'aivoco[report]'" in res.stderr
    assert "Traceback" not in res.stderr
