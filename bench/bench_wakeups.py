"""What a wake-up costs here, doing nothing: the floor under every per-frame design.

    python bench/bench_wakeups.py                      # 10 s per variant, 3 runs
    python bench/bench_wakeups.py --seconds 20 --runs 5 --rate-hz 50

A headless call does little per 20 ms frame (read, encode, send; read, decode, play),
but it does it after waking a thread. On a VM a wake-up costs tens of microseconds of
CPU before any work: the kernel's timer and scheduler, then the interpreter and the
caches coming back. That cost is what separates aivoco's structure from the bare
clients' (bench/ref_*_client.py): which threads wake, how often, and through how much
machinery (docs/performance.md#floor). Each variant below runs alone in a fresh process
for --seconds after a one-second warm-up; its CPU (user + system, getrusage) is printed
as % of one core and as microseconds per wake-up, side by side with the first variant,
a thread sleeping to a deadline (what the bare clients' sending thread does):

  sleep      one thread, time.sleep() to a deadline every period: the bare clients' sender
  asyncio    an asyncio loop with a call_at() timer every period: the loop's own cost
  uvloop     the same on uvloop's loop (libuv, written in Cython), if it is installed: what
             a C event loop would save (not a dependency: docs/performance.md#floor)
  clock      aivoco's shared Clock (an asyncio loop on a grid) running one empty job
  clock+hop  the same job putting an event into aivoco's EventQueue, taken by a second
             thread blocked in get(): the hop from the network loop to a call's event
             thread, as agent calls make it for every message

No work is done in any of them, so the figures are pure structure; the machine must be
otherwise quiet (a busy core changes wake-up costs more than anything measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VARIANTS = ("sleep", "asyncio", "uvloop", "clock", "clock+hop")
WARMUP_S = 1.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _sleeper(period_s: float, stop: threading.Event, count: list[int]) -> None:
    deadline = time.monotonic()
    while not stop.is_set():
        deadline += period_s
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        count[0] += 1


def _run_sleep(period_s: float, seconds: float) -> int:
    stop, count = threading.Event(), [0]
    t = threading.Thread(target=_sleeper, args=(period_s, stop, count))
    t.start()
    time.sleep(seconds)
    stop.set()
    t.join()
    return count[0]


def _run_asyncio(period_s: float, seconds: float, uv: bool = False) -> int:
    loop = _uvloop().new_event_loop() if uv else asyncio.new_event_loop()
    count = [0]
    end = loop.time() + seconds

    def tick(at: float) -> None:
        count[0] += 1
        if at >= end:
            loop.stop()
            return
        loop.call_at(at + period_s, tick, at + period_s)

    loop.call_soon(tick, loop.time())
    loop.run_forever()
    loop.close()
    return count[0]


def _uvloop() -> Any:
    return importlib.import_module("uvloop")  # optional: not a dependency of aivoco


def _run_clock(period_s: float, seconds: float, hop: bool) -> int:
    from aivoco.audio.clock import Clock
    from aivoco.wire.events import EventQueue, Notice

    clock = Clock(name="bench-clock", grid_s=period_s)
    events = EventQueue()
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            events.get(None)  # woken once per tick; what it takes is not looked at

    consumer = threading.Thread(target=consume) if hop else None
    if consumer is not None:
        consumer.start()
    notice = Notice("tick")

    def job(now: float) -> None:
        if hop:
            events.put(notice)

    def failed(exc: BaseException) -> None:
        raise exc

    handle = clock.every(period_s, job, failed, urgent=True)
    time.sleep(seconds)
    handle.cancel()
    done.set()
    events.wake()
    if consumer is not None:
        consumer.join()
    return clock.wakeups


def child(variant: str, period_s: float, seconds: float) -> dict[str, float]:
    runners: dict[str, Callable[[float, float], int]] = {
        "sleep": _run_sleep,
        "asyncio": _run_asyncio,
        "uvloop": lambda p, s: _run_asyncio(p, s, uv=True),
        "clock": lambda p, s: _run_clock(p, s, hop=False),
        "clock+hop": lambda p, s: _run_clock(p, s, hop=True),
    }
    run = runners[variant]
    run(period_s, WARMUP_S)  # imports, first allocations, the loop's first turns
    cpu0, wall0 = _cpu_s(), time.monotonic()
    wakes = run(period_s, seconds)
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
    return {
        "cpu_pct": cpu / wall * 100,
        "us_per_wake": cpu / max(1, wakes) * 1e6,
        "wakes_per_s": wakes / wall,
    }


def measure(variant: str, period_s: float, seconds: float) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant]
    cmd += ["--period-s", repr(period_s), "--seconds", repr(seconds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured per run (10)")
    p.add_argument("--runs", type=int, default=3, help="runs per variant (3)")
    p.add_argument("--rate-hz", type=float, default=50.0, help="wake-ups a second (50)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--period-s", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.period_s, args.seconds)))
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variant(s): {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    if "uvloop" in variants and importlib.util.find_spec("uvloop") is None:
        print("uvloop: not installed, left out (pip install uvloop to measure it)")
        variants.remove("uvloop")
    period_s = 1.0 / args.rate_hz
    print(
        f"{len(variants)} variant(s) x {args.runs} run(s) x {args.seconds:g} s, "
        f"{args.rate_hz:g} wake-ups a second, interleaved"
    )
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for run in range(args.runs):  # interleaved, so a drift in the machine hits all alike
        for v in variants:
            r = measure(v, period_s, args.seconds)
            results[v].append(r)
            print(f"  run {run + 1} {v:10s} {r['cpu_pct']:6.3f} % ({r['us_per_wake']:.0f} us/wake)")
    ref = statistics.median(r["cpu_pct"] for r in results[variants[0]])
    print()
    head = "| variant | % of a core (median; range) | us per wake-up | wake-ups/s |"
    print(f"{head} vs {variants[0]} |")
    print("|---|---|---|---|---|")
    for v in variants:
        pcts = [r["cpu_pct"] for r in results[v]]
        us = statistics.median(r["us_per_wake"] for r in results[v])
        rate = statistics.median(r["wakes_per_s"] for r in results[v])
        med = statistics.median(pcts)
        ratio = f"{med / ref:.2f}x" if ref > 0 else "-"
        spread = f"{min(pcts):.3f}-{max(pcts):.3f}"
        print(f"| {v} | {med:.3f} ({spread}) | {us:.0f} | {rate:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
