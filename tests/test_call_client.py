"""`aivoco call` end to end: the real command against a real WebSocket server on loopback."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clirun import file_args, json_lines, read_wav, run_cli, write_tone
from servers import (
    Abort,
    Action,
    CallConnection,
    RecordingCallServer,
    SendText,
    Sleep,
    media_actions,
)
from tones import dominant_freq, level_dbfs, sine_chunk, sine_dbfs, steady

from aivoco.audio.g711 import ulaw_decode
from aivoco.cli.errors import ExitCode

KEY = "live/key?7 9f%x"  # needs escaping in a URL path
AGENT = "agent one/2"


def call_args(server: RecordingCallServer, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "call",
        "--agent",
        AGENT,
        "--key",
        KEY,
        "--url",
        f"{server.url}/ws",
        "--output",
        str(tmp_path / "agent.wav"),
        "--idle-timeout",
        "0.6",
        "--connect-timeout",
        "5",
        *extra,
    ]


def on_start(*actions: Action) -> Any:
    def hook(srv: RecordingCallServer, conn: CallConnection, msg: dict[str, Any]) -> list[Action]:
        return list(actions)

    return hook


def text_frames(server: RecordingCallServer) -> list[tuple[float, Any]]:
    out = []
    for f in server.frames:
        if f.kind == "text" and f.data:
            out.append((f.time, json.loads(f.data)))
    return out


def test_handshake_numbering_and_a_1k_tone_from_48k_arrives_as_mulaw(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "tone.wav", 1000, 48000, 1.0, amplitude=0.5, channels=2)
    with RecordingCallServer() as server:
        res = run_cli(*call_args(server, tmp_path, "--input", str(tone), "--plain"))
        assert res.returncode == 0, res.stderr
        conn = server.wait_for_close()
    assert (conn.key, conn.agent) == (KEY, AGENT)  # escaped by the client, unescaped once
    assert conn.close_code == 1000
    frames = server.frames
    assert frames[0].kind == "text" and frames[0].data == ""  # the empty handshake first
    msgs = [m for _, m in text_frames(server)]
    start, media, stop = msgs[0], msgs[1:-1], msgs[-1]
    sid = start["start"]["streamSid"]
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": start["start"]["accountSid"],
            "streamSid": sid,
            "callSid": start["start"]["callSid"],
            "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": sid,
    }
    assert re.fullmatch(r"AC[0-9a-f]{32}", start["start"]["accountSid"])
    assert re.fullmatch(r"MZ[0-9a-f]{32}", sid)
    assert re.fullmatch(r"CA[0-9a-f]{32}", start["start"]["callSid"])
    assert all(m["event"] == "media" for m in media)
    assert [m["media"]["chunk"] for m in media] == list(range(1, len(media) + 1))
    assert [m["sequenceNumber"] for m in media] == list(range(2, len(media) + 2))
    assert [m["media"]["timestamp"] for m in media] == [str(20 * i) for i in range(len(media))]
    assert {m["media"]["track"] for m in media} == {"inbound"}
    payloads = [base64.b64decode(m["media"]["payload"]) for m in media]
    assert {len(p) for p in payloads} == {160}  # 20 ms of 8 kHz mu-law
    assert stop["event"] == "stop"
    assert stop["sequenceNumber"] == len(media) + 2
    assert stop["streamSid"] == sid
    assert stop["stop"] == {
        "accountSid": start["start"]["accountSid"],
        "callSid": start["start"]["callSid"],
    }
    pcm = ulaw_decode(b"".join(payloads))
    part = steady(pcm)
    assert dominant_freq(part, 8000) == pytest.approx(1000, abs=5)
    assert level_dbfs(part) == pytest.approx(sine_dbfs(0.5), abs=0.5)
    times = [t for t, m in text_frames(server) if m["event"] == "media"]
    assert times[-1] - times[0] == pytest.approx((len(times) - 1) * 0.02, rel=0.1)
    assert KEY not in res.stdout + res.stderr
    assert "agent one/2" in res.stdout  # the agent is shown, the key is not


def test_mark_is_answered_once_the_audio_before_it_has_played(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 8000, 0.2, amplitude=0.0)
    reply = sine_chunk(440, 8000, 1.0, amplitude=0.4)
    with RecordingCallServer() as server:
        server.on(
            "start",
            on_start(
                *media_actions(reply, 20),
                SendText(json.dumps({"event": "mark", "mark": {"name": "reply-1"}})),
            ),
        )
        res = run_cli(*call_args(server, tmp_path, "--input", str(quiet), "--json"))
        assert res.returncode == 0, res.stderr
        sent_mark_at = server.connections[0].opened_at
        msgs = text_frames(server)
    marks = [(t, m) for t, m in msgs if m["event"] == "mark"]
    assert len(marks) == 1
    t_mark, mark = marks[0]
    assert mark["mark"] == {"name": "reply-1"}
    start = msgs[0][1]
    assert mark["streamSid"] == start["streamSid"]
    seqs = [m["sequenceNumber"] for _, m in msgs[1:]]
    assert seqs == list(range(2, len(seqs) + 2))  # the mark continues the numbering
    # 1 s of audio went out in a burst at connect; the answer waits for its playout.
    assert t_mark - sent_mark_at >= 0.95
    out = read_wav(tmp_path / "agent.wav")
    assert dominant_freq(steady(out.samples[:, 0]), 8000) == pytest.approx(440, abs=3)
    records = json_lines(res.stdout)
    assert [r["name"] for r in records if r["type"] == "mark_played"] == ["reply-1"]


def test_clear_flushes_queued_playback_and_releases_marks(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 8000, 0.2, amplitude=0.0)
    reply = sine_chunk(440, 8000, 4.0, amplitude=0.4)
    mark = json.dumps({"event": "mark", "mark": {"name": "end-of-reply"}})
    with RecordingCallServer() as server:
        server.on(
            "start",
            on_start(
                *media_actions(reply, 20),
                SendText(mark),
                Sleep(0.8),
                SendText(json.dumps({"event": "clear"})),
            ),
        )
        res = run_cli(*call_args(server, tmp_path, "--input", str(quiet), "--json"))
        assert res.returncode == 0, res.stderr
        opened = server.connections[0].opened_at
        msgs = text_frames(server)
    out = read_wav(tmp_path / "agent.wav")
    played_s = np.count_nonzero(np.abs(out.samples[:, 0]) > 1000) / 8000
    assert 0.4 < played_s < 1.2  # about 0.8 s played, not 4 s
    (t_mark,) = [t for t, m in msgs if m["event"] == "mark"]
    assert t_mark - opened < 3.0  # released by the clear at ~0.8 s, not after 4 s
    records = json_lines(res.stdout)
    clears = [r for r in records if r["type"] == "clear"]
    assert len(clears) == 1 and clears[0]["cleared_ms"] > 2500
    assert records[-1]["playback_clears"] == 1


def test_agent_stop_ends_the_call_cleanly(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 8000, 10.0)
    with RecordingCallServer() as server:
        server.on("start", on_start(Sleep(0.5), SendText(json.dumps({"event": "stop"}))))
        res = run_cli(*call_args(server, tmp_path, "--input", str(tone), "--json"))
    assert res.returncode == 0, res.stderr
    summary = json_lines(res.stdout)[-1]
    assert summary["reason"] == "agent-hangup"
    assert summary["duration_s"] < 3


@pytest.mark.parametrize(
    ("refusal", "text"),
    [
        ({"refuse_keys": {KEY: 401}}, "refused the API key (HTTP 401)"),
        ({"refuse_keys": {KEY: 403}}, "refused the API key (HTTP 403)"),
        (
            {"refuse_agents": {AGENT: 404}},
            "unknown agent or key, or wrong URL (HTTP 404 for /ws/***/",
        ),
        ({"close_after_accept": 4001}, "closed the call right after it opened"),
    ],
)
def test_refused_credentials_exit_with_the_auth_code(
    tmp_path: Path, refusal: dict[str, Any], text: str
) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 8000, 2.0)
    with RecordingCallServer(**refusal) as server:
        res = run_cli(*call_args(server, tmp_path, "--input", str(tone), "--plain"))
    assert res.returncode == ExitCode.AUTH, res.stderr
    assert text in res.stderr
    assert KEY not in res.stderr and "live%2Fkey" not in res.stderr


def test_a_drop_mid_call_reports_and_keeps_the_files(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "t.wav", 500, 8000, 10.0)
    with RecordingCallServer() as server:
        server.on(
            "start", on_start(*media_actions(sine_chunk(300, 8000, 0.5), 20), Sleep(1.5), Abort())
        )
        res = run_cli(
            *call_args(server, tmp_path, "--input", str(tone), "--plain", "--no-reconnect"),
            *file_args(tmp_path),
            "--log-file",
            str(tmp_path / "log.txt"),
        )
    assert res.returncode == ExitCode.CONNECTION, res.stderr
    assert "was lost" in res.stderr
    rec = read_wav(tmp_path / "rec.wav")
    assert rec.channels == 2 and rec.frames / 8000 == pytest.approx(1.5, abs=0.5)
    assert dominant_freq(steady(rec.samples[:, 0]), 8000) == pytest.approx(500, abs=5)
    types = [r["type"] for r in json_lines((tmp_path / "t.jsonl").read_text())]
    assert "error" in types and types[-1] == "summary"
    log = (tmp_path / "log.txt").read_text()
    assert "send media" in log or "media" in log
    for secret in (KEY, "live%2Fkey"):
        assert secret not in log + res.stdout + res.stderr


def test_malformed_frames_are_survived_and_endless_garbage_is_fatal(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 8000, 0.2, amplitude=0.0)
    bad = [
        SendText("not json"),
        SendText("[1, 2]"),
        SendText(json.dumps({"event": "media", "media": {"payload": "@@@"}})),
        SendText(json.dumps({"event": "mark", "mark": {}})),
        SendText(json.dumps({"event": "dtmf", "dtmf": {"digit": "5"}})),
        *media_actions(sine_chunk(300, 8000, 0.2), 20),
    ]
    with RecordingCallServer() as server:
        server.on("start", on_start(*bad))
        res = run_cli(*call_args(server, tmp_path, "--input", str(quiet), "--json"))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # logged to --log-file only, never across the terminal
    summary = json_lines(res.stdout)[-1]
    assert summary["protocol_errors"] == 4
    assert summary["audio_s_received"] == pytest.approx(0.2, abs=0.01)

    with RecordingCallServer() as server:
        server.on("start", on_start(*[SendText("garbage") for _ in range(25)]))
        res = run_cli(*call_args(server, tmp_path, "--input", str(quiet), "--plain"))
    assert res.returncode == ExitCode.PROTOCOL, res.stderr


def test_an_unresponsive_server_times_out(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 1000, 8000, 0.2, amplitude=0.0)
    with socket.socket() as listener:  # accepts TCP, never answers the upgrade
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        t0 = time.monotonic()
        res = run_cli(
            "call",
            "--agent",
            "a",
            "--key",
            KEY,
            "--url",
            f"ws://127.0.0.1:{port}/ws",
            "--input",
            str(quiet),
            "--output",
            str(tmp_path / "o.wav"),
            "--connect-timeout",
            "1",
        )
        elapsed = time.monotonic() - t0
    assert res.returncode == ExitCode.CONNECTION
    assert "no answer" in res.stderr and elapsed < 8
