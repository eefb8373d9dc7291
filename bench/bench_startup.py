"""Start-up time of the `aivoco` command, side by side with a minimal Typer app.

    python bench/bench_startup.py               # 10 runs each, plus -X importtime
    python bench/bench_startup.py --runs 20 --top 25

Wall time (median and min of `--runs`) of `aivoco --help`, `aivoco --version` and
`aivoco sts --help` (the installed console script, as a user runs it), next to
`python -c pass`, `python -c "import typer"` and a minimal Typer app with Rich help
(two commands with an option each, written to a temporary file), and the difference.
Then `python -X importtime -m aivoco --help`: the imports that cost most, cumulative
(with what pulled them in) and self.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m

MINIMAL_APP = '''
from typing import Annotated

import typer

app = typer.Typer(rich_markup_mode="rich", no_args_is_help=True)


@app.command()
def hello(name: Annotated[str, typer.Option(help="Who to greet.")] = "world") -> None:
    """Say hello."""
    print(f"hello {name}")


@app.command()
def bye(name: Annotated[str, typer.Option(help="Who to leave.")] = "world") -> None:
    """Say goodbye."""
    print(f"bye {name}")


app()
'''


def aivoco_exe() -> list[str]:
    script = Path(sys.executable).parent / "aivoco"
    if script.exists():
        return [str(script)]
    found = shutil.which("aivoco")
    return [found] if found else [sys.executable, "-m", "aivoco"]


def time_command(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    out = []
    subprocess.run(cmd, capture_output=True, env=env, check=False, timeout=60)  # warm caches
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=env, check=False, timeout=60)
        out.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr[-500:]!r}")
    return out


def importtime(cmd: list[str], env: dict[str, str]) -> list[tuple[int, int, int, str]]:
    """(self us, cumulative us, depth, module) per line of -X importtime."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    rows = []
    for line in r.stderr.splitlines():
        mt = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if mt:
            depth = (len(mt.group(3)) - 1) // 2
            rows.append((int(mt.group(1)), int(mt.group(2)), depth, mt.group(4)))
    return rows


def parents(rows: list[tuple[int, int, int, str]]) -> dict[int, str]:
    """Index -> the module that imported it (importtime prints children before parents)."""
    out: dict[int, str] = {}
    for i, (_, _, depth, _) in enumerate(rows):
        for j in range(i + 1, len(rows)):
            if rows[j][2] < depth:
                out[i] = rows[j][3]
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="aivoco start-up vs a minimal Typer app.")
    ap.add_argument("--runs", type=int, default=10, help="runs per command (10)")
    ap.add_argument("--top", type=int, default=20, help="importtime rows to show (20)")
    args = ap.parse_args()
    env = m.clean_env({"COLUMNS": "100"})
    env.pop("PYTHONUNBUFFERED", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # An installed package has its bytecode cached; with this set (as some sandboxes and
    # CI images do) every import of aivoco's own modules compiles them again.
    no_bytecode = env.pop("PYTHONDONTWRITEBYTECODE", None) is not None
    exe = aivoco_exe()
    with tempfile.TemporaryDirectory(prefix="aivoco-bench-startup-") as tmp:
        app = Path(tmp) / "minimal_typer_app.py"
        app.write_text(MINIMAL_APP, encoding="utf-8")
        commands = [
            ("aivoco --help", [*exe, "--help"]),
            ("aivoco --version", [*exe, "--version"]),
            ("aivoco sts --help", [*exe, "sts", "--help"]),
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ('python -c "import typer"', [sys.executable, "-c", "import typer"]),
            ("minimal Typer app --help", [sys.executable, str(app), "--help"]),
        ]
        times = {name: time_command(cmd, args.runs, env) for name, cmd in commands}
    base = m.median(times["minimal Typer app --help"])
    rows = []
    for name, _ in commands:
        med = m.median(times[name])
        rows.append(
            [
                name,
                f"{med * 1000:.0f}",
                f"{min(times[name]) * 1000:.0f}",
                f"{(med - base) * 1000:+.0f}",
                f"{med / base:.2f}x",
            ]
        )
    print(f"bench_startup: {args.runs} runs each; {m.machine_line()}; aivoco = {' '.join(exe)}")
    print()
    print(m.table(["command", "median ms", "min ms", "vs minimal app ms", "ratio"], rows))
    cmd = ["-m", "aivoco", "--help"]
    rows_it = importtime(cmd, env)
    if not rows_it:
        return
    total = max(r[1] for r in rows_it)
    who = parents(rows_it)
    cum = sorted(((r[1], i) for i, r in enumerate(rows_it) if r[2] <= 3), key=lambda x: -x[0])
    print()
    print(
        f"python -X importtime -m aivoco --help: {total / 1000:.0f} ms of imports; "
        f"top {args.top} by cumulative time (depth <= 3), then by self time"
    )
    print(
        m.table(
            ["module", "cumulative ms", "depth", "imported by"],
            [
                [rows_it[i][3], f"{c / 1000:.1f}", str(rows_it[i][2]), who.get(i, "-")]
                for c, i in cum[: args.top]
            ],
        )
    )
    selfs = sorted(rows_it, key=lambda r: -r[0])[: args.top]
    print()
    print(
        m.table(
            ["module", "self ms", "cumulative ms"],
            [[r[3], f"{r[0] / 1000:.1f}", f"{r[1] / 1000:.1f}"] for r in selfs],
        )
    )
    print()
    heavy = ("aiohttp", "socketio", "engineio", "numpy", "requests", "aivoco.emulator", "rich")
    loaded = {r[3].split(".")[0] if not r[3].startswith("aivoco") else r[3] for r in rows_it}
    print(
        "heavy packages imported by `aivoco --help`: "
        + ", ".join(h for h in heavy if h in loaded or any(x.startswith(h) for x in loaded))
    )
    if no_bytecode:
        print(
            "note: PYTHONDONTWRITEBYTECODE was set here and is removed for these runs "
            "(the warm-up run writes the bytecode cache, as an install does)"
        )


if __name__ == "__main__":
    m.run_main(main)
