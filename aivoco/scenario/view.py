"""What `aivoco test` shows while it runs: a line per turn, a live table on a terminal.

* plain (`--plain`, or stdout is not a terminal): one timestamped line per turn and per
  run, as they happen, failures indented beneath;
* JSON (`--json`): one object per turn (`"type": "turn"`), per run (`"run"`) and the
  totals (`"totals"`), on stdout;
* live (a terminal): the same turn lines scroll above a table of the runs in progress:
  scenario and run, current turn and step, microphone and agent meters, and the
  passes and failures so far. The table is cut to the terminal's height.

Listeners are called on call threads; a lock keeps lines whole.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aivoco.scenario.expect import TurnResult
from aivoco.scenario.report import clean, run_record, turn_line
from aivoco.scenario.runner import ActiveRun, RunListener, RunResult
from aivoco.text import utf8_line

_METER_WIDTH = 8
_METER_FLOOR_DBFS = -60.0


def _stamp() -> str:
    return dt.datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _who(run: ActiveRun) -> str:
    return f"{run.scenario.name} #{run.run}"


def run_line(result: RunResult) -> str:
    who = f"{result.scenario} #{result.run}"
    if result.cancelled:
        return f"{who}: cancelled"
    if result.error is not None:
        return f"{who}: ERROR {result.error}"
    verdict = "PASS" if result.passed else "FAIL"
    return f"{who}: {verdict} ({len(result.turns)} turns, {result.duration_s:.1f} s)"


class PlainOutput(RunListener):
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _write(self, lines: list[str]) -> None:
        with self._lock:
            for line in lines:
                self.stream.write(clean(line) + "\n")
            self.stream.flush()

    def run_started(self, run: ActiveRun) -> None:
        self._write([f"{_stamp()} {_who(run)}: calling ({run.scenario.protocol.value})"])

    def turn_done(self, run: ActiveRun, turn: TurnResult) -> None:
        lines = [f"{_stamp()} {_who(run)}: {turn_line(turn)}"]
        lines += [f"    {m}" for m in turn.failures]
        self._write(lines)

    def run_done(self, run: ActiveRun, result: RunResult) -> None:
        lines = [f"{_stamp()} {run_line(result)}"]
        lines += [f"    {m}" for m in result.failures]
        self._write(lines)


class JsonOutput(RunListener):
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, record: dict[str, Any]) -> None:
        line = utf8_line(json.dumps(record, ensure_ascii=False, default=str))
        with self._lock:
            self.stream.write(line.decode("utf-8") + "\n")
            self.stream.flush()

    def turn_done(self, run: ActiveRun, turn: TurnResult) -> None:
        self.emit(
            {"type": "turn", "scenario": run.scenario.name, "run": run.run, **turn.to_record()}
        )

    def run_done(self, run: ActiveRun, result: RunResult) -> None:
        self.emit({"type": "run", **run_record(result)})


class LiveOutput(RunListener):
    """Turn lines above a live table of the runs in progress."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._active: dict[int, ActiveRun] = {}
        self._passed = self._failed = 0
        self._live = Live(
            get_renderable=self.render, console=console, refresh_per_second=8, transient=True
        )

    def __enter__(self) -> LiveOutput:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def run_started(self, run: ActiveRun) -> None:
        with self._lock:
            self._active[id(run)] = run

    def turn_done(self, run: ActiveRun, turn: TurnResult) -> None:
        mark = "[green]✓[/]" if turn.passed else "[bold red]✗[/]"
        lines = [f"{mark} {escape(clean(_who(run)))}: {escape(clean(turn_line(turn)))}"]
        lines += [f"    [red]{escape(clean(m))}[/]" for m in turn.failures]
        self.console.print("\n".join(lines), highlight=False, soft_wrap=True)

    def run_done(self, run: ActiveRun, result: RunResult) -> None:
        with self._lock:
            self._active.pop(id(run), None)
            if result.passed:
                self._passed += 1
            elif not result.cancelled:
                self._failed += 1
        style = "green" if result.passed else "bold red"
        text = Text(clean(run_line(result)), style=style)
        self.console.print(text)
        for m in result.failures:
            self.console.print(Text(f"    {clean(m)}", style="red"))

    def render(self) -> RenderableType:
        with self._lock:
            runs = list(self._active.values())
            passed, failed = self._passed, self._failed
        room = max(1, self.console.size.height - 6)
        table = Table(box=None, pad_edge=False, expand=False)
        for name in ("run", "turn", "you", "agent", "so far"):
            table.add_column(name, no_wrap=True, overflow="ellipsis")
        for run in runs[:room]:
            table.add_row(*_row(run))
        tally = f"runs: {passed} passed, {failed} failed, {len(runs)} in progress"
        if len(runs) > room:
            tally += f" ({len(runs) - room} not shown)"
        return Group(table, Text(tally, style="bold"))


def _row(run: ActiveRun) -> tuple[str, str, str, str, str]:
    call, source = run.call, run.source
    turn = "connecting"
    if source is not None and source.turn_no:
        turn = f"{source.turn_no}/{len(run.scenario.turns)} {source.step.value}"
    mic = agent = _METER_FLOOR_DBFS
    if call is not None:
        snap = call.state.snapshot()
        mic, agent = snap.mic_dbfs, snap.agent_dbfs
    done = list(run.turn_results)
    fails = sum(1 for t in done if not t.passed)
    so_far = f"{len(done) - fails} ok" + (f", {fails} failed" if fails else "")
    return (clean(_who(run))[:32], turn, _meter(mic), _meter(agent), so_far)


def _meter(dbfs: float) -> str:
    level = min(1.0, max(0.0, (dbfs - _METER_FLOOR_DBFS) / -_METER_FLOOR_DBFS))
    filled = round(level * _METER_WIDTH)
    return "█" * filled + "·" * (_METER_WIDTH - filled)
