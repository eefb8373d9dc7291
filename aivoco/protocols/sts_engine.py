"""Our engine.io client: python-engineio's `AsyncClient` with a cheaper way to send.

Each frame of an sts call is one Socket.IO event. With the library as it is, a frame
cost a task for `emit()`, a second task inside `asyncio.wait_for()` for the write loop's
`queue.get()`, and about seven loop callbacks over four turns of the event loop (a yappi
count of one call: 432 callbacks made and 321 loop turns a second for 50 frames). Wake-ups
and loop turns, not the work in them, are most of what a call costs here
(docs/performance.md#floor), so this client sends with less machinery:
* `send_now()` puts the packet on engine.io's send queue without a coroutine (the
  library's own send does only that: the queue has no bound, so the put never waits);
* `_write_loop()` takes packets with a plain `await queue.get()`. The library wraps it in
  `wait_for(..., max(pingInterval, pingTimeout) + 5)` to end a loop nothing stops, but
  what ends a connection puts the stop marker (`None`) on the queue: the read loop
  whenever it ends, and `disconnect()`; a silent peer is also caught by
  `sts_liveness.py`. A marker queued behind packets now ends the loop once those are
  written (python-engineio 4.15 dropped it from the batch and went on: the reason for
  the liveness backstop, docs/protocols.md#pitfall-engineio-silent).
Everything else (connecting, reading, pings, the polling transport's requests) is the
library's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import engineio
from engineio import packet as eio_packet
from engineio import payload as eio_payload

_CLOSED = (aiohttp.client_exceptions.ServerDisconnectedError, BrokenPipeError, OSError)


class Engine(engineio.AsyncClient):  # type: ignore[misc]
    """python-engineio's client, noting when anything last arrived from the server
    (`heard_at`, for sts_liveness.py) and sending without a task per packet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard_at = time.monotonic()

    async def _receive_packet(self, pkt: Any) -> None:
        self.heard_at = time.monotonic()
        await super()._receive_packet(pkt)

    def send_now(self, data: Any) -> None:
        """`send()` without a coroutine; on the loop's thread."""
        if self.state == "connected":
            self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=data))

    async def _write_loop(self) -> None:
        queue: asyncio.Queue[Any] = self.queue
        while self.state == "connected":
            packets = [await queue.get()]
            while packets[-1] is not None:  # the rest of what is queued, up to a marker
                try:
                    packets.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            for _ in packets:
                queue.task_done()
            stop = packets[-1] is None
            if stop:
                packets.pop()
            if packets and not await self._write(packets):
                break
            if stop:
                break
        self.logger.info("Exiting write loop task")
        self.write_loop_task = None

    async def _write(self, packets: list[Any]) -> bool:
        """Write a batch on the current transport; False once the connection is gone."""
        if self.current_transport == "polling":
            body = eio_payload.Payload(packets=packets).encode()
            r = await self._send_request(
                "POST",
                self.base_url,
                body=body,
                headers={"Content-Type": "text/plain"},
                timeout=self.request_timeout,
            )
            if r is None or isinstance(r, str):
                self.logger.warning(r or "Connection refused by the server, aborting")
                return False
            if not 200 <= r.status < 300:
                self.logger.warning("Unexpected status code %s in server response", r.status)
                return False
            return True
        try:
            for pkt in packets:
                if pkt.binary:
                    await self.ws.send_bytes(pkt.encode())
                else:
                    await self.ws.send_str(pkt.encode())
        except _CLOSED:
            self.logger.info("Write loop: WebSocket connection was closed, aborting")
            return False
        return True
