"""Reconnecting, in-process: the lifecycle's decisions, the backoff, and whole calls
against scripted drivers (tests/fakes.py). Real servers: tests/test_hostile_*.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import DriverSupply, MemorySource, ScriptedDriver
from test_lifecycle import KEY, _Collect, tone, types

from aivoco.audio.playout import ClockPlayer
from aivoco.errors import AuthError, ConnectionFailedError, CreditsError, ProtocolError
from aivoco.session import Call, CallOptions, EndReason, Phase, open_call
from aivoco.session.lifecycle import Lifecycle, Op, ReconnectPolicy
from aivoco.session.reconnect import DriverSlot
from aivoco.session.state import Credits
from aivoco.wire import events as ev
from aivoco.wire.driver import ProtocolName

LOST = ev.Disconnected("reset by peer", ConnectionFailedError("the connection was lost"))
QUICK = 0.02  # first backoff in the whole-call tests: 20, 40, 80 ms


# -- the policy and the lifecycle's decisions ------------------------------------------------
def test_the_backoff_doubles_from_half_a_second_to_eight() -> None:
    policy = ReconnectPolicy(tries=7)
    assert [policy.delay_s(k) for k in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def live(tries: int = 3, clock: Clock | None = None) -> Lifecycle:
    lc = Lifecycle(ReconnectPolicy(tries), clock or Clock())
    lc.start()
    lc.went_live()
    return lc


def test_a_lost_connection_while_live_reconnects() -> None:
    lc = live()
    assert lc.disconnected(LOST) and lc.phase is Phase.RECONNECTING
    assert lc.attempt == (1, 3) and lc.drop is LOST
    assert lc.permits(Op.KEEP_MEDIA) and not lc.permits(Op.SEND_AUDIO)
    assert lc.went_live() and lc.reconnects == 1


@pytest.mark.parametrize(
    "error", [AuthError("refused"), CreditsError("out"), ProtocolError("too big")]
)
def test_refusals_are_never_retried(error: Exception) -> None:
    lc = live()
    lc.disconnected(ev.Disconnected("closed", error))  # type: ignore[arg-type]
    assert lc.phase is Phase.ENDED and lc.outcome is not None and lc.outcome.error is error


def test_no_retry_without_tries_or_after_our_goodbye() -> None:
    lc = live(tries=0)
    lc.disconnected(LOST)
    assert lc.outcome is not None and lc.outcome.error is LOST.error
    ending = live()
    ending.hang_up(EndReason.HANGUP)
    ending.disconnected(LOST)
    assert ending.outcome is not None and ending.outcome.error is None


def test_tries_run_out_with_one_clear_error() -> None:
    lc = live(tries=2)
    lc.disconnected(LOST)
    assert lc.retry_failed(ConnectionFailedError("refused")) and lc.attempt == (2, 2)
    assert not lc.retry_failed(ConnectionFailedError("refused again"))
    outcome = lc.outcome
    assert outcome is not None and isinstance(outcome.error, ConnectionFailedError)
    assert str(outcome.error) == (
        "the connection was lost; 2 tries to reconnect failed (the last: refused again)"
    )


def test_a_session_that_drops_at_once_uses_up_the_same_tries() -> None:
    clock = Clock()
    lc = live(tries=2, clock=clock)
    lc.disconnected(LOST)
    lc.went_live()
    clock.now += 1.0  # dropped again one second after coming back
    lc.disconnected(LOST)
    assert lc.attempt == (2, 2)
    lc.went_live()
    clock.now += 1.0
    lc.disconnected(LOST)
    assert lc.phase is Phase.ENDED  # no endless loop against a flapping server
    assert lc.outcome is not None and str(lc.outcome.error) == (
        "the connection was lost; not retried: the last 2 sessions dropped within 10 s "
        "of coming back"
    )


def test_a_session_that_held_starts_a_fresh_count() -> None:
    clock = Clock()
    lc = live(tries=1, clock=clock)
    lc.disconnected(LOST)
    lc.went_live()
    clock.now += ReconnectPolicy().stable_s
    lc.disconnected(LOST)
    assert lc.phase is Phase.RECONNECTING and lc.attempt == (1, 1)


def test_a_hang_up_while_reconnecting_ends_at_once() -> None:
    lc = live()
    lc.disconnected(LOST)
    assert lc.hang_up(EndReason.INTERRUPTED) and lc.phase is Phase.ENDED
    assert lc.outcome is not None and lc.outcome.error is None


def test_a_new_connection_that_drops_before_ready_fails_its_attempt() -> None:
    lc = live()
    lc.disconnected(LOST)
    assert not lc.disconnected(LOST)  # the attempt's own drop: no phase change
    assert lc.wait_reconnected(1.0, lc.reconnects) is False


def test_credits_add_up_over_sessions() -> None:
    first = Credits(available=10, cost_per_minute=6, session_start_s=0.0)
    assert first.estimate(30.0) == (3.0, 7.0)
    after = first.dropped(30.0)
    assert after.earlier_used == 3.0 and after.cost_per_minute is None
    second = Credits(8, 6, None, None, 40.0, after.earlier_used, after.earlier_sessions)
    assert second.estimate(50.0) == (4.0, 7.0)  # the gap (30..40 s) is not billed
    final = Credits(8, 6, 1.25, 6.75, 40.0, 3.0, 1)
    assert final.estimate(60.0) == (4.25, 6.75) and not final.final


def test_the_slot_adds_up_every_connection_and_spots_stale_events() -> None:
    first, second = ScriptedDriver(), ScriptedDriver()
    slot = DriverSlot(first)
    first.net.messages_sent, first.net.bytes_received = 5, 100
    assert slot.replace(second) and slot.generation == 1
    second.net.messages_sent = 2
    assert slot.net.messages_sent == 7 and slot.net.bytes_received == 100
    late_ready = ev.Timed(0.0, ev.Ready(), origin=0)
    assert slot.is_stale(late_ready)
    assert not slot.is_stale(ev.Timed(0.0, ev.AgentText("late words still count"), origin=0))
    assert not slot.is_stale(ev.Timed(0.0, ev.Ready(), origin=1))
    slot.close()
    third = ScriptedDriver()
    assert not slot.replace(third) and third.closed.is_set()


# -- whole calls -------------------------------------------------------------------------------
def reconnecting_call(
    tmp_path: Path, supply: DriverSupply, **options: Any
) -> tuple[Call, list[dict[str, Any]]]:
    driver = supply.first
    opts = CallOptions(
        protocol=driver.protocol,
        key=KEY,
        agent="a1",
        transcript_file=tmp_path / "t.jsonl",
        record_file=tmp_path / "rec.wav",
        **{"connect_timeout_s": 1.0, "hangup_timeout_s": 0.3, "reconnect_delay_s": QUICK,
           **options},
    )  # fmt: skip
    rate = driver.uplink_rate_hz
    call = open_call(
        opts,
        driver=driver,
        source=MemorySource([tone(rate)] * 10, rate_hz=rate),
        player=ClockPlayer(driver.downlink_rate_hz),
        reconnect=supply.next,
    )
    records: list[dict[str, Any]] = []
    call.subscribe(_Collect(records))
    return call, records


def wait_for(predicate: Any, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_dropped_call_comes_back_on_one_timeline(tmp_path: Path) -> None:
    bye = lambda: [ev.Ended("stopped_by_user")]  # noqa: E731
    supply = DriverSupply(
        ScriptedDriver(on_open=[ev.Ready("one", 10.0, 60.0)]),
        ScriptedDriver(on_open=[ev.Ready("two", 9.0, 60.0)], on_goodbye=bye),
    )
    call, records = reconnecting_call(tmp_path, supply)
    call.start()
    time.sleep(0.3)
    supply.first.push(LOST)
    wait_for(lambda: call.phase is Phase.LIVE and supply.built == 2)
    time.sleep(0.3)
    call.hang_up()
    assert call.wait(2)
    result = call.close()
    assert result.error is None and result.summary.reconnects == 1
    kinds = types(records)
    assert kinds.count("ready") == 2 and kinds.count("reconnecting") == 1
    assert kinds.index("reconnecting") < kinds.index("reconnected")
    rec = next(r for r in records if r["type"] == "reconnecting")
    assert (rec["attempt"], rec["of"], rec["delay_s"]) == (1, 3, QUICK)
    assert rec["reason"] == "reset by peer"
    assert records[-1]["reconnects"] == 1
    assert supply.first.closed.is_set() and supply.latest.sent.goodbyes == 1
    assert supply.first.sent.audio and supply.latest.sent.audio  # both sessions had audio
    # One transcript, one recording, as long as the whole call (gap included).
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert len(lines) == len(records)
    assert call.recorder is not None
    assert call.recorder.duration_ms / 1000 == pytest.approx(result.summary.duration_s, abs=0.15)
    # Credits: both sessions' minutes (about 0.3 s each at 60/min), not the gap.
    assert result.summary.credits is not None
    assert result.summary.credits.used == pytest.approx(0.6, abs=0.2)
    assert result.summary.credits.final is False


def test_backoff_between_failed_tries(tmp_path: Path) -> None:
    refused = ConnectionFailedError("cannot connect to scripted.test: refused")
    supply = DriverSupply(
        ScriptedDriver(),
        ScriptedDriver(open_error=refused),
        ScriptedDriver(open_error=refused),
        ScriptedDriver(),
    )
    call, records = reconnecting_call(tmp_path, supply)
    call.start()
    dropped_at = time.monotonic()
    supply.first.push(LOST)
    wait_for(lambda: supply.built == 4 and call.phase is Phase.LIVE)
    call.abort()
    opened = [dropped_at] + [d.opened_at or 0.0 for d in supply.drivers[1:]]
    waited = np.diff(opened)
    assert list(waited >= [QUICK, 2 * QUICK, 4 * QUICK]) == [True] * 3  # each its backoff
    assert waited[2] < 4 * QUICK + 1.0  # and not a longer step of the backoff
    tries = [r for r in records if r["type"] == "reconnecting"]
    assert [(r["attempt"], r["delay_s"]) for r in tries] == [(1, QUICK), (2, 2 * QUICK),
                                                            (3, 4 * QUICK)]  # fmt: skip
    assert tries[1]["reason"] == str(refused)
    assert next(r for r in records if r["type"] == "reconnected")["attempt"] == 3


def test_a_key_refused_after_a_drop_ends_the_call_without_a_retry_loop(tmp_path: Path) -> None:
    refused = AuthError("the server refused the API key: revoked")
    supply = DriverSupply(
        ScriptedDriver(), ScriptedDriver(on_open=[ev.Failed(refused)]), ScriptedDriver()
    )
    call, records = reconnecting_call(tmp_path, supply)
    call.start()
    supply.first.push(LOST)
    assert call.wait(3)
    result = call.close()
    assert result.error is refused and supply.built == 2
    assert types(records).count("reconnecting") == 1 and "reconnected" not in types(records)


def test_a_refused_upgrade_after_a_drop_is_not_retried(tmp_path: Path) -> None:
    refused = AuthError("unknown agent or API key (HTTP 404)")
    supply = DriverSupply(ScriptedDriver(), ScriptedDriver(open_error=refused), ScriptedDriver())
    call, _ = reconnecting_call(tmp_path, supply)
    call.start()
    supply.first.push(LOST)
    assert call.wait(3)
    assert call.close().error is refused and supply.built == 2


def test_when_every_try_fails_the_call_ends_with_exit_5s_error(tmp_path: Path) -> None:
    refused = ConnectionFailedError("cannot connect to scripted.test: refused")
    supply = DriverSupply(ScriptedDriver(), *[ScriptedDriver(open_error=refused)] * 2)
    call, records = reconnecting_call(tmp_path, supply, reconnect=2)
    call.start()
    supply.first.push(LOST)
    assert call.wait(3)
    result = call.close()
    assert isinstance(result.error, ConnectionFailedError)
    assert "2 tries to reconnect failed" in str(result.error)
    assert types(records)[-2:] == ["error", "summary"] and records[-1]["reconnects"] == 0


def test_a_session_that_never_gets_ready_is_a_failed_try(tmp_path: Path) -> None:
    supply = DriverSupply(ScriptedDriver(), ScriptedDriver(on_open=[]), ScriptedDriver())
    call, records = reconnecting_call(tmp_path, supply, connect_timeout_s=0.3)
    call.start()
    supply.first.push(LOST)
    wait_for(lambda: supply.built == 3 and call.phase is Phase.LIVE)
    call.abort()
    assert supply.drivers[1].closed.is_set()
    second = [r for r in records if r["type"] == "reconnecting"][1]
    assert "did not start a new session within 0.3 s" in second["reason"]


def test_no_reconnect_and_a_hang_up_during_the_backoff(tmp_path: Path) -> None:
    supply = DriverSupply(ScriptedDriver(), ScriptedDriver())
    call, _ = reconnecting_call(tmp_path, supply, no_reconnect=True)
    call.start()
    supply.first.push(LOST)
    assert call.wait(2)
    assert isinstance(call.close().error, ConnectionFailedError) and supply.built == 1

    supply = DriverSupply(ScriptedDriver(), ScriptedDriver())
    call, _ = reconnecting_call(tmp_path / "..", supply, reconnect_delay_s=5.0)
    call.start()
    supply.first.push(LOST)
    wait_for(lambda: call.phase is Phase.RECONNECTING)
    t0 = time.monotonic()
    call.hang_up(EndReason.INTERRUPTED)
    assert call.wait(1) and time.monotonic() - t0 < 0.5
    result = call.close()
    assert result.error is None and result.outcome.reason is EndReason.INTERRUPTED
    assert supply.built == 1  # the backoff was cut short: no new connection


def test_a_call_protocol_drop_reconnects_too(tmp_path: Path) -> None:
    supply = DriverSupply(ScriptedDriver(ProtocolName.CALL), ScriptedDriver(ProtocolName.CALL))
    call, _ = reconnecting_call(tmp_path, supply)
    call.start()
    supply.first.push(LOST)
    wait_for(lambda: call.phase is Phase.LIVE and supply.built == 2)
    supply.latest.push(ev.Ended("agent-hangup", "the agent ended the call"))
    assert call.wait(2)
    result = call.close()
    assert result.error is None and result.summary.reconnects == 1
