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
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from aivoco.cli.configured import PROFILE_PARAM
from aivoco.cli.options import OutputMode, OutputOptions
from aivoco.config import ConfigError, From, Resolved
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
from aivoco.session.options import CallOptions, cli_fields
from aivoco.wire.driver import ProtocolName


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
        profile: str | None = None,
        ctx: Any = None,
    ) -> None:
        self.paths = paths
        # As given (flag, variable or nothing): each scenario resolves them with the
        # config file, since a scenario may name its own profile (`profile:`).
        self.given = {"key": key, "url": url, "agent": agent, PROFILE_PARAM: profile}
        self.ctx = ctx
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
        self._warned: set[str] = set()

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
        # What every scenario starts from (flags, variables, --profile, [defaults]): a
        # call scenario may then omit agent:, and without a key nothing can run.
        base = self._resolve(None, ProtocolName.CALL)
        try:
            scenarios = load_scenarios(self.paths, agent_given=bool(base.values.get("agent")))
        except ScenarioFileError as exc:
            problems = list(exc.problems)
            if not base.values.get("key"):
                problems.append(_no_key(Path("command line"), base.notes))
            raise ScenarioFileError(problems) from None
        configured, problems = [], []
        for s in scenarios:
            own = self._configure(s)
            if isinstance(own, Scenario):
                configured.append(own)
                own = self._settings_problems(own)
            problems.extend(own)
        if problems:
            unique = list(dict.fromkeys(problems))  # one missing key, not one per scenario
            raise ScenarioFileError(unique)
        return configured

    def _resolve(self, s: Scenario | None, protocol: ProtocolName) -> Resolved:
        from aivoco.cli.configured import given_values, resolve_given, warn

        given = given_values(self.ctx, self.given)
        options = [f for f in cli_fields(protocol.value) if f[0] in self.given]
        resolved = resolve_given(given, options, protocol, s.profile if s else None)
        warn([w for w in resolved.warnings if w not in self._warned])
        self._warned.update(resolved.warnings)
        return resolved

    def _configure(self, s: Scenario) -> Scenario | list[Problem]:
        """`s` with its key, URL and agent, or what is missing: the command line > the
        scenario's own url: and agent: > the environment > the profile (--profile or
        $AIVOCO_PROFILE, else the scenario's profile:) > [defaults] > built-in."""
        try:
            resolved = self._resolve(s, s.protocol)
        except ConfigError as exc:
            if self.given[PROFILE_PARAM] or not s.profile:
                raise  # the config file or --profile: the same for every scenario
            return [Problem(s.path, s.line, "profile", str(exc))]
        values, origins = resolved.values, resolved.origins
        url = values["url"] if origins["url"].source is From.FLAG else s.url or values["url"]
        agent = values.get("agent", s.agent)  # sts scenarios take none
        if "agent" in values and origins["agent"].source is not From.FLAG:
            agent = s.agent or values["agent"]
        key = (values["key"] or "").strip() or None
        problems = []
        if key is None:
            problems.append(
                _no_key(Path("command line") if s.profile is None else s.path, resolved.notes)
            )
        if s.protocol is ProtocolName.CALL and not agent:
            message = "missing: the agent to call (or pass --agent ID)"
            problems.append(Problem(s.path, s.line, "agent", message))
        if problems:
            return problems
        register_secret(key)
        return replace(s, key=key, url=url, agent=agent)

    def _settings_problems(self, s: Scenario) -> list[Problem]:
        options = CallOptions(protocol=s.protocol, key=s.key or "-", url=s.url, agent=s.agent)
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


def _no_key(where: Path, notes: list[str]) -> Problem:
    why = "".join(f"; {n}" for n in notes)
    return Problem(where, 0, "--key", f"no API key: pass --key KEY or set AIVOCO_API_KEY{why}")


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
