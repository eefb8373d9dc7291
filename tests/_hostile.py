"""Hostile peers for the client tests: a TCP proxy that drops or silences a connection,
a Socket.IO server that can send raw (undecodable) packets, and fuzzed traffic.

- `Proxy`: a loopback TCP proxy in front of a real server. `freeze()` keeps the open
  connections' TCP up but forwards nothing more either way (a peer that went silent:
  no data, no pings, no pongs); `cut()` aborts them (a drop). New connections pass.
- `HostileStsServer`: `RecordingStsServer` whose `SendText` action sends its text as a
  raw engine.io message, i.e. a Socket.IO packet of our choosing (`2[...]` is an event),
  and whose engine.io pings can be made frequent (`ping_s`).
- `fuzz_value()` / `fuzz_frame()`: hostile JSON-like values and WebSocket frames.
- `check_run()`: what every hostile test asks of a finished run: no traceback, a
  transcript of valid JSON lines ending with the summary, a readable recording.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from pathlib import Path
from typing import Any

from _servers_loop import Action, SendText
from _servers_sts import RecordingStsServer
from aiohttp import web
from clirun import json_lines, read_wav


class Proxy:
    """TCP proxy 127.0.0.1:port -> 127.0.0.1:target_port on its own loop thread."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._frozen: set[asyncio.StreamWriter] = set()  # writers that no longer forward
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> Proxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        """Silence every open connection: TCP stays up, nothing more gets through."""
        self._call(self._freeze())

    def cut(self) -> None:
        """Abort every open connection (no close frame, no FIN: a reset)."""
        self._call(self._cut())

    def stall(self) -> None:
        """Stop reading what the clients send (the server's side still flows): a peer
        that does not read, whose TCP window fills up."""
        self._call(self._stall())

    async def _stall(self) -> None:
        for client, _upstream in self._pairs:
            transport = client.transport
            assert isinstance(transport, asyncio.ReadTransport)  # a TCP transport: both
            transport.pause_reading()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    async def _freeze(self) -> None:
        for client, upstream in self._pairs:
            self._frozen.update((client, upstream))

    async def _cut(self) -> None:
        for client, upstream in self._pairs:
            for writer in (client, upstream):
                writer.transport.abort()
        self._pairs.clear()

    async def _close(self) -> None:
        await self._cut()  # every pipe ends on its aborted connection
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.wait(others, timeout=2) if others else None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._pairs.append((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if writer in self._frozen:
                    continue  # swallowed: the peer is silent from now on
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # one side went away: the other is closed below
        finally:
            if writer not in self._frozen:
                writer.close()


class HostileStsServer(RecordingStsServer):
    """`SendText(text)` sends `text` as a raw Socket.IO packet; pings every `ping_s`."""

    def __init__(self, *, ping_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ping_s = ping_s

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        if self.ping_s is not None:  # read by engine.io when it opens a session
            self.sio.eio.ping_interval = self.ping_s
            self.sio.eio.ping_timeout = self.ping_s
        return app

    def send_raw(self, *packets: str) -> None:
        self.run(*[SendText(p) for p in packets], timeout=30)

    async def _execute(self, action: Action, target: Any) -> None:
        if not isinstance(action, SendText):
            await super()._execute(action, target)
            return
        for sid in [target] if target is not None else list(self.connected):
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            await self.sio.eio.send(eio_sid, action.text)


# -- fuzzed traffic --------------------------------------------------------------------------
NASTY = ["\x1b[2J\x1b]0;pwned\x07", "\x00\r", "\u202e", "1e999", "9" * 400, "NaN", ""]
FIELDS = ["audio_data", "text", "message", "credits", "cost_per_minute", "reason",
          "function_name", "call_id", "arguments", "result", "error", "type",
          "total_credits_used", "remaining_credits", "credits_available"]  # fmt: skip


def fuzz_value(r: random.Random, depth: int = 0) -> Any:
    """A JSON-serialisable hostile value (JSON numbers may be NaN or huge)."""
    roll = r.random()
    if depth > 2 or roll < 0.5:
        return r.choice(
            [None, True, r.randint(-(2**70), 2**70), int("9" * 401), float("nan"), 1e308,
             r.choice(NASTY), "x" * r.randrange(200)]
        )  # fmt: skip
    if roll < 0.75:
        return [fuzz_value(r, depth + 1) for _ in range(r.randrange(4))]
    return {r.choice(FIELDS): fuzz_value(r, depth + 1) for _ in range(r.randrange(5))}


def deep_json(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def undecodable_packets() -> list[str]:
    """Socket.IO packets python-socketio cannot make an event of."""
    return [
        "2" + deep_json(600),  # nested past our limit (the library used to take it)
        "2" + deep_json(5000),  # past Python's recursion limit
        '2["text_response", {"text": ',  # truncated JSON
        '2{"not": "a list"}',  # an event must be a list
        "2[]",  # an event without a name
        '2["text_response", {"chunk": ' + "7" * 5000 + "}]",  # too many digits for Python
        "9",  # no such packet type
    ]


def fuzz_frame(r: random.Random) -> str:
    """A hostile agent-call text frame."""
    roll = r.random()
    if roll < 0.2:
        return deep_json(r.choice([40, 600, 5000]))
    if roll < 0.3:
        return '{"event": "media", "media": {"chunk": ' + "4" * 401 + "}}"
    if roll < 0.4:
        return r.choice(NASTY)
    message = {"event": r.choice(["media", "mark", "clear", "start", "dtmf", "x" * 500])}
    message[r.choice(["media", "mark", "name"])] = fuzz_value(r)
    return json.dumps(message)


# -- what every hostile run must leave behind -------------------------------------------------
def check_run(stderr: str, tmp_path: Path, *secrets: str) -> list[dict[str, Any]]:
    """No traceback on screen; valid files; returns the transcript's records."""
    for marker in ("Traceback", "Task exception", "internal error"):
        assert marker not in stderr, stderr
    records = json_lines((tmp_path / "t.jsonl").read_text(encoding="utf-8"))
    assert records and records[-1]["type"] == "summary"
    rec = read_wav(tmp_path / "rec.wav")
    assert rec.channels == 2
    for secret in secrets:
        assert secret not in stderr
    return records
