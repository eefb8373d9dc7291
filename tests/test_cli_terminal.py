"""The live view on a real pseudo-terminal, read back through a VT100 emulator (pyte).

What a user sees at 80x24: the view fits, the newest transcript line is on screen,
Ctrl-C leaves the final frame intact, SIGTERM hangs up and restores the terminal, a
dumb terminal gets plain lines, and a peer's escape sequences are shown, not obeyed.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from clirun import cli_env, write_tone
from ptyrun import PtyRun, run_in_pty, seen
from servers import Emit, RecordingStsServer

from aivoco.errors import ExitCode

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "openpty"), reason="POSIX pty")

KEY = "sk-terminal-0123456789"
TERM_ENV = {"TERM": "xterm-256color"}


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # No sound server: the demo writes its reply to a file, as in a container.
    return cli_env(
        PULSE_SERVER="unix:/nonexistent/pulse", HOME=str(tmp_path), TMPDIR=str(tmp_path),
        **{**TERM_ENV, **extra},
    )  # fmt: skip


def status_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("● ")]


def test_demo_at_80x24_fits_and_ends_with_the_newest_line_on_screen(tmp_path: Path) -> None:
    run = run_in_pty(["demo", "--latency-ms", "0"], env=env(tmp_path))
    assert run.returncode == 0, run.text[-2000:]
    everything = run.history + run.screen_lines
    final = max(i for i, line in enumerate(everything) if line.startswith("● ended"))
    frame = everything[final : final + 23]
    assert not any(line.strip() == "..." for line in frame)
    # The newest entry (the hang-up) is inside the final frame, above its bottom border.
    bottom = max(i for i, line in enumerate(frame) if line.startswith("╰"))
    assert "session ended: idle" in frame[bottom - 1]
    assert frame[0].count("voice female") == 1 and frame[1].startswith("in:")
    assert "\x1b[?2026h" in run.text  # frames are sent whole (synchronized output)


def test_ctrl_c_keeps_the_final_frame_intact_and_echo_comes_back(tmp_path: Path) -> None:
    steps = [(seen("● live"), lambda r: r.type(b"\x03"))]
    run = run_in_pty(["demo", "--latency-ms", "0"], env=env(tmp_path), steps=steps)
    assert run.returncode == 0, run.text[-2000:]
    assert "^C" not in run.text  # the terminal did not echo it into the frame
    assert status_lines(run.screen_lines) == [
        line for line in run.screen_lines if line.startswith("● ended")
    ]
    assert not any(line.startswith("● live") for line in run.history[-30:] + run.screen_lines)
    assert run.echo_after is True


def test_sigterm_hangs_up_restores_the_terminal_and_exits_143(tmp_path: Path) -> None:
    def term(r: PtyRun) -> None:
        r.proc.send_signal(signal.SIGTERM)

    run = run_in_pty(
        ["demo", "--latency-ms", "0"], env=env(tmp_path), steps=[(seen("● live"), term)]
    )
    assert run.returncode == ExitCode.TERMINATED, run.text[-2000:]
    assert run.text.rfind("\x1b[?25h") > run.text.rfind("\x1b[?25l")  # cursor shown again
    assert run.echo_after is True
    assert "call summary" in run.text and "session ended" in run.text


def test_a_dumb_terminal_gets_plain_lines(tmp_path: Path) -> None:
    run = run_in_pty(["demo", "call", "--latency-ms", "0"], env=env(tmp_path, TERM="dumb"))
    assert run.returncode == 0, run.text[-2000:]
    assert "connecting to" in run.text and "hanging up (idle)" in run.text
    assert "\x1b[?25l" not in run.text  # no live view: the cursor was never hidden


def test_a_peers_escape_sequences_are_shown_not_obeyed_in_the_view(tmp_path: Path) -> None:
    hostile = f"\x1b[2J\x1b[31mred [bold]b[/bold] \u202eevil \x07 \ud83d {KEY}"
    tone = write_tone(tmp_path / "q.wav", 500, 16000, 0.3)

    def hook(srv: RecordingStsServer, sid: str, data: object) -> list[Any]:
        return [*srv.default_start_call(sid, data), Emit("text_response", {"text": hostile})]

    with RecordingStsServer(hooks={"start_call": hook}) as server:
        args = ["sts", "--key", KEY, "--url", server.url, "--input", str(tone)]
        run = run_in_pty([*args, "--output", str(tmp_path / "o.wav"), "--idle-timeout", "0.5"],
                         env=env(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.text[-2000:]
    assert "\x1b[31m" not in run.text and "\x1b[2J" not in run.text
    assert "\u202e" not in run.text and "\x07" not in run.text and KEY not in run.text
    screen = "\n".join(run.history + run.screen_lines)
    assert "\\x1b[31mred" in screen and "[bold]b[/bold]" in screen and "\\ud83d" in screen
    assert "***" in screen
