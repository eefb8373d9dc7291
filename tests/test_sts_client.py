"""`aivoco sts` end to end: the real command against a real Socket.IO server on loopback.

The recording server (tests/_servers_sts.py) is python-socketio's AsyncServer; the
command runs in a subprocess exactly as a user runs it.
"""

from __future__ import annotations

import base64
import signal
from pathlib import Path

import numpy as np
import pytest
from clirun import cli_env, file_args, json_lines, read_wav, run_cli, spawn_cli, write_tone
from servers import Action, Disconnect, Emit, RecordingStsServer, Sleep
from tones import dominant_freq, level_dbfs, sine_chunk, sine_dbfs, steady

from aivoco.audio.chunk import AudioChunk
from aivoco.cli.errors import ExitCode

KEY = "sk-test-7f3a9c1e5b"


def b64(chunk: AudioChunk) -> str:
    return base64.b64encode(chunk.to_bytes()).decode()


def audio_events(chunk: AudioChunk, frames_per_event: int) -> list[Action]:
    return [
        Emit(
            "audio_response",
            {
                "audio_data": b64(
                    AudioChunk(chunk.samples[i : i + frames_per_event], chunk.sample_rate_hz)
                )
            },
        )
        for i in range(0, chunk.frames, frames_per_event)
    ]


def then(*extra: Action):  # type: ignore[no-untyped-def]
    """A start_call hook: the default auth/session flow, then `extra` actions."""

    def hook(srv: RecordingStsServer, sid: str, data: object) -> list[Action]:
        return [*srv.default_start_call(sid, data), *extra]

    return hook


def sts_args(server: RecordingStsServer, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "sts",
        "--key",
        KEY,
        "--url",
        server.url,
        "--output",
        str(tmp_path / "agent.wav"),
        "--idle-timeout",
        "0.6",
        "--connect-timeout",
        "5",
        *extra,
    ]


def _uplink_pcm(server: RecordingStsServer) -> np.ndarray:
    frames = [base64.b64decode(r.data["audio_data"]) for r in server.events("audio_data")]
    return np.frombuffer(b"".join(frames), "<i2")


def test_tone_from_48k_stereo_file_arrives_as_16k_pcm_in_real_time(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "tone.wav", 1000, 48000, 1.0, amplitude=0.5, channels=2)
    system = tmp_path / "system.txt"
    system.write_text("Be brief.\n")
    with RecordingStsServer() as server:
        res = run_cli(
            *sts_args(server, tmp_path, "--input", str(tone), "--system", f"@{system}", "--plain")
        )
        assert res.returncode == 0, res.stderr
        start = server.wait_for("start_call").data
        frames = server.events("audio_data")
        assert server.events("stop_call"), "graceful hang-up sends stop_call"
    assert start == {
        "auth_key": KEY,
        "system_message": "Be brief.",
        "voice_choice": "female",
        "custom_functions": [],
    }
    # 20 ms frames of 16 kHz s16le mono: 640 bytes each.
    sizes = {len(base64.b64decode(f.data["audio_data"])) for f in frames}
    assert sizes == {640}
    pcm = _uplink_pcm(server)
    tone_part = steady(pcm)
    assert len(tone_part) == pytest.approx(16000 * 0.8, rel=0.05)
    assert dominant_freq(tone_part, 16000) == pytest.approx(1000, abs=5)
    assert level_dbfs(tone_part) == pytest.approx(sine_dbfs(0.5), abs=0.3)
    voiced = [f for f in frames if f.data["has_audio"]]
    assert len(voiced) == pytest.approx(50, abs=2)  # 1 s of tone
    assert max(f.data["max_amplitude"] for f in voiced) == pytest.approx(0.5, abs=0.02)
    assert not any(f.data["has_audio"] for f in frames[60:])  # then silence
    # Real-time pacing: frame k leaves ~k x 20 ms after the first (no burst).
    times = np.array([f.time for f in frames])
    span = times[-1] - times[0]
    assert span == pytest.approx((len(frames) - 1) * 0.02, rel=0.1)
    assert np.max(np.diff(times[:50])) < 0.2
    assert "hanging up (idle)" in res.stdout
    assert KEY not in res.stdout + res.stderr


def test_agent_audio_at_24k_is_played_to_the_output_file(tmp_path: Path) -> None:
    reply = sine_chunk(440, 24000, 1.0, amplitude=0.4)
    quiet = write_tone(tmp_path / "quiet.wav", 1000, 16000, 0.2, amplitude=0.0)
    with RecordingStsServer() as server:
        server.on(
            "start_call",
            then(Emit("text_response", {"text": "Here is a tone."}), *audio_events(reply, 2400)),
        )
        res = run_cli(
            *sts_args(server, tmp_path, "--input", str(quiet), "--json"),
            "--transcript",
            str(tmp_path / "t.jsonl"),
            "--record",
            str(tmp_path / "rec.wav"),
        )
    assert res.returncode == 0, res.stderr
    out = read_wav(tmp_path / "agent.wav")
    assert out.sample_rate_hz == 24000 and out.channels == 1
    played = steady(out.samples[:, 0])
    assert len(played) == pytest.approx(24000 * 0.8, rel=0.05)  # steady() trims 10 % each side
    assert dominant_freq(played, 24000) == pytest.approx(440, abs=3)
    assert level_dbfs(played) == pytest.approx(sine_dbfs(0.4), abs=0.3)
    records = json_lines(res.stdout)
    types = [r["type"] for r in records]
    assert "ready" in types and "agent_text" in types and types[-1] == "summary"
    assert records[-1]["audio_s_received"] == pytest.approx(1.0, abs=0.01)
    assert records[-1]["credits_final"] is True
    transcript = json_lines((tmp_path / "t.jsonl").read_text())
    assert [r["text"] for r in transcript if r["type"] == "agent_text"] == ["Here is a tone."]
    rec = read_wav(tmp_path / "rec.wav")
    assert rec.channels == 2 and rec.sample_rate_hz == 24000
    assert dominant_freq(steady(rec.samples[:, 1]), 24000) == pytest.approx(440, abs=3)
    assert np.max(np.abs(rec.samples[:, 0])) == 0  # the user sent silence


FUNCTIONS_PY = '''
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")
'''


def test_custom_functions_round_trip(tmp_path: Path) -> None:
    tools = tmp_path / "tools.py"
    tools.write_text(FUNCTIONS_PY)
    quiet = write_tone(tmp_path / "quiet.wav", 1000, 16000, 0.3, amplitude=0.0)
    calls = [
        Emit(
            "function_called",
            {"function_name": "add", "arguments": {"a": 2, "b": 3}, "call_id": "c-1"},
        ),
        Emit(
            "function_called",
            {"function_name": "explode", "arguments": {"reason": "x"}, "call_id": 7},
        ),
        Emit("function_called", {"function_name": "nope", "arguments": {}, "call_id": "c-3"}),
    ]
    with RecordingStsServer() as server:
        server.on("start_call", then(*calls))
        res = run_cli(
            *sts_args(server, tmp_path, "--input", str(quiet), "--functions", str(tools)),
            "--json",
        )
        assert res.returncode == 0, res.stderr
        start = server.wait_for("start_call").data
        replies = {r.data["call_id"]: r.data for r in server.events("function_response")}
    assert start["custom_functions"] == [
        {
            "name": "add",
            "description": "Add two integers.",
            "parameters": [
                {
                    "name": "a",
                    "type": "integer",
                    "description": "the first number",
                    "required": True,
                },
                {
                    "name": "b",
                    "type": "integer",
                    "description": "the second number",
                    "required": True,
                },
            ],
        },
        {
            "name": "explode",
            "description": "Always fails.",
            "parameters": [
                {"name": "reason", "type": "string", "description": "", "required": True}
            ],
        },
    ]
    assert replies["c-1"] == {"call_id": "c-1", "function_name": "add", "result": 5}
    assert replies["7"]["result"]["status"] == "failed"
    assert "boom: x" in replies["7"]["result"]["error"]
    assert replies["c-3"]["result"]["status"] == "failed"
    shown = [r for r in json_lines(res.stdout) if r["type"] == "function_result"]
    assert {r["name"]: r["ok"] for r in shown} == {"add": True, "explode": False, "nope": False}


def test_missing_key_is_a_usage_error_before_connecting(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        res = run_cli("sts", "--url", server.url, "--input", "x.wav", "--output", "y.wav")
        assert res.returncode == ExitCode.USAGE
        assert "AIVOCO_API_KEY" in res.stderr
        assert server.events() == []


def test_key_from_environment_and_refused_key(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 16000, 0.2, amplitude=0.0)
    with RecordingStsServer(valid_keys={"other"}) as server:
        res = run_cli(
            "sts",
            "--url",
            server.url,
            "--input",
            str(quiet),
            "--output",
            str(tmp_path / "o.wav"),
            "--log-file",
            str(tmp_path / "log.txt"),
            env=cli_env(AIVOCO_API_KEY=KEY),
        )
        assert server.wait_for("start_call").data["auth_key"] == KEY
    assert res.returncode == ExitCode.AUTH
    assert "Invalid API key" in res.stderr  # the server's own message
    log = (tmp_path / "log.txt").read_text()
    assert "auth_key: ***" in log
    for text in (res.stdout, res.stderr, log):
        assert KEY not in text


@pytest.mark.parametrize(
    ("payload", "code", "text"),
    [
        ({"message": "Key revoked", "type": "invalid_api_key"}, ExitCode.AUTH, "Key revoked"),
        (
            {"message": "No credits left", "type": "insufficient_credits"},
            ExitCode.CREDITS,
            "No credits left",
        ),
        ({"message": "Slow down", "type": "rate_limit_exceeded"}, ExitCode.SERVICE, "Slow down"),
    ],
)
def test_error_events_mid_call_end_with_their_exit_code(
    tmp_path: Path, payload: dict[str, str], code: ExitCode, text: str
) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 16000, 3.0)
    with RecordingStsServer() as server:
        server.on("start_call", then(Sleep(0.3), Emit("error", payload)))
        res = run_cli(*sts_args(server, tmp_path, "--input", str(tone), "--plain"))
    assert res.returncode == code, res.stderr
    assert text in res.stderr


def test_credits_running_out_mid_call_keeps_files_valid(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 16000, 5.0)
    ended = {
        "reason": "insufficient_user_credits",
        "message": "You ran out of credits",
        "total_credits_used": 2.0,
        "remaining_credits": 0,
    }
    with RecordingStsServer() as server:
        server.on(
            "start_call",
            then(
                *audio_events(sine_chunk(300, 24000, 0.3), 2400),
                Sleep(0.8),
                Emit("session_ended", ended),
                Disconnect(),
            ),
        )
        res = run_cli(
            *sts_args(server, tmp_path, "--input", str(tone), "--plain"),
            *file_args(tmp_path),
        )
    assert res.returncode == ExitCode.CREDITS, res.stderr
    assert "You ran out of credits" in res.stderr
    rec = read_wav(tmp_path / "rec.wav")
    assert rec.frames / rec.sample_rate_hz == pytest.approx(1.0, abs=0.4)
    records = json_lines((tmp_path / "t.jsonl").read_text())
    ended_records = [r for r in records if r["type"] == "session_ended"]
    assert ended_records and ended_records[0]["total_credits_used"] == 2.0
    assert records[-1]["type"] == "summary"


def test_connection_refused_and_dropped_mid_call(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 16000, 0.2, amplitude=0.0)
    res = run_cli(
        "sts",
        "--key",
        KEY,
        "--url",
        "http://127.0.0.1:9",
        "--input",
        str(quiet),
        "--output",
        str(tmp_path / "o.wav"),
        "--connect-timeout",
        "3",
    )
    assert res.returncode == ExitCode.CONNECTION
    assert "cannot connect to 127.0.0.1:9" in res.stderr

    tone = write_tone(tmp_path / "t.wav", 500, 16000, 5.0)
    with RecordingStsServer() as server:
        server.on(
            "start_call",
            then(Emit("text_response", {"text": "hello"}), Sleep(1.0), Disconnect(abrupt=True)),
        )
        res = run_cli(
            *sts_args(server, tmp_path, "--input", str(tone), "--plain", "--no-reconnect"),
            *file_args(tmp_path),
        )
    assert res.returncode == ExitCode.CONNECTION, res.stderr
    assert "lost" in res.stderr
    assert read_wav(tmp_path / "rec.wav").frames > 16000 * 0.5
    types = [r["type"] for r in json_lines((tmp_path / "t.jsonl").read_text())]
    assert "agent_text" in types and "error" in types and types[-1] == "summary"


def test_malformed_messages_are_survived_then_a_stream_of_garbage_is_fatal(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 16000, 0.2, amplitude=0.0)
    bad = [
        Emit("audio_response", {"audio_data": "not base64!"}),
        Emit("audio_response", {"audio_data": base64.b64encode(b"odd").decode()}),
        Emit("text_response", {"no_text": 1}),
        Emit("function_called", {"arguments": {}}),
        Emit("mystery_event", {"x": 1}),
        Emit("text_response", {"text": "still here"}),
    ]
    with RecordingStsServer() as server:
        server.on("start_call", then(*bad))
        res = run_cli(*sts_args(server, tmp_path, "--input", str(quiet), "--json"))
    assert res.returncode == 0, res.stderr
    records = json_lines(res.stdout)
    assert len([r for r in records if r["type"] == "protocol_error"]) == 4
    assert records[-1]["protocol_errors"] == 4
    assert any(r.get("text") == "still here" for r in records)

    garbage = [Emit("audio_response", {"audio_data": "%%%"}) for _ in range(25)]
    with RecordingStsServer() as server:
        server.on("start_call", then(*garbage))
        res = run_cli(*sts_args(server, tmp_path, "--input", str(quiet), "--plain"))
    assert res.returncode == ExitCode.PROTOCOL, res.stderr
    assert "malformed messages in a row" in res.stderr


def test_ctrl_c_hangs_up_gracefully_then_a_second_exits_at_once(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 16000, 20.0)
    with RecordingStsServer() as server:
        proc = spawn_cli(*sts_args(server, tmp_path, "--input", str(tone), "--plain"))
        server.wait_for("audio_data", count=20, timeout=20)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert server.events("stop_call")
    assert "hanging up (interrupted)" in out
    assert "Session stopped by user" in out  # the server's final word, with totals
    assert "credits used" in out

    with RecordingStsServer() as server:
        server.on("stop_call", lambda srv, sid, data: [])  # never answers
        proc = spawn_cli(*sts_args(server, tmp_path, "--input", str(tone), "--plain"))
        server.wait_for("audio_data", count=20, timeout=20)
        proc.send_signal(signal.SIGINT)
        server.wait_for("stop_call", timeout=10)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        # 130, not 0: it left without waiting out the 2 s for session_ended.
        assert proc.returncode == ExitCode.INTERRUPTED


def test_max_duration_and_usage_errors(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 16000, 20.0)
    with RecordingStsServer() as server:
        res = run_cli(
            *sts_args(server, tmp_path, "--input", str(tone), "--json", "--max-duration", "1")
        )
    assert res.returncode == 0, res.stderr
    summary = json_lines(res.stdout)[-1]
    assert summary["reason"] == "max-duration"
    assert summary["duration_s"] == pytest.approx(1.0, abs=0.5)

    res = run_cli("sts", "--key", KEY, "--plain", "--json", "--input", str(tone))
    assert res.returncode == ExitCode.USAGE
    res = run_cli("sts", "--key", KEY, "--url", "ftp://x", "--input", str(tone))
    assert res.returncode == ExitCode.USAGE and "invalid URL" in res.stderr
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    res = run_cli("sts", "--key", KEY, "--url", "http://127.0.0.1:9", "--input", str(bad))
    assert res.returncode == ExitCode.AUDIO_FILE and "bad.wav" in res.stderr
    res = run_cli(
        "sts", "--key", KEY, "--functions", str(tmp_path / "none.py"), "--input", str(tone)
    )
    assert res.returncode == ExitCode.USAGE and "none.py" in res.stderr
