"""One run of one scenario: a real call in this process, checked turn by turn.

The call is the same `aivoco.session` call the commands run (`open_call`), with three
parts replaced: the script as its microphone (`ScriptSource`), a virtual speaker that
plays the agent in real time (`ClockPlayer`: marks, barge-in and the recording behave
as with a speaker), and the real driver wrapped by `ProbeDriver` for the timing. The
script hangs up after its last turn; the scenario's `timeout` bounds the whole run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aivoco.errors import AivocoError
from aivoco.scenario.expect import TurnResult, check_end, check_turn, reconnects_of
from aivoco.scenario.prepare import PreparedScenario
from aivoco.scenario.probe import AgentTracker, ProbeDriver, UplinkLog
from aivoco.scenario.script import ScriptSource, TurnTiming
from aivoco.session.call import Call
from aivoco.session.interfaces import MarkToken
from aivoco.session.lifecycle import EndReason
from aivoco.session.options import CallOptions
from aivoco.session.summary import CallSummary
from aivoco.wire.driver import Driver

_GOODBYE_BOUND_S = 5.0  # after the hang-up: the goodbye and the server's final word


@dataclass(frozen=True)
class RunSettings:
    """What the command line adds to every scenario."""

    key: str | None
    url: str | None = None  # overrides the scenario's
    agent: str | None = None  # overrides the scenario's
    record_dir: Path | None = None
    connect_timeout_s: float = 10.0


@dataclass
class RunResult:
    scenario: str
    file: str
    run: int
    turns: list[TurnResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # end checks, timeout, early end
    error: AivocoError | None = None  # the call failed (auth, connection, ...)
    cancelled: bool = False  # never ran, or was stopped (--fail-fast, Ctrl-C)
    duration_s: float = 0.0
    summary: CallSummary | None = None
    slips_ms: list[float] = field(default_factory=list)
    recording: str | None = None
    transcript: str | None = None

    @property
    def passed(self) -> bool:
        return not self.cancelled and self.error is None and not self.all_failures

    @property
    def all_failures(self) -> list[str]:
        return [m for t in self.turns for m in t.failures] + self.failures


class RunListener:
    """What a run reports while it happens (called on call threads; keep it quick)."""

    def run_started(self, run: ActiveRun) -> None: ...
    def turn_done(self, run: ActiveRun, turn: TurnResult) -> None: ...
    def run_done(self, run: ActiveRun, result: RunResult) -> None: ...


class ActiveRun:
    """A run in progress: its call (for meters and cancelling) and its script."""

    def __init__(
        self,
        prepared: PreparedScenario,
        run: int,
        settings: RunSettings,
        make_driver: Callable[[CallOptions], Driver] | None = None,
        name: str | None = None,
    ) -> None:
        self.prepared = prepared
        self.name = name or prepared.scenario.slug  # unique per scenario, for file names
        self.make_driver = make_driver  # None: the protocol's real driver
        self.scenario = prepared.scenario
        self.run = run
        self.settings = settings
        self.turn_results: list[TurnResult] = []
        self.uplink = UplinkLog(prepared.frame_ms / 1000)
        self.tracker = AgentTracker()
        self.call: Call | None = None
        self.source: ScriptSource | None = None
        self.reconnect_records = 0
        self._live_at: float | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop this run from any thread: hang up (the run is reported as cancelled)."""
        self._cancelled.set()
        call = self.call
        if call is not None:
            call.hang_up(EndReason.INTERRUPTED)

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def on_record(self, record: dict[str, Any]) -> None:
        kind = record.get("type")
        if kind == "ready" and self._live_at is None:
            self._live_at = time.monotonic()
        elif isinstance(kind, str) and kind.startswith("reconnect") and kind != "reconnecting":
            self.reconnect_records += 1

    def file_stem(self) -> str:
        return f"{self.name}-run{self.run:03d}"


def run_once(
    prepared: PreparedScenario, run: int, settings: RunSettings, listener: RunListener
) -> RunResult:
    active = ActiveRun(prepared, run, settings)
    return execute(active, listener)


def execute(active: ActiveRun, listener: RunListener) -> RunResult:
    s = active.scenario
    result = RunResult(s.name, str(s.path), active.run)
    if active.is_cancelled():
        result.cancelled = True
        return result
    started = time.monotonic()
    try:
        call = _open(active, listener, result)
    except AivocoError as exc:
        result.error = exc
        listener.run_done(active, result)
        return result
    active.call = call
    listener.run_started(active)
    call.start(wait=False)
    if active.is_cancelled():  # cancel() may have come before the call could hang up
        call.hang_up(EndReason.INTERRUPTED)
    remaining = s.timeout_s - (time.monotonic() - started)
    if not call.wait(max(0.0, remaining)):
        turn = active.source.turn_no if active.source else 0
        result.failures.append(
            f"timeout {s.timeout_s:g} s: the scenario was still in turn {turn} of {len(s.turns)}"
        )
        call.hang_up(EndReason.MAX_DURATION)
        call.wait(_GOODBYE_BOUND_S)
    outcome = call.close()
    _finish(active, result, outcome.summary, outcome.error, time.monotonic() - started)
    listener.run_done(active, result)
    return result


def _open(active: ActiveRun, listener: RunListener, result: RunResult) -> Call:
    from aivoco.audio.playout import ClockPlayer
    from aivoco.session.build import build_driver, open_call

    options = _options(active, result)
    options.check()
    functions = active.prepared.functions

    def probed() -> ProbeDriver:
        made = active.make_driver
        inner = made(options) if made else build_driver(options, functions)
        return ProbeDriver(inner, active.uplink, active.tracker)

    driver = probed()

    def turn_done(timing: TurnTiming) -> None:
        turn = active.prepared.turns[timing.index - 1].turn
        live_at = active._live_at if active._live_at is not None else timing.started_at
        checked = check_turn(turn, timing, live_at)
        active.turn_results.append(checked)
        listener.turn_done(active, checked)

    def script_done() -> None:
        if active.call is not None:
            active.call.hang_up(EndReason.HANGUP)

    source = ScriptSource(active.prepared, active.uplink, active.tracker, script_done, turn_done)
    active.source = source
    player: ClockPlayer[MarkToken] = ClockPlayer(driver.downlink_rate_hz)
    # A reconnect is a failure unless the scenario allows it (expect.py): then a dropped
    # call comes back through the same probe, so its timing stays on one timeline.
    reconnect = probed if active.scenario.allow_reconnect else None
    call = open_call(
        options,
        driver=driver,
        source=source,
        player=player,
        functions=functions,
        reconnect=reconnect,
    )
    call.subscribe(active)
    return call


def _options(active: ActiveRun, result: RunResult) -> CallOptions:
    s, settings = active.scenario, active.settings
    record = transcript = None
    if settings.record_dir is not None:
        stem = active.file_stem()
        record = settings.record_dir / f"{stem}.wav"
        transcript = settings.record_dir / f"{stem}.jsonl"
        result.recording, result.transcript = str(record), str(transcript)
    return CallOptions(
        protocol=s.protocol,
        key=s.key or settings.key,
        url=settings.url or s.url,
        agent=settings.agent or s.agent,
        voice=s.voice or "female",
        system=s.system,
        functions=s.functions,
        chunk_ms=active.prepared.frame_ms,
        # The script hangs up itself; the idle timer only backs it up.
        idle_timeout_s=max(s.timeout_s, 1.0),
        connect_timeout_s=settings.connect_timeout_s,
        record_file=record,
        transcript_file=transcript,
        label=f"{s.name} #{active.run}",
    )


def _finish(
    active: ActiveRun,
    result: RunResult,
    summary: CallSummary,
    error: AivocoError | None,
    duration_s: float,
) -> None:
    s = active.scenario
    result.turns = list(active.turn_results)
    result.summary = summary
    result.duration_s = duration_s
    result.slips_ms = active.uplink.slips_ms()
    result.cancelled = active.is_cancelled()
    if error is not None and not result.cancelled:
        result.error = error
        return
    done = active.source is not None and active.source.finished
    if not done and not result.cancelled and not result.failures:
        result.failures.append(
            f"the call ended ({summary.reason}) in turn {len(result.turns) + 1} "
            f"of {len(s.turns)}, before the script was done"
        )
    reconnects = reconnects_of(summary, active.reconnect_records)
    result.failures.extend(check_end(s.end, summary, s.allow_reconnect, reconnects))
