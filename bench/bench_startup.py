"""Startup time of `aivoco --help`, `--version` and `sts --help`, beside the reference:
`python -c "import typer"`, the least any Typer command line can cost.

Each command runs in a fresh interpreter, interleaved with the reference (so a busy
machine slows both alike); the table shows medians and each command's excess over the
reference. The goal (README, "Startup"): at most 0.2 s over the reference.

    .venv/bin/python bench/bench_startup.py            # 10 rounds
    .venv/bin/python bench/bench_startup.py --runs 20

`python -m aivoco` imports the aivoco found first on sys.path: run from the checkout,
that is the checkout's (to time another tree, run from elsewhere with PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

REFERENCE = ("import typer", [sys.executable, "-c", "import typer"])
COMMANDS = (
    ("aivoco --help", [sys.executable, "-m", "aivoco", "--help"]),
    ("aivoco --version", [sys.executable, "-m", "aivoco", "--version"]),
    ("aivoco sts --help", [sys.executable, "-m", "aivoco", "sts", "--help"]),
)
GOAL_S = 0.2


def once(argv: list[str]) -> float:
    env = {**os.environ, "COLUMNS": "100"}
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    everything = (REFERENCE, *COMMANDS)
    for _, argv in everything:  # warm the file cache and the .pyc files first
        once(argv)
    times: dict[str, list[float]] = {name: [] for name, _ in everything}
    for _ in range(args.runs):
        for name, argv in everything:
            times[name].append(once(argv))
    ref = statistics.median(times[REFERENCE[0]])
    print(f"median of {args.runs} runs each, interleaved")
    print(f"{'command':<20} {'median':>8} {'over ref':>9}")
    print(f"{REFERENCE[0]:<20} {ref:>7.3f}s {'(ref)':>9}")
    worst = 0.0
    for name, _ in COMMANDS:
        median = statistics.median(times[name])
        worst = max(worst, median - ref)
        print(f"{name:<20} {median:>7.3f}s {median - ref:>+8.3f}s")
    verdict = "within" if worst <= GOAL_S else "OVER"
    print(f"worst excess {worst:+.3f}s: {verdict} the {GOAL_S} s goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
