"""The body of `aivoco test`: check everything, run, report, pick the exit code.

Order matters for the promises the command makes: every scenario problem (and a missing
key or agent) is found before any call; report files are checked for writability
before the runs, so a long load run never ends without its report; reports are written
whatever the runs' outcome, also after Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from aivoco.cli.options import OutputMode, OutputOptions
from aivoco.errors import AudioFileError, ScenarioFailedError, UsageError
from aivoco.redact import register_secret
from aivoco.scenario._yaml import Problem, ScenarioFileError
from aivoco.scenario.load import LoadPlan, LoadRunner, totals
from aivoco.scenario.model import Scenario
from aivoco.scenario.parse import load_scenarios
from aivoco.scenario.prepare import prepare_all
from aivoco.scenario.report import check_writable, json_report, junit_xml, write_atomically
from aivoco.scenario.runner import RunListener, RunResult, RunSettings
from aivoco.scenario.tables import tables
from aivoco.scenario.view import JsonOutput, LiveOutput, PlainOutput
from aivoco.session.options import CallOptions


class TestCommand:
    def __init__(
        self,
        paths: list[Path],
        *,
        key: str | None,
        url: str | None,
        agent: str | None,
        junit: Path | None,
        report: Path | None,
        record_dir: Path | None,
        repeat: int,
        concurrency: int,
        fail_fast: bool,
        connect_timeout_s: float,
        plain: bool,
        as_json: bool,
    ) -> None:
        self.paths = paths
        self.settings = RunSettings(
            key=(key or "").strip() or None,
            url=url,
            agent=agent,
            record_dir=record_dir,
            connect_timeout_s=connect_timeout_s,
        )
        self.junit, self.report = junit, report
        self.plan = LoadPlan(repeat, concurrency, fail_fast)
        self.mode = OutputOptions(plain=plain, as_json=as_json).mode()
        self.console = Console(highlight=False)

    def run(self) -> None:
        prepared = prepare_all(self._scenarios())
        check_writable([self.junit, self.report])
        self._record_dir()
        started = dt.datetime.now(dt.timezone.utc)
        listener = self._listener()
        runner = LoadRunner(prepared, self.settings, self.plan, listener)
        view: AbstractContextManager[Any] = (
            listener if isinstance(listener, LiveOutput) else nullcontext()
        )
        with _Interrupts(runner) as interrupts, view:
            results = runner.run()
        summary = totals(results, runner.finished_at - runner.started_at)
        if isinstance(listener, JsonOutput):
            listener.emit({"type": "totals", **summary.to_record()})
        else:
            for table in tables(results, summary):
                self.console.print(table)
        self._write_reports(results, summary, started)
        if interrupts.count:
            raise KeyboardInterrupt
        _raise_outcome(results)

    def _scenarios(self) -> list[Scenario]:
        problems: list[Problem] = []
        try:
            scenarios = load_scenarios(self.paths, agent_given=bool(self.settings.agent))
        except ScenarioFileError as exc:
            problems, scenarios = list(exc.problems), []
        if self.settings.key is None:
            problems.append(
                Problem(
                    Path("command line"),
                    0,
                    "--key",
                    "no API key: pass --key KEY or set AIVOCO_API_KEY",
                )
            )
        else:
            register_secret(self.settings.key)
        for s in scenarios:
            problems.extend(self._settings_problems(s))
        if problems:
            raise ScenarioFileError(problems)
        return scenarios

    def _settings_problems(self, s: Scenario) -> list[Problem]:
        options = CallOptions(
            protocol=s.protocol,
            key=self.settings.key or "-",
            url=self.settings.url or s.url,
            agent=self.settings.agent or s.agent,
        )
        try:
            options.check()
            options.resolved_url()
        except UsageError as exc:
            message = str(exc).replace(
                "--agent must not be empty", "no agent: set agent: or pass --agent"
            )
            return [Problem(s.path, 0, "", message)]
        return []

    def _record_dir(self) -> None:
        folder = self.settings.record_dir
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AudioFileError(
                f"cannot create --record-dir {folder}: {exc.strerror or exc}"
            ) from exc

    def _listener(self) -> RunListener:
        if self.mode is OutputMode.JSON:
            return JsonOutput()
        if self.mode is OutputMode.PLAIN:
            return PlainOutput()
        return LiveOutput(self.console)

    def _write_reports(self, results: list[RunResult], summary: Any, started: dt.datetime) -> None:
        if self.junit is not None:
            write_atomically(self.junit, junit_xml(results, summary, started))
        if self.report is not None:
            settings = {
                "scenarios": [str(p) for p in self.paths],
                "repeat": self.plan.repeat,
                "concurrency": self.plan.concurrency,
                "fail_fast": self.plan.fail_fast,
                "url": self.settings.url,
                "agent": self.settings.agent,
            }
            write_atomically(self.report, json_report(results, summary, started, settings))


def _raise_outcome(results: list[RunResult]) -> None:
    """The first call error decides the exit code (auth, credits, connection...); else
    any failed expectation is exit code 10."""
    for r in results:
        if r.error is not None:
            raise r.error
    failed = [r for r in results if not r.passed and not r.cancelled]
    if failed:
        first = failed[0].all_failures[0] if failed[0].all_failures else "failed"
        raise ScenarioFailedError(
            f"{len(failed)} of {len(results)} run(s) failed their expectations; first: {first}"
        )


class _Interrupts:
    """Ctrl-C once: hang up every call and start no more (reports are still written);
    twice: leave at once (exit code 130)."""

    def __init__(self, runner: LoadRunner) -> None:
        self.runner = runner
        self.count = 0
        self._previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        threading.Thread(target=self.runner.stop, name="aivoco-test-stop", daemon=True).start()

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
