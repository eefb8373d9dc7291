"""StsDriver against a real Socket.IO server: arrival order, transports, odd events."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import numpy as np
import pytest
from clirun import write_tone
from servers import Emit, RecordingStsServer

from aivoco.errors import AuthError, ConnectionFailedError
from aivoco.protocols.sts_codec import StsCodec
from aivoco.protocols.sts_driver import StsDriver
from aivoco.session import CallOptions, open_call
from aivoco.wire import events as ev

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


def driver_for(url: str, key: str = "k", **kwargs: object) -> StsDriver:
    return StsDriver(url, StsCodec(key, "female"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_burst_of_numbered_chunks_arrives_in_order(transport: str) -> None:
    with RecordingStsServer(transports=(transport,)) as server:
        driver = driver_for(server.url, transports=(transport,))
        q = ev.EventQueue()
        try:
            driver.open(q, timeout_s=5)
            assert driver.net.transport == transport
            server.run(*[Emit("audio_response", numbered(i)) for i in range(BURST)])
            got = [e for e in drain(q, BURST + 2) if isinstance(e, ev.AgentAudio)]
        finally:
            driver.close()
    seq = [int(e.chunk.samples[0, 0]) for e in got]
    assert seq == list(range(BURST))


def test_falls_back_to_polling_when_websocket_is_refused() -> None:
    with RecordingStsServer(transports=("polling",)) as server:
        driver = driver_for(server.url)
        try:
            driver.open(ev.EventQueue(), timeout_s=5)
            assert driver.net.transport == "polling"
            assert server.wait_for("connect").data["transport"] == "polling"
        finally:
            driver.close()


def test_auth_failed_arrives_as_an_auth_error_event_and_close_is_clean() -> None:
    with RecordingStsServer(valid_keys={"good"}) as server:
        driver = driver_for(server.url, key="bad")
        q = ev.EventQueue()
        driver.open(q, timeout_s=5)
        failed = [e for e in drain(q, 1) if isinstance(e, ev.Failed)]
        driver.close()
        driver.close()  # idempotent
    assert len(failed) == 1 and isinstance(failed[0].error, AuthError)
    assert "Invalid API key" in str(failed[0].error)


def test_events_named_star_and_with_two_arguments_keep_their_meaning() -> None:
    """A `*` catch-all would get an event literally named `*` without its name (so
    `emit('*', 'session_ended', ...)` would end the call) and break on two arguments."""
    with RecordingStsServer() as server:
        driver = driver_for(server.url)
        q = ev.EventQueue()
        try:
            driver.open(q, timeout_s=5)
            drain(q, 2)  # credits and ready
            server.sio_emit_raw("*", "session_ended", {"reason": "x"})
            server.sio_emit_raw("text_response", {"text": "a"}, {"text": "b"})
            server.emit("text_response", {"text": "still here"})
            got = drain(q, 3)
        finally:
            driver.close()
    assert got[0] == ev.UnknownEvent("*")
    assert isinstance(got[1], ev.ProtocolIssue) and "2 arguments" in got[1].message
    assert got[2] == ev.AgentText("still here")


def test_a_silent_server_times_out_with_a_clear_message(tmp_path: Path) -> None:
    with RecordingStsServer() as server:
        server.on("start_call", lambda srv, sid, data: [])
        options = CallOptions(
            key="k",
            url=server.url,
            input_file=write_tone(tmp_path / "in.wav", 440, 16000, 1.0, amplitude=0.0),
            output_file=tmp_path / "out.wav",
            connect_timeout_s=1.0,
        )
        t0 = time.monotonic()
        result = open_call(options).run()
    assert isinstance(result.error, ConnectionFailedError)
    assert "did not start the session within 1 s" in str(result.error)
    assert time.monotonic() - t0 < 3
