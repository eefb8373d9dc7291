"""Our engine.io client's send path (aivoco/protocols/sts_engine.py) on a real event loop,
with a scripted WebSocket: what goes out, in what order, and when the write loop ends.

End to end, every sts test against a real Socket.IO server (tests/test_sts_driver.py,
tests/test_hostile_sts.py, the emulator's) sends through it; the rules the write loop
keeps where python-engineio's own did otherwise are pinned here.
"""

from __future__ import annotations

import asyncio

import pytest

from aivoco.protocols.sts_engine import Engine


class ScriptedSocket:
    """The two calls the write loop makes on aiohttp's WebSocket; fails after `fail_after`."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[str | bytes] = []
        self.fail_after = fail_after

    async def _send(self, data: str | bytes) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionResetError("peer gone")
        self.sent.append(data)

    async def send_str(self, data: str) -> None:
        await self._send(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(data)


def connected(ws: ScriptedSocket) -> Engine:
    engine = Engine()
    engine.state = "connected"
    engine.current_transport = "websocket"
    engine.ws = ws
    engine.queue = engine.create_queue()
    return engine


def run_loop(engine: Engine) -> None:
    async def go() -> None:
        await asyncio.wait_for(engine._write_loop(), timeout=5)

    asyncio.run(go())


def test_packets_go_out_in_order_and_a_marker_behind_them_ends_the_loop() -> None:
    ws = ScriptedSocket()

    async def go() -> None:
        engine = connected(ws)
        for i in range(3):
            engine.send_now(f"m{i}")
        engine.queue.put_nowait(None)  # what the read loop queues when it gives up
        engine.send_now("after the marker")
        await asyncio.wait_for(engine._write_loop(), timeout=5)
        assert engine.write_loop_task is None

    asyncio.run(go())
    # engine.io's MESSAGE packets ("4" + data), all before the marker; python-engineio
    # 4.15 dropped a marker behind packets and kept writing (sts_engine.py)
    assert ws.sent == ["4m0", "4m1", "4m2"]


def test_the_loop_waits_for_packets_and_writes_each_as_it_comes() -> None:
    ws = ScriptedSocket()

    async def go() -> None:
        engine = connected(ws)
        loop_task = asyncio.ensure_future(engine._write_loop())
        for i in range(3):
            engine.send_now(f"m{i}")
            await asyncio.sleep(0.01)
            assert ws.sent[-1] == f"4m{i}"  # written without waiting for more
        engine.queue.put_nowait(None)
        await asyncio.wait_for(loop_task, timeout=5)

    asyncio.run(go())
    assert len(ws.sent) == 3


def test_a_closed_socket_ends_the_loop() -> None:
    ws = ScriptedSocket(fail_after=1)
    engine = connected(ws)
    for i in range(3):
        engine.send_now(f"m{i}")
    run_loop(engine)  # returns: no hang on a socket that is gone
    assert ws.sent == ["4m0"]


@pytest.mark.parametrize("state", ["disconnecting", "disconnected"])
def test_nothing_is_queued_once_the_connection_is_not_open(state: str) -> None:
    engine = connected(ScriptedSocket())
    engine.state = state
    engine.send_now("late")
    assert engine.queue.qsize() == 0
