"""Smoke tests of the recording servers with independent clients (python-socketio's
plain `Client`, `AsyncClient`, and websocket-client), so the servers are known good."""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import socketio
import websocket
from servers import (
    Abort,
    CallConnection,
    Emit,
    RecordingCallServer,
    RecordingStsServer,
    SendText,
    Sleep,
    call_server_fixture,  # noqa: F401  (the `call_server` fixture)
    sts_server_fixture,  # noqa: F401  (the `sts_server` fixture)
)

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.g711 import ulaw_decode, ulaw_encode

pytestmark = pytest.mark.timeout(30)

START = {"auth_key": "key", "system_message": "hi", "voice_choice": "female"}


class SioClient:
    """A sync python-socketio client whose received events land in a queue."""

    def __init__(self, url: str, transport: str = "websocket") -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False, handle_sigint=False)
        self.client.on("*", self._on_any)
        self.client.on("disconnect", lambda *args: self.events.put(("disconnect", args)))
        self.client.connect(url, transports=[transport], wait_timeout=5)

    def _on_any(self, event: str, *args: Any) -> None:
        self.events.put((event, args[0] if args else None))

    def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.shutdown()


@pytest.fixture
def make_client() -> Iterator[Any]:
    clients: list[SioClient] = []

    def make(url: str, transport: str = "websocket") -> SioClient:
        clients.append(SioClient(url, transport))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


# -- Speech-to-Speech server ---------------------------------------------------------
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_sts_default_flow(make_client: Any, transport: str) -> None:
    with RecordingStsServer() as server:
        client = make_client(server.url, transport)
        functions = [{"name": "f", "description": "", "parameters": []}]
        client.client.emit("start_call", {**START, "custom_functions": functions})
        assert client.next() == ("auth_success", {"credits": 100.0})
        event, ready = client.next()
        assert event == "session_ready"
        assert ready["functions_loaded"] == 1 and ready["cost_per_minute"] == 1.0
        client.client.emit("audio_data", {"audio_data": "AAAA", "has_audio": False})
        client.client.emit("stop_call")
        event, ended = client.next()
        assert event == "session_ended"
        assert ended["reason"] == "stopped_by_user"
        assert "stopped by user" in ended["message"].lower()
        assert ended["remaining_credits"] == pytest.approx(100 - ended["total_credits_used"])
        assert client.next()[0] == "disconnect"
        server.wait_for("disconnect")
        names = [r.event for r in server.events()]
        assert names == ["connect", "start_call", "audio_data", "stop_call", "disconnect"]
        assert server.events("connect")[0].data["transport"] == transport
        assert server.wait_for("stop_call").data is None
        times = [r.time for r in server.events()]
        assert times == sorted(times)
        assert server.errors == []


def test_sts_fixture_and_auth_failed(sts_server: RecordingStsServer, make_client: Any) -> None:
    sts_server.valid_keys = frozenset({"good"})
    client = make_client(sts_server.url)
    client.client.emit("start_call", {**START, "auth_key": "bad"})
    assert client.next() == ("auth_failed", {"message": "Invalid API key", "credits": 0})
    client.client.emit("start_call", {**START, "auth_key": ""})
    assert client.next()[0] == "auth_failed"


def test_sts_hooks_emit_and_sleep(make_client: Any) -> None:
    with RecordingStsServer() as server:

        def on_audio(srv: RecordingStsServer, sid: str, data: Any) -> list[Any]:
            return [Sleep(0.05), Emit("text_response", {"text": f"got {data['n']}"})]

        server.on("audio_data", on_audio)
        server.on("start_call", lambda srv, sid, data: [Emit("error", {"type": "x"})])
        client = make_client(server.url)
        client.client.emit("start_call", START)
        assert client.next() == ("error", {"type": "x"})
        client.client.emit("audio_data", {"n": 1})
        assert client.next() == ("text_response", {"text": "got 1"})
        server.emit("custom", {"a": 1})  # from the test thread
        assert client.next() == ("custom", {"a": 1})
        server.emit("no_payload")
        assert client.next() == ("no_payload", None)
        assert server.wait_for("audio_data").data == {"n": 1}


def test_sts_wait_for_times_out_with_context(sts_server: RecordingStsServer) -> None:
    with pytest.raises(TimeoutError, match=r"'start_call'.*last events"):
        sts_server.wait_for("start_call", timeout=0.1)


@pytest.mark.parametrize("abrupt", [False, True])
def test_sts_disconnect(make_client: Any, abrupt: bool) -> None:
    with RecordingStsServer() as server:
        client = make_client(server.url)
        server.wait_for("connect")
        server.disconnect(abrupt=abrupt)
        event, args = client.next()
        assert event == "disconnect"
        # A graceful drop is a server disconnect; an abrupt one looks like a lost link.
        assert ("server disconnect" in args) is not abrupt
        server.wait_for("disconnect")
        assert server.connected == []


def test_sts_burst_arrives_in_order() -> None:
    """The server emits a burst in order (checked with the asyncio client, which keeps
    arrival order when handlers enqueue synchronously, docs/protocols.md#pitfall-engineio-order)."""
    with RecordingStsServer() as server:
        got: list[int] = []

        async def main() -> None:
            client = socketio.AsyncClient(reconnection=False, handle_sigint=False)
            client.on("n", lambda data: got.append(data["i"]))
            await client.connect(server.url, transports=["websocket"], wait_timeout=5)
            burst = [Emit("n", {"i": i}) for i in range(200)]
            await asyncio.to_thread(lambda: server.run(*burst, timeout=20))
            for _ in range(1000):  # up to ~10 s on a slow machine
                if len(got) == 200:
                    break
                await asyncio.sleep(0.01)
            await client.disconnect()

        asyncio.run(main())
        assert got == list(range(200))


def test_sts_stop_with_client_connected(make_client: Any) -> None:
    server = RecordingStsServer()
    client = make_client(server.start())
    server.wait_for("connect")
    server.stop()
    assert client.next()[0] == "disconnect"
    server.stop()  # idempotent


# -- agent-call server ---------------------------------------------------------------
def connect(server: RecordingCallServer, key: str = "key", agent: str = "agent") -> Any:
    return websocket.create_connection(server.url_for(key, agent), timeout=5)


def finish(ws: Any) -> None:
    # websocket-client quirk: once recv() has answered a server's close frame, close()
    # is a no-op that leaves the socket open (a ResourceWarning); shutdown() closes it.
    ws.close()
    ws.shutdown()


def test_call_records_frames_and_path(call_server: RecordingCallServer) -> None:
    ws = connect(call_server, "k/ey %x?#", "agé nt")
    ws.send("")
    ws.send(json.dumps({"event": "start", "streamSid": "MZ1"}))
    ws.send_binary(b"\x00\x01")
    ws.send("not json")
    finish(ws)
    conn = call_server.wait_for_close()
    assert (conn.key, conn.agent, conn.status) == ("k/ey %x?#", "agé nt", 101)
    assert conn.raw_path.startswith("/ws/k%2Fey%20%25x%3F%23/")
    assert conn.stream_sid == "MZ1"
    assert conn.close_code == 1000
    kinds = [(f.kind, f.data) for f in call_server.frames]
    assert kinds == [
        ("text", ""),
        ("text", '{"event": "start", "streamSid": "MZ1"}'),
        ("binary", b"\x00\x01"),
        ("text", "not json"),
    ]
    assert call_server.messages() == [{"event": "start", "streamSid": "MZ1"}]
    assert call_server.wait_for("start")["streamSid"] == "MZ1"


def test_call_sends_media_and_control(call_server: RecordingCallServer) -> None:
    ws = connect(call_server)
    ws.send(json.dumps({"event": "start", "streamSid": "MZ9"}))
    call_server.wait_for("start")
    tone = (np.sin(np.arange(800) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    call_server.send_media(AudioChunk(tone, 8000), frame_ms=20)
    decoded = []
    for n in range(1, 6):
        message = json.loads(ws.recv())
        assert message["event"] == "media" and message["streamSid"] == "MZ9"
        assert message["media"]["chunk"] == n
        assert message["media"]["timestamp"] == (n - 1) * 20
        decoded.append(base64.b64decode(message["media"]["payload"]))
    assert b"".join(decoded) == ulaw_encode(tone).tobytes()
    assert np.abs(ulaw_decode(b"".join(decoded)).astype(int) - tone).max() < 300
    call_server.send_mark("m1")
    call_server.send_clear()
    call_server.send_stop()
    call_server.send_binary(b"\xff")
    assert json.loads(ws.recv()) == {"event": "mark", "mark": {"name": "m1"}}
    assert json.loads(ws.recv()) == {"event": "clear"}
    assert json.loads(ws.recv()) == {"event": "stop"}
    assert ws.recv() == b"\xff"
    call_server.close(4001)
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 4001
    finish(ws)


def test_call_hooks_answer_in_order() -> None:
    def on_start(srv: RecordingCallServer, conn: CallConnection, msg: dict[str, Any]) -> Any:
        return [SendText("one"), Sleep(0.05), SendText("two")]

    with RecordingCallServer(hooks={"start": on_start}) as server:
        ws = connect(server)
        ws.send(json.dumps({"event": "start"}))
        assert [ws.recv(), ws.recv()] == ["one", "two"]
        finish(ws)


@pytest.mark.parametrize(
    ("key", "agent", "status"), [("bad", "a", 401), ("banned", "a", 403), ("k", "nope", 404)]
)
def test_call_refuses_upgrade(key: str, agent: str, status: int) -> None:
    refuse_keys = {"bad": 401, "banned": 403}
    with RecordingCallServer(refuse_keys=refuse_keys, refuse_agents={"nope": 404}) as server:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            connect(server, key, agent)
        assert info.value.status_code == status
        assert server.connections[0].status == status
        assert server.frames == []


def test_call_close_after_accept() -> None:
    with RecordingCallServer(close_after_accept=4403) as server:
        ws = connect(server)
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 4403
        finish(ws)


def test_call_abort_and_stop(call_server: RecordingCallServer) -> None:
    ws = connect(call_server)
    call_server.wait_for_connection()
    call_server.run(Abort())
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.recv()
    finish(ws)
    call_server.wait_for_close()
    # A second client still connected when the server stops gets a 1001 close.
    ws2 = connect(call_server)
    call_server.wait_for_frames(0)
    stopper = threading.Thread(target=call_server.stop)
    stopper.start()
    opcode, data = ws2.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 1001
    finish(ws2)
    stopper.join(10)
    assert call_server.errors == []


def test_call_unknown_path_is_404(call_server: RecordingCallServer) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(call_server.url + "/ws/only-one", timeout=5)
    assert info.value.status_code == 404
