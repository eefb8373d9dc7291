"""Emulator parts in isolation (VAD, functions, faults, config, asset) and the CLI."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import pytest
import socketio
import soundfile
import websocket
from test_emulator_support import Int16, running, silence, tone
from typer.testing import CliRunner

from aivoco.audio.files import read_file
from aivoco.audio.levels import peak_dbfs
from aivoco.cli.app import app
from aivoco.emulator import EmulatorConfig, key_fingerprint
from aivoco.emulator.assets import demo_utterance_path
from aivoco.emulator.common import SessionLog
from aivoco.emulator.faults import STS_GARBAGE_KINDS, GarbagePlan
from aivoco.emulator.functions import build_arguments, parse_functions
from aivoco.emulator.records import SessionRecord
from aivoco.emulator.vad import EnergyVad, SpeechStarted, UtteranceEnded, VadEvent
from aivoco.errors import UsageError


def _feed(vad: EnergyVad, samples: Int16, chunk: int) -> list[VadEvent]:
    events: list[VadEvent] = []
    for i in range(0, samples.size, chunk):
        events.extend(vad.feed(samples[i : i + chunk]))
    return events


def _ends(events: Sequence[VadEvent]) -> list[UtteranceEnded]:
    return [e for e in events if isinstance(e, UtteranceEnded)]


@pytest.mark.parametrize("chunk", [160, 1024, 1600, 48000])
def test_vad_segments_independently_of_chunking(chunk: int) -> None:
    rate = 16000
    signal_ = np.concatenate(
        [
            silence(0.2, rate),
            tone(0.5, rate),
            silence(0.4, rate),  # a pause between words: bridged
            tone(0.3, rate),
            silence(0.8, rate),  # > 600 ms: the utterance ends
            tone(0.05, rate),  # a 50 ms blip: ignored
            silence(0.8, rate),
            tone(0.2, rate, amplitude=0.05),
            silence(0.7, rate),
        ]
    )
    events = _feed(EnergyVad(rate), signal_, chunk)
    ends = _ends(events)
    assert [round(e.duration_s, 2) for e in ends] == [1.2, 0.2]
    assert [round(e.start_s, 2) for e in ends] == [0.2, 3.05]
    assert [e.samples.size for e in ends] == [19200, 3200]
    assert round(ends[0].peak_dbfs) == -6 and round(ends[1].peak_dbfs) == -26
    assert sum(isinstance(e, SpeechStarted) for e in events) == 2


def test_vad_ignores_quiet_noise_and_caps_long_utterances() -> None:
    rate = 8000
    rng = np.random.default_rng(1)
    hiss = np.rint(rng.normal(0, 0.003 * 32768, rate * 2)).astype(np.int16)  # ~-50 dBFS
    assert _ends(EnergyVad(rate).feed(hiss)) == []
    vad = EnergyVad(rate, max_utterance_s=1.0)
    ends = _ends(vad.feed(np.concatenate([tone(2.5, rate), silence(1.0, rate)])))
    assert [round(e.duration_s, 2) for e in ends] == [1.0, 1.0, 0.5]


def test_demo_utterance_asset() -> None:
    path = demo_utterance_path()
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 2.0 <= info.duration <= 4.0
    chunk = read_file(path, 16000)
    assert peak_dbfs(chunk) == pytest.approx(-3.0, abs=0.2)
    padded = np.concatenate([chunk.mono_samples(), silence(1.0, 16000)])
    (end,) = _ends(EnergyVad(16000).feed(padded))  # one utterance, the whole line
    assert end.duration_s > info.duration - 0.2


def test_function_arguments_follow_the_schema() -> None:
    raw = [
        {
            "name": "f",
            "parameters": [
                {"name": "city", "type": "string", "required": True},
                {"name": "n", "type": "integer", "required": False},
                {"name": "x", "type": "number"},
                {"name": "b", "type": "boolean"},
                {"name": "a", "type": "array"},
                {"name": "o", "type": "object"},
                {"name": "note", "type": "string"},
            ],
        },
        {"name": "g", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
        {"description": "no name"},
        "junk",
    ]
    specs, problems = parse_functions(raw)
    assert [s.name for s in specs] == ["f", "g"]
    assert len(problems) == 3  # JSON-Schema style accepted but noted; two skipped
    args = build_arguments(specs[0])
    assert args == {
        "city": "Paris",
        "n": 3,
        "x": 21.5,
        "b": True,
        "a": ["example"],
        "o": {"key": "value"},
        "note": "example note",
    }
    assert build_arguments(specs[1]) == {"q": "example q"}
    assert parse_functions(None) == ([], [])


def _plan(every: int | None) -> GarbagePlan:
    return GarbagePlan(every, STS_GARBAGE_KINDS, SessionRecord("t#1", "sts"), SessionLog("t#1"))


def test_garbage_plan_rate_and_rotation() -> None:
    plan = _plan(3)
    kinds = [plan.take_slot() for _ in range(24)]
    assert [i + 1 for i, k in enumerate(kinds) if k] == list(range(3, 25, 3))
    assert [k for k in kinds if k] == list(STS_GARBAGE_KINDS) * 2
    assert _plan(None).take_slot() is None


def test_garbage_plan_send_replaces_stream_and_delays_control_messages() -> None:
    plan = _plan(2)
    wire: list[str] = []

    async def raw(message: str) -> None:
        wire.append(message)

    async def send_all() -> None:
        for name, stream in (("a1", True), ("c1", False), ("a2", True), ("a3", True)):
            await plan.send(raw, name, stream=stream, garbage=lambda kind: f"garbage:{kind}")

    asyncio.run(send_all())
    # Slot 2 is garbage: control c1 follows it in slot 3. Slot 4 is garbage too and
    # replaces stream a2, which is lost.
    assert wire == ["a1", "garbage:audio_bad_base64", "c1", "garbage:audio_odd_bytes", "a3"]
    assert plan.record.garbage_sent == 2 and plan.slots == 5
    assert plan.record.garbage_kinds == {"audio_bad_base64": 1, "audio_odd_bytes": 1}


def test_config_validation_and_keys() -> None:
    for bad in ({"garbage_every": 1}, {"credits": -1.0}, {"port": 70000}, {"drop_after_s": 0.0}):
        with pytest.raises(UsageError):
            EmulatorConfig(**bad)
    assert EmulatorConfig().key_accepted("anything") and not EmulatorConfig().key_accepted("")
    only = EmulatorConfig(accept_keys=("a",))
    assert only.key_accepted("a") and not only.key_accepted("b")
    fingerprint = key_fingerprint("my-secret-key")
    assert "my-secret-key" not in fingerprint and fingerprint.startswith("len=13 sha256:")


def test_cli_address_in_use_is_a_clear_connection_error() -> None:
    with running() as emu:
        result = CliRunner().invoke(app, ["emulate", "--port", str(emu.port)])
    assert result.exit_code == 5
    assert "already in use" in result.output


def test_cli_bad_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["emulate", "--port", "0", "--garbage-every", "1"])
    assert result.exit_code == 2
    assert "--garbage-every must be at least 2" in result.output


def test_cli_logs_sessions_without_the_key_and_stops_on_ctrl_c() -> None:
    key = "Sup3r-Secret-Key-value"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aivoco",
            "emulate",
            "--port",
            "0",
            "--accept-key",
            key,
            "--latency-ms",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("aivoco emulator listening on 127.0.0.1:"), first
        port = int(first.strip().rsplit(":", 1)[1])
        sio = socketio.Client(reconnection=False, handle_sigint=False)
        sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=5)
        sio.emit("start_call", {"auth_key": key, "system_message": "", "voice_choice": "x"})
        time.sleep(0.3)
        sio.emit("stop_call")
        time.sleep(0.2)
        sio.disconnect()
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(f"ws://127.0.0.1:{port}/ws/wrong/agent", timeout=5)
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/{key}/agent-7", timeout=5)
        ws.close()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert key not in out + err
    assert "stopped. Totals:" in out and "sts: 1 connection(s), 1 call(s)" in out
    assert f"auth ok: key {key_fingerprint(key)}" in err
    assert "call ended (stopped_by_user)" in err
    assert "refused before upgrade: HTTP 401" in err
    assert "agent 'agent-7'" in err and "closed (closed by client" in err
