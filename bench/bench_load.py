"""How many concurrent `aivoco test` calls one process sustains against the emulator.

    .venv/bin/python bench/bench_load.py [--levels 10,20,30,40,50] [--protocol sts]

The emulator runs in its own process (`aivoco emulate`), so its CPU is not counted as
ours, though it shares the machine. For each level N, N runs of a two-turn scenario
start at once in this process (`LoadRunner`, no subprocess per call). Per level it
prints: calls passed/failed, the uplink's real-time slip (how late frames went out
compared to their schedule: p50 / p99 / max), reply_within p50 / p95, this process's
CPU (all threads) as a share of one core, in total and per call, the emulator's CPU,
and this process's peak RSS during the level with what it added per call (over the
RSS before the level started).

A level is *sustained* when every call passed and the slip's p99 stayed under 20 ms
(the max is printed beside it: a single late frame from a GC pause or the scheduler
shows there). The reference figure is the issue's goal: 50 calls on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m

from aivoco.scenario.load import LoadPlan, LoadRunner, figures, totals
from aivoco.scenario.parse import load_scenarios
from aivoco.scenario.prepare import PreparedScenario, prepare_all
from aivoco.scenario.runner import RunListener, RunSettings

GOAL_CALLS = 50
SLIP_LIMIT_MS = 20.0
SCENARIO = """\
name: bench
protocol: {protocol}
{agent}timeout: 120
reply_quiet: 0.5
turns:
  - say: "Hello, this is a load test of the voice agent."
    expect: {{reply_within: 3}}
  - say: "Thank you, goodbye."
    expect: {{reply_within: 3}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "aivoco", "emulate", "--port", str(port), "--credits", "1000000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("the emulator did not start")


def cpu_s_of(pid: int) -> float:
    """CPU seconds (user + system) another process used so far (Linux /proc)."""
    sample = m.read_process(pid, threads=False)
    return 0.0 if sample is None else sample.ticks / m.CLK_TCK


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    sample = m.read_process(os.getpid(), threads=False)
    return 0.0 if sample is None else sample.rss_kb / 1000


class PeakRss:
    """The highest RSS of this process while a level runs, sampled every 0.25 s."""

    def __init__(self) -> None:
        self.peak_mb = rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.25):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())


def level(
    prepared: list[PreparedScenario], url: str, calls: int, emulator_pid: int
) -> dict[str, float]:
    runner = LoadRunner(
        prepared, RunSettings(key="bench-key-0000", url=url), LoadPlan(calls, calls), RunListener()
    )
    base_mb = rss_mb()
    cpu0, wall0, emu0 = time.process_time(), time.monotonic(), cpu_s_of(emulator_pid)
    with PeakRss() as rss:
        results = runner.run()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    emu_cores = (cpu_s_of(emulator_pid) - emu0) / wall
    t = totals(results, wall)
    slips = figures([s for r in results for s in r.slips_ms])
    p99 = sorted(s for r in results for s in r.slips_ms)
    slip_p99 = p99[int(0.99 * (len(p99) - 1))] if p99 else 0.0
    return {
        "calls": calls,
        "passed": t.passed,
        "failed": t.failed + t.errors,
        "slip_p50": slips.p50 or 0.0,
        "slip_p99": slip_p99,
        "slip_max": slips.max or 0.0,
        "reply_p50": t.reply_within_s.p50 or 0.0,
        "reply_p95": t.reply_within_s.p95 or 0.0,
        "cpu_cores": cpu / wall,
        "cpu_per_call_pct": 100 * cpu / wall / calls,
        "emulator_cores": emu_cores,
        "rss_peak_mb": rss.peak_mb,
        "rss_per_call_mb": max(0.0, rss.peak_mb - base_mb) / calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,20,30,40,50,60")
    parser.add_argument("--protocol", choices=["sts", "call"], default="sts")
    parser.add_argument(
        "--switch-interval-ms", type=float, default=None,
        help="sys.setswitchinterval for this process (Python's default: 5 ms)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    port = free_port()
    emulator = start_emulator(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.yaml"
            agent = "agent: bench-agent\n" if args.protocol == "call" else ""
            path.write_text(SCENARIO.format(protocol=args.protocol, agent=agent))
            prepared = prepare_all(load_scenarios([path]))
            url = (
                f"http://127.0.0.1:{port}"
                if args.protocol == "sts"
                else f"ws://127.0.0.1:{port}/ws"
            )
            load = os.getloadavg()[0]
            print(
                f"{os.cpu_count()} CPUs, load average {load:.1f} before the run; protocol"
                f" {args.protocol}; switch interval {sys.getswitchinterval() * 1000:g} ms"
            )
            header = (
                f"{'calls':>5} {'ok':>4} {'fail':>4} {'slip p50':>9} {'p99':>7} {'max':>7}"
                f" {'reply p50':>9} {'p95':>6} {'CPU cores':>9} {'CPU/call':>9} {'emulator':>8}"
                f" {'RSS peak':>9} {'RSS/call':>9}"
            )
            print(header)
            sustained = 0
            for calls in (int(x) for x in args.levels.split(",")):
                f = level(prepared, url, calls, emulator.pid)
                ok = f["failed"] == 0 and f["slip_p99"] < SLIP_LIMIT_MS
                sustained = calls if ok else sustained
                print(
                    f"{calls:>5} {f['passed']:>4.0f} {f['failed']:>4.0f} {f['slip_p50']:>7.1f}ms"
                    f" {f['slip_p99']:>5.1f}ms {f['slip_max']:>5.0f}ms {f['reply_p50']:>8.2f}s"
                    f" {f['reply_p95']:>5.2f}s {f['cpu_cores']:>9.2f}"
                    f" {f['cpu_per_call_pct']:>8.1f}% {f['emulator_cores']:>8.2f}"
                    f" {f['rss_peak_mb']:>7.0f}MB {f['rss_per_call_mb']:>7.2f}MB"
                    + ("" if ok else "  <- not sustained"),
                    flush=True,
                )
            print(f"sustained: {sustained} concurrent calls (reference: the goal of {GOAL_CALLS})")
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
