"""The call lifecycle, in-process: the table itself, then whole calls against a scripted
driver (tests/fakes.py), each path in milliseconds."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import MemorySource, ScriptedDriver

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.playout import ClockPlayer
from aivoco.errors import (
    AuthError,
    CallStateError,
    ConnectionFailedError,
    CreditsError,
    ProtocolError,
    ServiceError,
)
from aivoco.session import Call, CallOptions, EndReason, Phase, open_call
from aivoco.session.lifecycle import _ALLOWED, _TRANSITIONS, Lifecycle, Op, ReconnectPolicy
from aivoco.wire import events as ev
from aivoco.wire.driver import ProtocolName

KEY = "sk-lifecycle-0123456789"


# -- the table -----------------------------------------------------------------------
def test_every_phase_and_trigger_has_one_answer() -> None:
    ended_from = {p for (p, t), new in _TRANSITIONS.items() if new is Phase.ENDED}
    assert ended_from == {
        Phase.NEW,
        Phase.CONNECTING,
        Phase.LIVE,
        Phase.RECONNECTING,
        Phase.ENDING,
    }
    assert not any(p is Phase.ENDED for p, _ in _TRANSITIONS)  # nothing leaves ENDED
    assert set(_ALLOWED) == set(Phase)
    assert _ALLOWED[Phase.LIVE] == frozenset(Op)
    assert Op.SEND_AUDIO not in _ALLOWED[Phase.ENDING]


def test_permits_follows_the_table_through_every_phase() -> None:
    """`permits()` reads the phase's operations without the lock: it must still agree
    with `_ALLOWED` after every transition, including a reconnect and back."""
    lc = Lifecycle(ReconnectPolicy(tries=2))

    def check() -> None:
        for op in Op:
            assert lc.permits(op) == (op in _ALLOWED[lc.phase]), (lc.phase, op)

    check()
    lc.start()
    check()
    lc.went_live()
    check()
    lc.disconnected(ev.Disconnected("lost", ConnectionFailedError("reset")))
    phases = [lc.phase]
    check()
    lc.went_live()
    check()
    lc.hang_up(EndReason.IDLE)
    check()
    lc.end(EndReason.SERVER)
    phases.append(lc.phase)
    check()
    assert phases == [Phase.RECONNECTING, Phase.ENDED]


def test_second_hang_up_and_late_triggers_are_refused() -> None:
    lc = Lifecycle()
    changes: list[tuple[Phase, Phase]] = []
    lc.subscribe(lambda old, new: changes.append((old, new)))
    lc.start()
    assert lc.went_live()
    assert lc.hang_up(EndReason.IDLE)
    assert not lc.hang_up(EndReason.INTERRUPTED)  # a second hang-up
    assert not lc.went_live()
    assert lc.end(EndReason.SERVER)
    assert not lc.end(EndReason.ERROR, ServiceError("late"))
    outcome = lc.outcome
    assert outcome is not None
    assert outcome.reason is EndReason.IDLE and outcome.error is None  # the first reason
    assert changes == [
        (Phase.NEW, Phase.CONNECTING),
        (Phase.CONNECTING, Phase.LIVE),
        (Phase.LIVE, Phase.ENDING),
        (Phase.ENDING, Phase.ENDED),
    ]
    with pytest.raises(CallStateError, match="cannot start a call that is ended"):
        lc.start()
    with pytest.raises(CallStateError, match="cannot send audio while the call is ended"):
        lc.require(Op.SEND_AUDIO)


def test_server_end_after_our_goodbye_keeps_our_reason_and_its_words() -> None:
    lc = Lifecycle()
    lc.start()
    lc.went_live()
    lc.hang_up(EndReason.IDLE)
    lc.server_ended(ev.Ended("stopped_by_user", "Session stopped by user", 0.1, 9.9, None,
                             ServiceError("the server ended the session")))  # fmt: skip
    outcome = lc.outcome
    assert outcome is not None and outcome.error is None
    assert outcome.label == "idle" and outcome.server_message == "Session stopped by user"


def test_server_end_by_itself_is_its_error_and_its_reason() -> None:
    lc = Lifecycle()
    lc.start()
    lc.went_live()
    lc.server_ended(ev.Ended("admin_kick", None, error_unless_hung_up=ServiceError("kicked")))
    outcome = lc.outcome
    assert outcome is not None and isinstance(outcome.error, ServiceError)
    assert outcome.label == "admin_kick"


def test_credits_running_out_is_an_error_even_after_our_goodbye() -> None:
    lc = Lifecycle()
    lc.start()
    lc.went_live()
    lc.hang_up(EndReason.INTERRUPTED)
    lc.server_ended(ev.Ended("insufficient_user_credits", error=CreditsError("out")))
    outcome = lc.outcome
    assert outcome is not None and isinstance(outcome.error, CreditsError)


def test_a_disconnect_is_the_end_we_asked_for_only_after_our_goodbye() -> None:
    lost = ev.Disconnected("gone", ConnectionFailedError("the connection was lost"))
    live = Lifecycle()
    live.start()
    live.went_live()
    live.disconnected(lost)
    assert live.outcome is not None and isinstance(live.outcome.error, ConnectionFailedError)
    ending = Lifecycle()
    ending.start()
    ending.went_live()
    ending.hang_up(EndReason.HANGUP)
    ending.disconnected(lost)
    assert ending.outcome is not None and ending.outcome.error is None


def _race_once() -> list[Phase]:
    lc = Lifecycle()
    seen: list[Phase] = []
    lc.subscribe(lambda old, new: seen.append(new))
    lc.start()
    lc.went_live()
    go = threading.Barrier(3)

    def fire(action: Any) -> None:
        go.wait()
        action()

    threads = [
        threading.Thread(target=fire, args=(lambda: lc.hang_up(EndReason.IDLE),)),
        threading.Thread(target=fire, args=(lambda: lc.end(EndReason.ERROR),)),
    ]
    for t in threads:
        t.start()
    go.wait()
    for t in threads:
        t.join()
    return seen


def test_listeners_see_changes_in_order_when_threads_race() -> None:
    for _ in range(50):
        seen = _race_once()
        assert seen[-1] is Phase.ENDED
        assert seen == sorted(seen, key=list(Phase).index)


# -- whole calls against a scripted driver ---------------------------------------------------
def tone(rate_hz: int, ms: int = 20) -> AudioChunk:
    n = rate_hz * ms // 1000
    return AudioChunk((8000 * np.sin(np.arange(n) / 3)).astype(np.int16), rate_hz)


def make_call(
    tmp_path: Path,
    driver: ScriptedDriver,
    frames: int = 0,
    *,
    pace: float = 1.0,
    **options: Any,
) -> tuple[Call, list[dict[str, Any]]]:
    rate = driver.uplink_rate_hz
    opts = CallOptions(
        protocol=driver.protocol,
        key=KEY,
        agent="a1",
        transcript_file=tmp_path / "t.jsonl",
        **{"connect_timeout_s": 2.0, "hangup_timeout_s": 0.5, **options},
    )
    source = MemorySource([tone(rate)] * frames, rate_hz=rate, pace=pace)
    call = open_call(
        opts, driver=driver, source=source, player=ClockPlayer(driver.downlink_rate_hz)
    )
    records: list[dict[str, Any]] = []
    call.subscribe(_Collect(records))
    return call, records


class _Collect:
    def __init__(self, into: list[dict[str, Any]]) -> None:
        self.into = into

    def on_record(self, record: dict[str, Any]) -> None:
        self.into.append(record)


def types(records: list[dict[str, Any]]) -> list[str]:
    return [r["type"] for r in records]


def test_a_call_runs_goes_idle_and_says_goodbye(tmp_path: Path) -> None:
    driver = ScriptedDriver(on_goodbye=lambda: [ev.Ended("stopped_by_user", "bye")])
    call, records = make_call(tmp_path, driver, frames=10, pace=0, idle_timeout_s=0.2)
    t0 = time.monotonic()
    result = call.run()
    assert time.monotonic() - t0 < 3
    assert result.error is None and result.outcome.reason is EndReason.IDLE
    assert result.outcome.server_message == "bye"
    assert driver.sent.goodbyes == 1 and len(driver.sent.audio) >= 10
    assert types(records)[:2] == ["connecting", "ready"]
    assert types(records)[-3:] == ["hangup", "session_ended", "summary"]
    assert records[-1]["reason"] == "idle"
    assert call.phase is Phase.ENDED and driver.closed.is_set()


def test_hang_up_races_send_one_goodbye(tmp_path: Path) -> None:
    driver = ScriptedDriver(on_goodbye=lambda: [ev.Ended("stopped_by_user")])
    call, records = make_call(tmp_path, driver)
    call.start()
    assert call.phase is Phase.LIVE
    go = threading.Barrier(8)
    answers: list[bool] = []

    def hang_up() -> None:
        go.wait()
        answers.append(call.hang_up(EndReason.INTERRUPTED))

    threads = [threading.Thread(target=hang_up) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert call.wait(2)
    result = call.close()
    assert answers.count(True) == 1
    assert driver.sent.goodbyes == 1 and types(records).count("hangup") == 1
    assert result.outcome.reason is EndReason.INTERRUPTED


def test_refused_key_during_connect_ends_with_an_error_record(tmp_path: Path) -> None:
    refused = AuthError("the server refused the API key: nope")
    driver = ScriptedDriver(on_open=[ev.Failed(refused)])
    call, records = make_call(tmp_path, driver, frames=5)
    result = call.run()
    assert result.error is refused and call.source.started.is_set() is False  # type: ignore[attr-defined]
    assert driver.sent.audio == [] and driver.sent.goodbyes == 0
    assert types(records)[-2:] == ["error", "summary"]
    assert records[-2]["kind"] == "AuthError" and records[-1]["error"] == str(refused)


def test_an_open_that_raises_ends_the_call(tmp_path: Path) -> None:
    driver = ScriptedDriver(open_error=ConnectionFailedError("cannot connect to x: refused"))
    call, records = make_call(tmp_path, driver)
    result = call.run()
    assert isinstance(result.error, ConnectionFailedError)
    assert "error" in types(records)


def test_no_ready_within_the_connect_timeout(tmp_path: Path) -> None:
    driver = ScriptedDriver(on_open=[])
    call, _ = make_call(tmp_path, driver, connect_timeout_s=0.3)
    t0 = time.monotonic()
    result = call.run()
    assert 0.25 < time.monotonic() - t0 < 2
    assert isinstance(result.error, ConnectionFailedError)
    assert "did not start the session within 0.3 s" in str(result.error)


def test_the_connect_timeout_bounds_open_and_ready_together(tmp_path: Path) -> None:
    driver = ScriptedDriver(on_open=[], open_delay_s=0.3)
    call, _ = make_call(tmp_path, driver, connect_timeout_s=0.5)
    t0 = time.monotonic()
    result = call.run()
    assert time.monotonic() - t0 < 0.9
    assert isinstance(result.error, ConnectionFailedError)


def test_hang_up_while_connecting_ends_without_a_goodbye(tmp_path: Path) -> None:
    driver = ScriptedDriver(on_open=[], open_delay_s=0.2)
    call, _ = make_call(tmp_path, driver)
    call.start(wait=False)
    assert call.hang_up(EndReason.INTERRUPTED)
    assert call.wait(1)
    result = call.close()
    assert result.error is None and result.outcome.reason is EndReason.INTERRUPTED
    assert driver.sent.goodbyes == 0


def test_an_error_while_saying_goodbye_still_ends_the_call(tmp_path: Path) -> None:
    driver = ScriptedDriver(goodbye_error=ConnectionFailedError("send failed"))
    call, _ = make_call(tmp_path, driver, hangup_timeout_s=0.2)
    call.start()
    t0 = time.monotonic()
    call.hang_up(EndReason.HANGUP)
    assert call.wait(2)
    assert time.monotonic() - t0 < 1
    result = call.close()
    assert result.error is None and result.outcome.reason is EndReason.HANGUP


def test_no_final_word_ends_after_the_hang_up_timeout(tmp_path: Path) -> None:
    driver = ScriptedDriver()  # never answers the goodbye
    call, _ = make_call(tmp_path, driver, hangup_timeout_s=0.3)
    call.start()
    t0 = time.monotonic()
    call.hang_up()
    assert call.wait(2)
    assert 0.25 < time.monotonic() - t0 < 1.5
    assert call.close().error is None


def test_abort_sends_no_goodbye_and_stops_audio(tmp_path: Path) -> None:
    driver = ScriptedDriver()
    call, _ = make_call(tmp_path, driver)
    call.start()
    time.sleep(0.1)
    result = call.abort()
    assert result.outcome.reason is EndReason.ABORTED and driver.sent.goodbyes == 0
    sent = len(driver.sent.audio)
    time.sleep(0.1)
    assert len(driver.sent.audio) == sent  # nothing after the end


def test_no_audio_goes_out_after_the_goodbye(tmp_path: Path) -> None:
    driver = ScriptedDriver(protocol=ProtocolName.CALL)
    call, _ = make_call(tmp_path, driver, hangup_timeout_s=0.3)
    call.start()
    time.sleep(0.1)
    call.hang_up()
    sent = len(driver.sent.audio)
    assert call.wait(2)
    call.close()
    assert len(driver.sent.audio) <= sent + 1  # at most the frame already in flight


def test_connection_lost_while_live_is_a_connection_error(tmp_path: Path) -> None:
    driver = ScriptedDriver(protocol=ProtocolName.CALL)
    call, records = make_call(tmp_path, driver)
    call.start()
    driver.push(ev.Disconnected("reset", ConnectionFailedError("the connection was lost")))
    assert call.wait(2)
    result = call.close()
    assert isinstance(result.error, ConnectionFailedError)
    assert types(records)[-2:] == ["error", "summary"]


def test_the_agent_hanging_up_is_a_normal_end(tmp_path: Path) -> None:
    driver = ScriptedDriver(protocol=ProtocolName.CALL)
    call, _ = make_call(tmp_path, driver)
    call.start()
    driver.push(ev.Ended("agent-hangup", "the agent ended the call"))
    assert call.wait(2)
    result = call.close()
    assert result.error is None and result.summary.reason == "agent-hangup"


def test_twenty_malformed_messages_in_a_row_end_the_call(tmp_path: Path) -> None:
    driver = ScriptedDriver()
    call, _ = make_call(tmp_path, driver)
    call.start()
    driver.push(*[ev.ProtocolIssue(f"bad {i}") for i in range(19)])
    driver.push(ev.AgentText("fine"))  # a valid message resets the run
    driver.push(*[ev.ProtocolIssue(f"bad {i}") for i in range(20)])
    assert call.wait(2)
    result = call.close()
    assert isinstance(result.error, ProtocolError) and "20 malformed" in str(result.error)
    assert result.outcome.reason is EndReason.PROTOCOL_ERROR
    assert result.summary.protocol_errors == 39


def test_marks_are_answered_after_their_audio_and_functions_answered(tmp_path: Path) -> None:
    driver = ScriptedDriver(protocol=ProtocolName.CALL)
    call, records = make_call(tmp_path, driver)
    call.start()
    driver.push(ev.AgentAudio(tone(8000, 100)), ev.PlaybackMark("m1"))
    deadline = time.monotonic() + 2
    while not driver.sent.marks and time.monotonic() < deadline:
        time.sleep(0.01)
    call.hang_up()
    call.wait(2)
    call.close()
    assert driver.sent.marks == ["m1"]
    assert types(records).index("mark") < types(records).index("mark_played")


def test_start_twice_is_refused(tmp_path: Path) -> None:
    call, _ = make_call(tmp_path, ScriptedDriver())
    call.start()
    with pytest.raises(CallStateError):
        call.start()
    call.close()
    assert call.close() is call.result  # idempotent


def test_close_before_start_gives_an_empty_summary(tmp_path: Path) -> None:
    call, records = make_call(tmp_path, ScriptedDriver())
    result = call.close()
    assert result.outcome.reason is EndReason.ABORTED and result.summary.duration_s == 0
    assert types(records) == ["summary"]
