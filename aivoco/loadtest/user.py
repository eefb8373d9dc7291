"""`ScenarioUser`: a Locust user whose task is one scenario run (see the package doc)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from typing import Any, ClassVar

import gevent
from gevent.event import AsyncResult
from locust import User, events, task


class EngineClient:
    """One engine process per Locust process; users wait on their own reply."""

    _instance: ClassVar[EngineClient | None] = None
    _guard = threading.Lock()  # a gevent lock once Locust patched the process

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aivoco.loadtest.engine"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._ids = itertools.count(1)
        self._waiting: dict[int, AsyncResult] = {}
        self._reader = gevent.spawn(self._read)

    @classmethod
    def get(cls) -> EngineClient:
        with cls._guard:
            if cls._instance is None or cls._instance.proc.poll() is not None:
                cls._instance = EngineClient()
            return cls._instance

    @classmethod
    def shutdown(cls) -> None:
        with cls._guard:
            engine, cls._instance = cls._instance, None
        if engine is not None:
            engine.close()

    def run(self, scenario: str, url: str | None, agent: str | None) -> dict[str, Any]:
        ident = next(self._ids)
        waiter = AsyncResult()
        self._waiting[ident] = waiter
        request = {"id": ident, "scenario": scenario, "url": url, "agent": agent}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        try:
            reply: dict[str, Any] = waiter.get()
        finally:
            self._waiting.pop(ident, None)
        return reply

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            reply = json.loads(line)
            waiter = self._waiting.get(reply.get("id"))
            if waiter is not None:
                waiter.set(reply)
        for waiter in list(self._waiting.values()):  # the engine died: nobody waits forever
            waiter.set({"problem": "the aivoco engine process ended"})

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # the engine hangs up its calls and exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _stop_engine(environment: Any, **kwargs: Any) -> None:
    EngineClient.shutdown()


class ScenarioUser(User):
    """Set `scenarios` (paths); optionally `url` and `agent` (else the scenario's, else
    the environment's, as `aivoco test`). The key comes from AIVOCO_API_KEY."""

    abstract = True
    scenarios: ClassVar[list[str]] = []
    url: ClassVar[str | None] = None
    agent: ClassVar[str | None] = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._next = itertools.cycle(self.scenarios) if self.scenarios else None

    @task
    def run_scenario(self) -> None:
        if self._next is None:
            raise ValueError(f"{type(self).__name__}.scenarios is empty")
        scenario = next(self._next)
        reply = EngineClient.get().run(scenario, self.url, self.agent)
        fire = self.environment.events.request.fire
        if "problem" in reply:
            fire(request_type="scenario", name=scenario, response_time=0, response_length=0,
                 exception=RuntimeError(reply["problem"]), context={})  # fmt: skip
            return
        run = reply["run"]
        for turn in run["turns"]:
            within = turn["reply_within_s"]
            ms = within * 1000 if within is not None else turn["duration_s"] * 1000
            failed = "; ".join(turn["failures"])
            fire(
                request_type="turn",
                name=f"{run['scenario']} / turn {turn['turn']}: {turn['label']}",
                response_time=ms, response_length=0,
                exception=AssertionError(failed) if failed else None, context={},
            )  # fmt: skip
        problem = run["error"]["message"] if run["error"] else "; ".join(run["failures"])
        fire(
            request_type="scenario", name=run["scenario"], response_time=run["duration_s"] * 1000,
            response_length=0, exception=AssertionError(problem) if problem else None, context={},
        )  # fmt: skip
