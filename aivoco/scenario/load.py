"""Many runs at once, in this process: `--repeat M --concurrency N`.

M runs of each scenario go into one queue, and N worker threads take them in order,
each running one call at a time (no subprocess per call: a call is a few threads of
this process). `--fail-fast` cancels the runs in progress and skips the rest after the
first failure; `stop()` (Ctrl-C) does the same for every run.
"""

from __future__ import annotations

import importlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from aivoco.scenario.prepare import PreparedScenario
from aivoco.scenario.runner import ActiveRun, RunListener, RunResult, RunSettings, execute
from aivoco.wire.driver import ProtocolName


@dataclass(frozen=True)
class LoadPlan:
    repeat: int = 1
    concurrency: int = 1
    fail_fast: bool = False


class LoadRunner:
    def __init__(
        self,
        prepared: list[PreparedScenario],
        settings: RunSettings,
        plan: LoadPlan,
        listener: RunListener,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.listener = listener
        names = _file_names(prepared)
        self.runs = [
            ActiveRun(p, n, settings, name=name)
            for p, name in zip(prepared, names, strict=True)
            for n in range(1, plan.repeat + 1)
        ]
        self.results: list[RunResult | None] = [None] * len(self.runs)
        self._todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.started_at = 0.0
        self.finished_at = 0.0

    def run(self) -> list[RunResult]:
        """Run everything; returns one result per run, in scenario then run order."""
        for i in range(len(self.runs)):
            self._todo.put(i)
        _import_drivers({run.scenario.protocol for run in self.runs})
        self.started_at = time.monotonic()
        workers = [
            threading.Thread(target=self._work, name=f"aivoco-test-{n}", daemon=True)
            for n in range(max(1, min(self.plan.concurrency, len(self.runs))))
        ]
        for w in workers:
            w.start()
        for w in workers:
            while w.is_alive():
                w.join(0.1)  # short joins keep the main thread responsive to Ctrl-C
        self.finished_at = time.monotonic()
        return [r for r in self.results if r is not None]

    def stop(self) -> None:
        """Cancel everything (Ctrl-C): running calls hang up, the rest never start."""
        self._stopping.set()
        for run in self.runs:
            run.cancel()

    def _work(self) -> None:
        while True:
            try:
                i = self._todo.get_nowait()
            except queue.Empty:
                return
            run = self.runs[i]
            if self._stopping.is_set():
                run.cancel()
            result = execute(run, self.listener)
            self.results[i] = result
            if self.plan.fail_fast and not result.passed and not result.cancelled:
                self.stop()


def _file_names(prepared: list[PreparedScenario]) -> list[str]:
    """Scenario names as file-name parts, numbered where two would collide."""
    slugs = [p.scenario.slug for p in prepared]
    return [s if slugs.count(s) == 1 else f"{s}-{i + 1}" for i, s in enumerate(slugs)]


def _import_drivers(protocols: set[ProtocolName]) -> None:
    """Import the drivers once, here: N calls starting at once otherwise queue on the
    import lock (seen as the top start-up cost with 20 calls in bench_load.py)."""
    for protocol in protocols:
        name = "sts_driver" if protocol is ProtocolName.STS else "call_driver"
        importlib.import_module(f"aivoco.protocols.{name}")


@dataclass(frozen=True)
class Figures:
    count: int
    p50: float | None
    p95: float | None
    max: float | None

    def to_record(self, digits: int = 3) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, digits)

        return {"count": self.count, "p50": r(self.p50), "p95": r(self.p95), "max": r(self.max)}


def figures(values: list[float]) -> Figures:
    if not values:
        return Figures(0, None, None, None)
    arr = np.asarray(values, dtype=np.float64)
    p50, p95 = np.percentile(arr, [50, 95])
    return Figures(len(values), float(p50), float(p95), float(arr.max()))


@dataclass(frozen=True)
class Totals:
    runs: int
    passed: int
    failed: int  # expectations failed
    errors: int  # the call itself failed
    cancelled: int
    calls_completed: int  # calls that ran to their end without an error
    reply_within_s: Figures
    slip_ms: Figures
    wall_s: float

    def to_record(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "cancelled": self.cancelled,
            "calls_completed": self.calls_completed,
            "calls_failed": self.failed + self.errors,
            "reply_within_s": self.reply_within_s.to_record(),
            "slip_ms": self.slip_ms.to_record(1),
            "wall_s": round(self.wall_s, 2),
        }


def totals(results: list[RunResult], wall_s: float) -> Totals:
    ran = [r for r in results if not r.cancelled]
    errors = [r for r in ran if r.error is not None]
    failed = [r for r in ran if r.error is None and not r.passed]
    latencies = [t.reply_within_s for r in results for t in r.turns if t.reply_within_s is not None]
    slips = [s for r in ran for s in r.slips_ms]
    return Totals(
        runs=len(results),
        passed=sum(r.passed for r in results),
        failed=len(failed),
        errors=len(errors),
        cancelled=len(results) - len(ran),
        calls_completed=len(ran) - len(errors),
        reply_within_s=figures(latencies),
        slip_ms=figures(slips),
        wall_s=wall_s,
    )
