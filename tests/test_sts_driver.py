"""StsDriver against a real Socket.IO server: arrival order, transports, shutdown."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest
from servers import Emit, RecordingStsServer

from aivoco.errors import AuthError, ConnectionFailedError
from aivoco.protocols.sts_driver import StsDriver
from aivoco.session import events as ev

BURST = 400


def numbered(i: int) -> dict[str, str]:
    """A 10 ms 24 kHz chunk whose every sample is its sequence number."""
    return {"audio_data": base64.b64encode(np.full(240, i, "<i2").tobytes()).decode()}


def drain(q: ev.EventQueue, want: int, timeout_s: float = 20.0) -> list[ev.Event]:
    out: list[ev.Event] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < deadline:
        item = q.get(timeout=0.1)
        if item is not None:
            out.append(item.event)
    return out


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_burst_of_numbered_chunks_arrives_in_order(transport: str) -> None:
    with RecordingStsServer(transports=(transport,)) as server:
        driver = StsDriver(server.url, "k", "female", transports=(transport,))
        q = ev.EventQueue()
        try:
            driver.connect(q, timeout_s=5)
            assert driver.net.transport == transport
            server.run(*[Emit("audio_response", numbered(i)) for i in range(BURST)])
            got = [e for e in drain(q, BURST + 2) if isinstance(e, ev.AgentAudio)]
        finally:
            driver.close()
    seq = [int(e.chunk.samples[0, 0]) for e in got]
    assert seq == list(range(BURST))


def test_falls_back_to_polling_when_websocket_is_refused() -> None:
    with RecordingStsServer(transports=("polling",)) as server:
        driver = StsDriver(server.url, "k", "female")
        try:
            driver.connect(ev.EventQueue(), timeout_s=5)
            assert driver.net.transport == "polling"
            assert server.wait_for("connect").data["transport"] == "polling"
        finally:
            driver.close()


def test_auth_failed_raises_auth_error_and_close_is_clean() -> None:
    with RecordingStsServer(valid_keys={"good"}) as server:
        driver = StsDriver(server.url, "bad", "female")
        with pytest.raises(AuthError, match="Invalid API key"):
            driver.connect(ev.EventQueue(), timeout_s=5)
        driver.close()
        driver.close()  # idempotent


def test_silent_server_times_out_with_a_clear_message() -> None:
    with RecordingStsServer() as server:
        server.on("start_call", lambda srv, sid, data: [])
        driver = StsDriver(server.url, "k", "female")
        t0 = time.monotonic()
        with pytest.raises(ConnectionFailedError, match="did not start the session within 1 s"):
            driver.connect(ev.EventQueue(), timeout_s=1)
        assert time.monotonic() - t0 < 3
        driver.close()
