"""`aivoco demo`: the README's main job, run exactly as a user runs it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from clirun import cli_env, json_lines, read_wav, run_cli, spawn_cli
from pulse import PulseServer, stop_client
from tones import level_dbfs

from aivoco.audio.files import read_file
from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.emulator.assets import demo_utterance_path


def _active_s(x: np.ndarray, rate_hz: int, window_ms: int = 20) -> float:
    """Seconds of 20 ms windows whose RMS is above -40 dBFS."""
    n = rate_hz * window_ms // 1000
    frames = x[: len(x) // n * n].reshape(-1, n)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.count_nonzero(rms > 0.01) * window_ms / 1000)


def _utterance_s() -> float:
    return read_file(demo_utterance_path(), 16000).duration_ms / 1000


def test_demo_sts_runs_a_full_call_with_a_function_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    res = run_cli(
        "demo",
        "--json",
        "--output",
        str(out),
        "--latency-ms",
        "100",
        "--transcript",
        str(tmp_path / "t.jsonl"),
    )
    assert res.returncode == 0, res.stderr
    records = json_lines(res.stdout)
    types = [r["type"] for r in records]
    for expected in (
        "ready",
        "user_speech_end",
        "function_call",
        "function_result",
        "agent_text",
        "turn",
        "session_ended",
        "summary",
    ):
        assert expected in types, expected
    summary = records[-1]
    assert summary["reason"] == "idle" and summary["turns"] == 1
    assert summary["credits_final"] is True
    assert summary["audio_s_received"] == pytest.approx(_utterance_s(), abs=0.1)
    result = next(r for r in records if r["type"] == "function_result")
    assert result["ok"] and result["result"]["time_zone"] == "Europe/Paris"
    reply = read_wav(out)
    assert reply.sample_rate_hz == 24000
    voiced = reply.samples[np.abs(reply.samples[:, 0]) > 300, 0]
    assert len(voiced) / 24000 > 0.5 * _utterance_s()  # the echo was played
    assert "aivoco-demo-key" not in res.stdout + res.stderr
    assert (tmp_path / "t.jsonl").read_text().count("\n") == len(records)


def test_demo_call_without_a_speaker_writes_the_reply_and_says_where(tmp_path: Path) -> None:
    # No sound server for this process: PortAudio finds no output, the demo falls back.
    env = cli_env(TMPDIR=str(tmp_path), PULSE_SERVER="unix:/nonexistent/pulse", HOME=str(tmp_path))
    res = run_cli("demo", "call", "--plain", "--latency-ms", "100", env=env)
    assert res.returncode == 0, res.stderr
    [written] = tmp_path.glob("aivoco-demo-call-*.wav")  # a new file of its own
    assert f"agent audio written to {written}" in res.stdout.replace("\n", "")
    assert "no speaker" in res.stdout
    reply = read_wav(written)
    assert reply.sample_rate_hz == 8000
    assert level_dbfs(reply.samples[:, 0]) > -40  # mu-law echo of the utterance


def _lines_until_ready(call: subprocess.Popen[str], timeout_s: float) -> str:
    """The call's --json lines up to its `ready` record (the connection is up)."""
    assert call.stdout is not None
    deadline = time.monotonic() + timeout_s
    lines = []
    while time.monotonic() < deadline:
        line = call.stdout.readline()
        if not line:
            break  # it ended: communicate() reports how
        lines.append(line)
        if '"type": "ready"' in line:
            break
    return "".join(lines)


@pytest.mark.device
def test_sts_through_real_mic_and_speaker_against_the_emulator(
    pulse: PulseServer, tmp_path: Path
) -> None:
    """Utterance -> PulseAudio mic -> PortAudio -> aivoco sts -> emulator echo ->
    PortAudio -> PulseAudio speaker -> parec. Nothing in between is simulated."""
    env = cli_env(**pulse.env)
    raw = tmp_path / "speaker.raw"
    with Emulator(EmulatorConfig(port=0, latency_ms=100)) as emu:
        rec = pulse.record_speaker(raw, 48000)
        call = spawn_cli(
            "sts",
            "--key",
            "device-test-key",
            "--url",
            emu.sts_url,
            "--json",
            "--max-duration",
            str(round(_utterance_s() * 2 + 4)),
            "--record",
            str(tmp_path / "rec.wav"),
            env=env,
        )
        # Speak once the call is up, not after a fixed time: on a loaded machine start-up
        # took longer than the 1.5 s this used to wait, the utterance's start went
        # unheard and the echo came back too short.
        head = _lines_until_ready(call, timeout_s=30)
        time.sleep(0.3)  # the microphone's stream starts with the call's media
        feeder = pulse.play_into_mic(demo_utterance_path())
        rest, err = call.communicate(timeout=60)
        out = head + rest
        stop_client(feeder)
        stop_client(rec)
    assert call.returncode == 0, err
    records = json_lines(out)
    assert any(r["type"] == "agent_text" and "I heard" in r["text"] for r in records), out
    assert records[-1]["turns"] >= 1
    heard = np.frombuffer(raw.read_bytes(), "<i2").astype(np.float64) / 32768
    utterance = read_file(demo_utterance_path(), 48000).to_float32()[:, 0]
    # The echo came out of the speaker: as much active speech as the utterance holds.
    kinds = " ".join(f"{r['type']}@{r.get('t')}" for r in records if r["type"] != "credits")
    assert _active_s(heard, 48000) >= 0.8 * _active_s(utterance, 48000), kinds
    rec_wav = read_wav(tmp_path / "rec.wav")
    assert np.abs(rec_wav.samples[:, 0]).max() > 3000  # the mic side was recorded
    assert np.abs(rec_wav.samples[:, 1]).max() > 3000  # and what the speaker played
