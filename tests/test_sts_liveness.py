"""The silent-peer backstop (aivoco/protocols/sts_liveness.py) on a real event loop, with a
scripted engine.io client: what it hears is set by the test.

End to end, tests/test_hostile_sts.py freezes a real connection behind a proxy; whether
python-engineio's own check or this one reports it there depends on timing, so the
backstop's rules are pinned here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from aivoco.protocols import sts_liveness
from aivoco.protocols.sts_liveness import Liveness


@dataclass
class ScriptedEngine:
    """The attributes Liveness reads off python-engineio's client."""

    ping_interval: float = 0.1
    ping_timeout: float = 0.1
    state: str = "connected"
    heard_at: float = field(default_factory=time.monotonic)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sts_liveness, "CHECK_EVERY_S", 0.05)
    monkeypatch.setattr(sts_liveness, "GRACE_S", 0.05)  # limit: 0.1 + 0.1 + 0.05 s


def watch(engine: ScriptedEngine, seconds: float, talk_every_s: float | None = None) -> list[float]:
    """Run a Liveness on `engine` for `seconds`; the silences it reported."""
    reported: list[float] = []

    async def main() -> None:
        liveness = Liveness(engine, reported.append)  # type: ignore[arg-type]
        liveness.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(talk_every_s or 0.01)
            if talk_every_s is not None:
                engine.heard_at = time.monotonic()
        engine.state = "disconnected"  # the checks end with the connection

    asyncio.run(main())
    return reported


def test_a_silent_connection_is_reported_once_past_the_limit() -> None:
    engine = ScriptedEngine()
    started = time.monotonic()
    reported = watch(engine, 1.0)
    assert len(reported) == 1  # once, and the checks stop
    # Past pingInterval + pingTimeout + grace, confirmed by a second check.
    assert 0.25 < reported[0] < 1.0
    assert engine.heard_at >= started  # start() counts the connect as heard


def test_a_peer_that_keeps_talking_is_never_reported() -> None:
    assert watch(ScriptedEngine(), 1.0, talk_every_s=0.05) == []


def test_a_connection_the_library_closed_is_not_watched() -> None:
    engine = ScriptedEngine(state="disconnected")
    assert watch(engine, 0.6) == []


def test_one_stale_check_is_not_enough() -> None:
    """The loop that runs the checks also reads the socket: after it was held up, the
    first check may come before what already arrived is read. The next one decides."""
    engine = ScriptedEngine()
    reported: list[float] = []

    async def main() -> None:
        liveness = Liveness(engine, reported.append)  # type: ignore[arg-type]
        liveness.start()
        time.sleep(0.4)  # the loop held up, past the limit
        for _ in range(3):  # the overdue check runs (stale), within these iterations
            await asyncio.sleep(0)
        engine.heard_at = time.monotonic()  # then what had arrived is read
        await asyncio.sleep(0.12)
        engine.state = "disconnected"

    asyncio.run(main())
    assert reported == []
