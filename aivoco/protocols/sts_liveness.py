"""A silent Socket.IO peer is a drop even when python-engineio misses it.

engine.io's own check (docs/protocols.md#pitfall-engineio-silent): the read loop gives up
after pingInterval + pingTimeout without a packet, puts a stop marker on the send queue
and waits for the write loop to end. The write loop of python-engineio 4.15 takes
packets in batches, and a marker that arrives behind queued packets (our audio, 50 a
second) is dropped from the batch without ending the loop; as long as we keep sending,
the call went on for its whole input on a dead connection (6 of 32 runs of the
frozen-proxy test on a loaded machine). Our write loop (`sts_engine.py`) ends on such a
marker; this backstop stays for a check that never runs, and watches what the client
hears instead: every packet received, pings included, stamps `Engine.heard_at`; a connection
that heard nothing for the same limit plus `GRACE_S`, at two checks in a row, is
reported lost.

Two checks in a row, not one: a check runs on the loop that also reads the socket, and
after that loop was held up (a busy machine) the first check may run before the
packets that already arrived are read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aivoco.protocols.sts_engine import Engine

CHECK_EVERY_S = 0.5
GRACE_S = 0.5


class Liveness:
    """Checks one connected engine.io client every `CHECK_EVERY_S` on its loop; calls
    `on_silent(seconds)` once if it stays silent. Ends by itself once the client is no
    longer connected (closed by us or by the library), or after reporting."""

    def __init__(self, eio: Engine, on_silent: Callable[[float], None]) -> None:
        self.eio = eio
        self.on_silent = on_silent
        self._stale = 0

    def start(self) -> None:
        """On the client's loop, once connected."""
        self.eio.heard_at = time.monotonic()  # the connect's own packets count
        asyncio.get_running_loop().call_later(CHECK_EVERY_S, self._check)

    def _check(self) -> None:
        eio = self.eio
        if eio.state != "connected":
            return
        limit_s = eio.ping_interval + eio.ping_timeout + GRACE_S
        silent_s = time.monotonic() - eio.heard_at
        self._stale = self._stale + 1 if silent_s > limit_s else 0
        if self._stale >= 2:
            self.on_silent(silent_s)
            return
        asyncio.get_running_loop().call_later(CHECK_EVERY_S, self._check)
