"""Recording, scriptable test servers for the client tests (real sockets on 127.0.0.1).

- `RecordingStsServer` (`_servers_sts`): python-socketio `AsyncServer` on aiohttp,
  docs/protocols.md#sts.
- `RecordingCallServer` (`_servers_call`): aiohttp WebSocket on `/ws/{key}/{agent}`,
  docs/protocols.md#call.

Each runs its own asyncio loop in a background thread (`_servers_loop`): `start()`
returns the URL, `stop()` shuts down cleanly; both are context managers. Every message
received is recorded with `time.monotonic()`. Replies are actions (`Emit`, `SendText`,
`SendMedia`, `Sleep`, `Disconnect`, `Close`, `Abort`) run in order by one worker per
server, queued by hooks or by the test thread (`run()`, `emit()`, `send_*()`, which wait).

Typical use::

    with RecordingStsServer() as server:
        client.connect(server.url)
        server.wait_for("start_call")
        server.emit("text_response", {"text": "hi"})
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _servers_call import CallConnection, Frame, RecordingCallServer, media_actions
from _servers_loop import (
    DEFAULT_TIMEOUT,
    Abort,
    Action,
    Close,
    Disconnect,
    Emit,
    SendBinary,
    SendMedia,
    SendText,
    Sleep,
)
from _servers_sts import Received, RecordingStsServer

__all__ = [
    "DEFAULT_TIMEOUT",
    "Abort",
    "Action",
    "CallConnection",
    "Close",
    "Disconnect",
    "Emit",
    "Frame",
    "Received",
    "RecordingCallServer",
    "RecordingStsServer",
    "SendBinary",
    "SendMedia",
    "SendText",
    "Sleep",
    "call_server_fixture",
    "media_actions",
    "sts_server_fixture",
]


# Fixtures `sts_server` / `call_server` with default behaviour: import the *_fixture
# functions into a test module (or list this module in a conftest's `pytest_plugins`);
# configure per test through `on()` / attributes.
@pytest.fixture(name="sts_server")
def sts_server_fixture() -> Iterator[RecordingStsServer]:
    with RecordingStsServer() as server:
        yield server


@pytest.fixture(name="call_server")
def call_server_fixture() -> Iterator[RecordingCallServer]:
    with RecordingCallServer() as server:
        yield server
