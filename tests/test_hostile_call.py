"""`aivoco call` against hostile WebSocket peers: fuzzing, oversized and deeply nested
frames, a silent peer, drops with and without reconnecting, the close handshake.

Each CLI run is the real command in a subprocess; each must end with its documented exit
code, no traceback and valid files.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _hostile import Proxy, check_run, deep_json, fuzz_frame
from clirun import file_args, json_lines, read_wav, run_cli, write_tone
from servers import (
    Abort,
    Action,
    CallConnection,
    RecordingCallServer,
    SendBinary,
    SendText,
    Sleep,
    media_actions,
)
from tones import sine_chunk

from aivoco.audio.chunk import AudioChunk
from aivoco.cli.errors import ExitCode
from aivoco.errors import ConnectionFailedError, ProtocolError
from aivoco.protocols.call_driver import MAX_MESSAGE_BYTES, CallDriver
from aivoco.wire import events as ev

KEY = "live-hostile-4c1f9e"
AGENT = "agent-7"


def call_args(url: str, tmp_path: Path, seconds: float = 0.5, *extra: str) -> list[str]:
    tone = write_tone(tmp_path / "in.wav", 300, 8000, seconds, amplitude=0.3)
    return [
        "call", "--agent", AGENT, "--key", KEY, "--url", f"{url}/ws", "--input", str(tone),
        "--output", str(tmp_path / "agent.wav"), "--idle-timeout", "0.8",
        "--connect-timeout", "5", "--json", *file_args(tmp_path), *extra,
    ]  # fmt: skip


def on_start(*actions: Action) -> Any:
    def hook(srv: RecordingCallServer, conn: CallConnection, msg: dict[str, Any]) -> list[Action]:
        return list(actions)

    return hook


def summary(stdout: str) -> dict[str, Any]:
    record = json_lines(stdout)[-1]
    assert record["type"] == "summary"
    return record


def test_a_fuzzing_flood_is_survived_and_counted(tmp_path: Path) -> None:
    r = random.Random(20)
    flood: list[Action] = []
    for i in range(500):
        flood.append(SendText(fuzz_frame(r)))
        if i % 25 == 0:
            flood.append(SendBinary(r.randbytes(r.randrange(1, 64))))
        if i % 5 == 0:  # valid audio now and then: the 20-in-a-row rule never fires
            flood.extend(media_actions(sine_chunk(300, 8000, 0.02)))
    with RecordingCallServer() as server:
        server.on("start", on_start(*flood))
        res = run_cli(*call_args(server.url, tmp_path))
    assert res.returncode == 0, res.stderr
    records = check_run(res.stderr, tmp_path, KEY)
    result = summary(res.stdout)
    assert result["protocol_errors"] > 100
    assert result["audio_s_received"] == pytest.approx(2.0, abs=0.05)  # 100 x 20 ms
    assert any("nests deeper than 32 levels" in r.get("message", "") for r in records)


def test_an_oversized_message_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with RecordingCallServer() as server:
        big = json.dumps({"event": "mark", "mark": {"name": "x" * (MAX_MESSAGE_BYTES + 1)}})
        server.on("start", on_start(Sleep(0.3), SendText(big)))
        res = run_cli(*call_args(server.url, tmp_path, 3.0))
        conn = server.wait_for_close()
    assert res.returncode == ExitCode.PROTOCOL, res.stderr
    assert f"the limit is {MAX_MESSAGE_BYTES}" in res.stderr
    assert conn.close_code == 1009  # "message too big", and a clean close
    check_run(res.stderr, tmp_path, KEY)


def test_deeply_nested_frames_are_errors_and_twenty_in_a_row_are_fatal(tmp_path: Path) -> None:
    with RecordingCallServer() as server:
        garbage = [SendText(deep_json(d)) for d in (33, 600, 5000, 100_000)] * 6
        server.on("start", on_start(*garbage))
        res = run_cli(*call_args(server.url, tmp_path, 3.0))
    assert res.returncode == ExitCode.PROTOCOL, res.stderr
    assert "20 malformed messages in a row" in res.stderr
    check_run(res.stderr, tmp_path, KEY)


@pytest.mark.parametrize("ender", ["agent", "garbage"])
def test_the_close_handshake_is_completed_whoever_ends_the_call(ender: str, tmp_path: Path) -> None:
    end = (
        [SendText(json.dumps({"event": "stop"}))]
        if ender == "agent"
        else [SendText("garbage")] * 20
    )
    with RecordingCallServer() as server:
        server.on("start", on_start(Sleep(0.3), *end))
        res = run_cli(*call_args(server.url, tmp_path, 3.0))
        conn = server.wait_for_close()
    assert res.returncode == (0 if ender == "agent" else ExitCode.PROTOCOL), res.stderr
    assert conn.close_code == 1000  # our close frame, not a dropped TCP connection (1006)


def test_a_drop_mid_call_reconnects_with_a_new_stream(tmp_path: Path) -> None:
    with RecordingCallServer() as server:

        def start(srv: RecordingCallServer, conn: CallConnection, msg: Any) -> list[Action]:
            media = media_actions(sine_chunk(400, 8000, 0.3), 20)
            return [*media, Sleep(0.8), Abort()] if conn.index == 0 else media

        server.on("start", start)
        res = run_cli(*call_args(server.url, tmp_path, 3.0))
        starts = server.events("start")
    assert res.returncode == 0, res.stderr
    records = check_run(res.stderr, tmp_path, KEY)
    assert len(starts) == 2 and starts[0]["streamSid"] != starts[1]["streamSid"]
    result = summary(res.stdout)
    assert result["reconnects"] == 1
    assert result["audio_s_received"] == pytest.approx(0.6, abs=0.02)  # both streams' audio
    kinds = [r["type"] for r in records]
    assert kinds.index("reconnecting") < kinds.index("reconnected")
    rec = read_wav(tmp_path / "rec.wav")
    assert rec.frames / rec.sample_rate_hz == pytest.approx(result["duration_s"], abs=0.3)


def test_an_agent_refused_after_a_drop_ends_without_a_retry_loop(tmp_path: Path) -> None:
    with RecordingCallServer() as server:

        def start(srv: RecordingCallServer, conn: CallConnection, msg: Any) -> list[Action]:
            srv.refuse_agents[AGENT] = 404  # from now on
            # Audio first: a close before the server said anything is itself a refusal.
            return [*media_actions(sine_chunk(400, 8000, 0.1)), Sleep(0.5), Abort()]

        server.on("start", start)
        res = run_cli(*call_args(server.url, tmp_path, 3.0))
        connections = len(server.connections)
    assert res.returncode == ExitCode.AUTH, res.stderr
    assert "HTTP 404" in res.stderr and connections == 2
    check_run(res.stderr, tmp_path, KEY)


# -- a silent peer, in-process with short watchdog times ------------------------------------
def drain_until(q: ev.EventQueue, kind: type, timeout_s: float) -> ev.Event | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = q.get(timeout=0.05)
        if item is not None and isinstance(item.event, kind):
            return item.event
    return None


def test_a_silent_peer_is_dropped_and_a_quiet_one_is_kept() -> None:
    with RecordingCallServer() as server, Proxy(server.port) as proxy:
        quiet = CallDriver(f"{proxy.url('ws')}/ws", KEY, AGENT, ping_interval_s=0.2,
                           ping_timeout_s=0.3)  # fmt: skip
        q = ev.EventQueue()
        quiet.open(q, timeout_s=5)
        try:
            # Nothing but pongs for 2 s (4 x the watchdog's limit): still connected.
            assert drain_until(q, ev.Disconnected, 2.0) is None
            proxy.freeze()
            frozen_at = time.monotonic()
            lost = drain_until(q, ev.Disconnected, 3.0)
            took_s = time.monotonic() - frozen_at
        finally:
            quiet.close()
    assert isinstance(lost, ev.Disconnected) and isinstance(lost.error, ConnectionFailedError)
    assert "nothing arrived for" in lost.detail and "not even a pong" in lost.detail
    # interval + timeout (0.5 s) after the last pong, which came before the freeze; the
    # margin is for a loaded machine.
    assert took_s < 0.5 + 1.5


def test_a_peer_that_stops_reading_never_blocks_the_sender() -> None:
    """The uplink runs on the process's shared clock: a peer that stops reading must
    cost its own audio (dropped, counted), never a blocked caller (every call's clock
    would stop with it)."""
    frame = AudioChunk.silence(160, 8000)
    with RecordingCallServer() as server, Proxy(server.port) as proxy:
        driver = CallDriver(f"{proxy.url('ws')}/ws", KEY, AGENT)
        driver.open(ev.EventQueue(), timeout_s=5)
        server.wait_for("start")
        # A small send buffer (no autotuning): the stall shows after ~100 kB, not 10 MB.
        driver._ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        proxy.stall()
        sent = threading.Event()

        def send_all() -> None:
            for _ in range(4000):  # ~1.2 MB of media messages: more than the buffers hold
                driver.send_audio(frame)
            sent.set()

        threading.Thread(target=send_all, daemon=True).start()
        try:
            assert sent.wait(10), "send_audio blocked on a peer that does not read"
            assert driver.net.uplink_dropped > 0
        finally:
            t0 = time.monotonic()
            driver.close()
            close_s = time.monotonic() - t0
    assert close_s < 5.0  # the close frame could not go out either: bounded, not hung


def test_the_reader_reports_every_way_it_can_end() -> None:
    with RecordingCallServer() as server:
        driver = CallDriver(f"{server.url}/ws", KEY, AGENT)
        q = ev.EventQueue()
        driver.open(q, timeout_s=5)
        server.wait_for("start")
        try:
            driver._message = None  # type: ignore[assignment,method-assign] # a bug of ours
            server.send_text("{}")
            lost = drain_until(q, ev.Disconnected, 3.0)
        finally:
            driver.close()
    assert isinstance(lost, ev.Disconnected) and "the reader failed (TypeError)" in lost.detail
    assert not isinstance(lost.error, ProtocolError)


# -- the sinks (issue 9 neutralises and redacts every one; these check the whole path) ------
def test_escapes_surrogates_and_an_echoed_key_never_reach_a_sink(tmp_path: Path) -> None:
    name = f"\x1b[31m{KEY}\x07\r"
    frames = [
        SendText(json.dumps({"event": "mark", "mark": {"name": name}})),
        SendText('{"event": "dtmf\\ud800", "x": 1}'),
    ]
    with RecordingCallServer() as server:
        server.on("start", on_start(*frames))
        plain = [a for a in call_args(server.url, tmp_path) if a != "--json"]
        res = run_cli(*plain, "--plain")
    assert res.returncode == 0, res.stderr
    for sink in (res.stdout, res.stderr, (tmp_path / "t.jsonl").read_text(encoding="utf-8")):
        assert KEY not in sink and "\x1b" not in sink
