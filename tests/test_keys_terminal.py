"""Keys during a live call, driven through a real pseudo-terminal (pexpect).

The command runs as a user would start it, in a terminal of 80x24, against the
emulator; a file stands in for the microphone (a steady tone), so what went upstream
can be read back from the recording's left channel and lined up with the records'
times (both start when the call goes live). After the call, `stty` in the same
terminal shows whether its modes were restored.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pexpect
import pytest
from clirun import cli_env, read_wav, write_tone

from aivoco.emulator import Emulator, EmulatorConfig

KEY = "keys-test-key"
DEADLINE_S = 30


def spawn(emu: Emulator, tmp_path: Path, *extra: str) -> pexpect.spawn:
    tone = write_tone(tmp_path / "tone.wav", 440, 16000, 30.0, amplitude=0.3)
    args = [
        "-m", "aivoco", "sts", "--key", KEY, "--url", emu.sts_url, "--input", str(tone),
        "--output", str(tmp_path / "agent.wav"), "--record", str(tmp_path / "rec.wav"),
        "--transcript", str(tmp_path / "t.jsonl"), "--max-duration", "25", *extra,
    ]  # fmt: skip
    env = cli_env(TERM="xterm-256color", COLUMNS="80", LINES="24")
    # A shell runs the call and then prints the terminal's modes, so the test sees what
    # the user's shell gets back.
    command = " ".join([sys.executable, *(_quote(a) for a in args)])
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f"{command}; echo EXIT=$?; stty -a"],
        env=env,
        dimensions=(24, 80),
        encoding="utf-8",
        codec_errors="replace",
        timeout=DEADLINE_S,
    )
    child.logfile_read = io.StringIO()  # everything the terminal showed
    return child


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def sent_level(tmp_path: Path, t0: float, t1: float) -> float:
    """Peak of what went upstream between t0 and t1 (s after going live), 0..1."""
    rec = read_wav(tmp_path / "rec.wav")
    left = rec.samples[:, 0].astype(np.float64) / 32768
    a, b = round(t0 * rec.sample_rate_hz), round(t1 * rec.sample_rate_hz)
    assert b <= left.size, "the recording is shorter than the call"
    return float(np.abs(left[a:b]).max())


def finish(child: pexpect.spawn) -> tuple[str, str]:
    """Wait for the shell to print the exit code and the terminal modes: (what the
    command printed since the last match, the modes)."""
    child.expect(r"EXIT=(\d+)")
    code = int(child.match.group(1))
    printed = child.before
    child.expect(pexpect.EOF)
    modes = child.before
    child.close()
    assert code == 0, printed
    return printed, modes


def expect_live(child: pexpect.spawn) -> None:
    child.expect("live")
    child.expect(r"\? keys")  # the keys are offered once the reader runs
    time.sleep(0.5)


def test_mute_sends_silence_and_q_hangs_up_with_a_summary(tmp_path: Path) -> None:
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        child = spawn(emu, tmp_path)
        expect_live(child)
        child.send("m")
        child.expect("MUTED")
        time.sleep(1.5)
        child.send("m")
        time.sleep(1.0)
        child.send("q")
        child.expect("call summary")
        table, modes = finish(child)
    assert "hangup" in table and "echo" in table
    recs = records(tmp_path)
    mutes = [(r["t"], r["muted"]) for r in recs if r["type"] == "mute"]
    assert [m for _, m in mutes] == [True, False]
    (t_on, _), (t_off, _) = mutes
    summary = recs[-1]
    assert summary["type"] == "summary" and summary["reason"] == "hangup"
    # The tone went up before and after, silence (has_audio false) while muted.
    # Margins of 0.3 s: on a loaded machine the uplink may run a little behind the clock.
    assert sent_level(tmp_path, max(0.0, t_on - 0.6), t_on - 0.3) > 0.25
    assert sent_level(tmp_path, t_on + 0.3, t_off - 0.3) == 0.0
    assert sent_level(tmp_path, t_off + 0.3, t_off + 0.6) > 0.25
    check_restored(child, modes)


def test_push_to_talk_gates_the_microphone(tmp_path: Path) -> None:
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        child = spawn(emu, tmp_path, "--push-to-talk")
        expect_live(child)
        child.expect("space to talk")
        time.sleep(0.8)
        child.send(" ")
        child.expect("TALKING")
        time.sleep(1.5)
        child.send(" ")
        time.sleep(1.0)
        child.send("+")  # and a volume step on the way out
        child.send("q")
        child.expect("call summary")
        _, modes = finish(child)
    recs = records(tmp_path)
    mic = [(r["t"], r["mode"]) for r in recs if r["type"] == "microphone"]
    assert [m for _, m in mic] == ["push-to-talk talking", "push-to-talk idle"]
    (t_talk, _), (t_idle, _) = mic
    assert sent_level(tmp_path, 0.0, t_talk - 0.3) == 0.0  # closed from the start
    assert sent_level(tmp_path, t_talk + 0.3, t_idle - 0.3) > 0.25
    assert sent_level(tmp_path, t_idle + 0.3, t_idle + 0.7) == 0.0
    assert [r["percent"] for r in recs if r["type"] == "volume"] == [110]
    check_restored(child, modes)


def check_restored(child: pexpect.spawn, modes: str) -> None:
    """`stty -a` after the call: echo and canonical input are back on; and the cursor,
    hidden while the view ran, was shown again after the last time it was hidden."""
    shown = child.logfile_read.getvalue()
    hidden_at = shown.rfind("\x1b[?25l")
    assert hidden_at >= 0, "the live view never hid the cursor (was it the live view?)"
    assert shown.find("\x1b[?25h", hidden_at) > hidden_at, "the cursor stayed hidden"
    words = modes.split()
    assert "echo" in words and "-echo" not in words, modes
    assert "icanon" in words and "-icanon" not in words, modes


def test_keys_never_reach_the_screen_and_the_cursor_comes_back(tmp_path: Path) -> None:
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        child = spawn(emu, tmp_path)
        expect_live(child)
        child.send("zzz\x1b[A?")  # unbound letters, an arrow key, then the help
        child.expect("open mic")  # in the help line
        child.send("q")
        child.expect("call summary")
        screen = child.before
        _, modes = finish(child)
    assert "zzz" not in screen and "[A" not in screen
    check_restored(child, modes)


@pytest.mark.parametrize("flag", ["--plain", "--json"])
def test_plain_and_json_leave_the_terminal_alone(tmp_path: Path, flag: str) -> None:
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        child = spawn(emu, tmp_path, flag, "--max-duration", "2")
        child.expect("EXIT=")
        child.sendline("m")  # echoed by the terminal: nobody turned echo off
        child.expect(pexpect.EOF)
        child.close()
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        child = spawn(emu, tmp_path, flag, "--push-to-talk")
        child.expect("push-to-talk needs the keys")
        child.expect(pexpect.EOF)
        child.close()
