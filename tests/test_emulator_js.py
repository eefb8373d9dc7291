"""The emulator against the official JavaScript clients: socket.io-client 4.x and `ws`.

The packages are installed at test time into tests/js/node_modules (declared in
tests/js/package.json; `npm install` needs the npm registry). Without node or npm the
tests skip, unless AIVOCO_REQUIRE_JS_TESTS is set, in which case they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_emulator_support import (
    KEY,
    audio_payload,
    media_messages,
    running,
    split,
    start_message,
    utterance,
)
from xlock import one_at_a_time

JS_DIR = Path(__file__).parent / "js"
NODE_TIMEOUT_S = 40


def _missing_tools() -> str | None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else None


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing_tools()
    if missing:
        if os.environ.get("AIVOCO_REQUIRE_JS_TESTS"):
            pytest.fail(f"AIVOCO_REQUIRE_JS_TESTS is set but {missing}")
        pytest.skip(f"JavaScript client tests need node and npm: {missing}")
    check = ["node", "-e", "require.resolve('socket.io-client'); require.resolve('ws')"]
    # Workers share tests/js: two installing there at once leave a half-written
    # node_modules to each other, so one installs while the others wait, then find it.
    with one_at_a_time(tmp_path_factory, "npm-install"):
        if subprocess.run(check, cwd=JS_DIR, capture_output=True, check=False).returncode:
            install = ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"]
            done = subprocess.run(
                install, cwd=JS_DIR, capture_output=True, text=True, timeout=300, check=False
            )
            assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
    return JS_DIR / "node_modules"


def _node(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(JS_DIR / script), *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output from {script} (exit {done.returncode}):\n{done.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0, f"{script} exit {done.returncode}: {summary}\n{done.stderr}"
    return summary


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_socketio_client_4(node_modules: Path, transport: str, tmp_path: Path) -> None:
    samples = utterance(0.5, 16000)
    spec = {
        "key": KEY,
        "chunk_ms": 64,
        "expect_audio_bytes": 24000,  # 0.5 s at 24 kHz, 2 bytes per sample
        "frames": [audio_payload(c) for c in split(samples, 1024)],
    }
    spec_path = tmp_path / "frames.json"
    spec_path.write_text(json.dumps(spec))
    with running() as emu:
        out = _node("sts_client.js", emu.sts_url, transport, str(spec_path))
        record = emu.sts_sessions[0]
        assert emu.wait_until(lambda: record.closed)
    assert out["clientVersion"].startswith("4.")
    assert out["transport"] == transport and out["error"] is None
    assert out["sessionReady"]["functions_loaded"] == 1
    assert out["functionCalled"]["arguments"] == {"zone": "example zone"}
    assert out["functionResult"] == {
        "function_name": "get_time",
        "result": {"time": "12:00", "list": [1, None, "x"]},
    }
    assert out["text"][0].startswith("I heard 0.5 s of audio")
    assert out["audioBytes"] == 24000
    spread_ms = out["audioTimes"][-1] - out["audioTimes"][0]
    assert 250 < spread_ms < 1200  # 400 ms expected: paced in real time
    assert out["sessionEnded"]["reason"] == "stopped_by_user"
    assert record.transport == transport and record.deviation_total == 0, record.deviations
    assert record.function_calls[0].outcome == "ok"


def test_ws_call_client(node_modules: Path, tmp_path: Path) -> None:
    start = start_message()
    spec = {
        "start": start,
        "frames": media_messages(utterance(0.5, 8000)),
    }
    with running(accept_keys=(KEY,), reject_agents=("nobody",)) as emu:
        spec["url"] = emu.call_url_for(KEY, "agent-1")
        spec["refused_urls"] = [
            emu.call_url_for("bad-key", "agent-1"),
            emu.call_url_for(KEY, "nobody"),
        ]
        path = tmp_path / "call.json"
        path.write_text(json.dumps(spec))
        out = _node("call_client.js", str(path))
        record = emu.call_sessions[0]
        assert emu.wait_until(lambda: record.closed)
    assert out["refusedStatus"] == [401, 404]
    assert out["error"] is None and out["opened"]
    assert out["mediaBytes"] == [160] * 25
    assert out["mediaChunks"] == list(range(1, 26))
    assert 300 < out["mediaTimes"][-1] - out["mediaTimes"][0] < 1200
    assert out["marks"] == ["reply-1"] and out["closeCode"] == 1000
    assert record.marks[0].answered_at is not None and record.stop_received
    assert record.deviation_total == 0, record.deviations
