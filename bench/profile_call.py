"""Where one aivoco call spends its CPU: py-spy stacks per thread, weighted by /proc CPU.

    pip install py-spy          # into the same environment; not a project dependency
    python bench/profile_call.py --protocol sts --io file --view plain --threads
    python bench/profile_call.py --io devices --view live --seconds 40 --threads
    python bench/profile_call.py --all-samples  # also samples not holding the GIL
    python bench/profile_call.py --under        # where attaching (ptrace) is not allowed

Runs one call against `aivoco emulate` (file in/out, or real devices on a private
PulseAudio; the live view on a pseudo-terminal of --cols x --rows), waits `--warmup`
seconds, then samples it with `py-spy record --format raw --gil --nonblocking` attached to
the running process for the rest of the call (`--under` runs the whole command under py-spy instead:
start-up is then included). At the same time /proc gives each thread's real CPU, user
and kernel (bench/_measure.py), so every function's share of its thread's samples is
turned into an estimated % of one core: by default only samples holding the GIL are
kept and weighted by the thread's user CPU (the Python work); the thread's kernel time
(system calls, wake-ups) is shown beside it. Printed, and written to --out (raw stacks +
summary.md): per thread (`--threads`) or over all threads, the top functions by self
time (the leaf of the stack) and by inclusive time (anywhere on the stack), and a few
categories (logging, rich, waits, numpy, ...) that test the usual suspects.

Why GIL-only by default: py-spy's idle detection counts many samples of threads that
were in fact parked in sleep()/wait()/select() as active (seen here: ~5x more "active"
samples than /proc CPU allows), which would charge sleeping to the wait calls.
`--all-samples` keeps them (weighted by user + kernel CPU), `--idle` keeps even idle
samples (shares of wall time), `--native` adds C frames where py-spy can unwind them.
Why --nonblocking by default: py-spy otherwise stops every thread of the target for each
sample, which perturbs the timing of a real-time call (its total CPU read about the same
either way here). `--blocking` restores it (fully consistent stacks).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m

# Each stack counts once per category it matches (categories overlap). Leaf categories
# look at the innermost Python frame only; the others at any frame of the stack.
_WAIT_LEAF = re.compile(r"(\.wait|select|sleep|Queue\.get|_wait_for_tstate_lock)$")
CATEGORIES: list[tuple[str, str]] = [
    ("leaf is a wait/sleep/select (a wake-up or a wait that py-spy saw as active)", "wait"),
    ("anything under logging/", "logging/"),
    ("anything under rich/ (the live view, summary tables)", "rich/"),
    ("anything under engineio/ or socketio/", "engineio/|socketio/"),
    ("anything under websocket/ (websocket-client)", "websocket/"),
    ("anything under aiohttp/", "aiohttp/"),
    ("anything under json/", "json/"),
    ("leaf in numpy/", "leaf:numpy/"),
    ("leaf in asyncio/ (event-loop machinery)", "leaf:asyncio/"),
    ("leaf in aivoco/ (our own Python code)", "leaf:aivoco/"),
]
_THREAD = re.compile(r"^thread \((\d+)\)(?::\s*(.*))?$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::(\d+))?\)$")


@dataclass
class ThreadProfile:
    tid: int
    names: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    leaf: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    cpu_pct: float | None = None  # user + kernel, /proc
    sys_pct: float | None = None  # kernel part
    categories: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return self.names.most_common(1)[0][0] if self.names else f"tid {self.tid}"


def short(frame: str) -> str:
    """`func (path:line)` -> `func (file.py)`: lines differ, functions are what matters."""
    mt = _FRAME.match(frame.strip())
    if not mt:
        return frame.strip()
    func, path = mt.group(1), mt.group(2)
    for marker in ("site-packages/", "/aivoco/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/aivoco/":
                path = "aivoco/" + path
            break
    return f"{func} ({path})"


def parse_raw(text: str) -> dict[int, ThreadProfile]:
    threads: dict[int, ThreadProfile] = {}
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        mt = _THREAD.match(frames[0])
        if mt is None:
            tid, name, rest = 0, "all", frames
        else:
            tid, name, rest = int(mt.group(1)), (mt.group(2) or "").strip(), frames[1:]
        tp = threads.setdefault(tid, ThreadProfile(tid))
        if name:
            tp.names[name] += count
        tp.samples += count
        if not rest:
            continue
        leaf = short(rest[-1])
        tp.leaf[leaf] += count
        names = {short(x) for x in rest}
        for f in names:
            tp.inclusive[f] += count
        for label, rule in CATEGORIES:
            if rule == "wait":
                hit = bool(_WAIT_LEAF.search(leaf.split(" (", 1)[0]))
            elif rule.startswith("leaf:"):
                hit = f"({rule[5:]}" in leaf
            else:
                hit = any(f"({p}" in f for f in names for p in rule.split("|"))
            if hit:
                tp.categories[label] += count
    return threads


def most(values: dict[str, float], top: int) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda kv: -kv[1])[:top]


def summarize(
    threads: dict[int, ThreadProfile], top: int, per_thread: bool, weighted: bool, gil: bool
) -> str:
    unit = "% of a core (est.)" if weighted else "% of samples"

    def share(tp: ThreadProfile, n: int) -> float:
        if weighted and tp.cpu_pct is not None and tp.samples:
            basis = tp.cpu_pct - (tp.sys_pct or 0.0) if gil else tp.cpu_pct
            return basis * n / tp.samples
        total = sum(t.samples for t in threads.values()) or 1
        return 100.0 * n / (tp.samples if per_thread and not weighted else total)

    lines: list[str] = []
    ordered = sorted(
        threads.values(), key=lambda t: -(t.cpu_pct if t.cpu_pct is not None else t.samples)
    )
    lines.append(
        m.table(
            ["thread", "tid", "% of a core (/proc)", "of which kernel", "py-spy samples"],
            [
                [
                    t.name,
                    str(t.tid),
                    "-" if t.cpu_pct is None else f"{t.cpu_pct:.2f}",
                    "-" if t.sys_pct is None else f"{t.sys_pct:.2f}",
                    str(t.samples),
                ]
                for t in ordered
            ],
        )
    )
    if per_thread:
        for tp in ordered:
            if not tp.samples:
                continue
            lines += ["", f"## {tp.name} (tid {tp.tid})", "", "self (leaf frame):"]
            lines.append(
                m.table(
                    [unit, "function"],
                    [[f"{share(tp, n):.2f}", f] for f, n in tp.leaf.most_common(top)],
                )
            )
            lines += ["", "inclusive (anywhere on the stack):"]
            lines.append(
                m.table(
                    [unit, "function"],
                    [[f"{share(tp, n):.2f}", f] for f, n in tp.inclusive.most_common(top)],
                )
            )
    cats: dict[str, float] = {}
    for tp in threads.values():
        for c, n in tp.categories.items():
            cats[c] = cats.get(c, 0.0) + share(tp, n)
    lines += ["", "## categories (all threads; they overlap)", ""]
    lines.append(
        m.table(
            [unit if weighted else "% of samples", "category"],
            [[f"{cats.get(label, 0.0):.2f}", label] for label, _ in CATEGORIES],
        )
    )
    leaf_all: dict[str, float] = {}
    incl_all: dict[str, float] = {}
    for tp in threads.values():
        for f, n in tp.leaf.items():
            leaf_all[f] = leaf_all.get(f, 0.0) + share(tp, n)
        for f, n in tp.inclusive.items():
            incl_all[f] = incl_all.get(f, 0.0) + share(tp, n)
    unit_all = unit if weighted else "% of samples"
    lines += ["", "## all threads", "", "self (leaf frame):"]
    lines.append(m.table([unit_all, "function"], [[f"{v:.2f}", f] for f, v in most(leaf_all, top)]))
    lines += ["", "inclusive (anywhere on the stack):"]
    lines.append(m.table([unit_all, "function"], [[f"{v:.2f}", f] for f, v in most(incl_all, top)]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="Profile one aivoco call per thread with py-spy.")
    ap.add_argument("--protocol", choices=["sts", "call"], default="sts")
    ap.add_argument("--io", choices=["file", "devices"], default="file")
    ap.add_argument("--view", choices=["plain", "live", "json"], default="plain")
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=30.0, help="call length (30)")
    ap.add_argument("--warmup", type=float, default=5.0, help="not sampled (5 s)")
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second (200)")
    ap.add_argument("--threads", action="store_true", help="a summary per thread")
    ap.add_argument("--idle", action="store_true", help="keep idle samples (wall time)")
    ap.add_argument("--all-samples", action="store_true", help="not only samples holding the GIL")
    ap.add_argument("--native", action="store_true", help="include native (C) frames")
    ap.add_argument("--under", action="store_true", help="run under py-spy (no attach)")
    ap.add_argument(
        "--blocking",
        action="store_true",
        help="pause the process for each sample (consistent stacks; perturbs its timing)",
    )
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None, help="directory for stacks + summary")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        raise SystemExit("py-spy not found: pip install py-spy (into this environment)")
    if args.seconds <= args.warmup + 3:
        raise SystemExit("--seconds must exceed --warmup by more than 3 s")
    m.install_cleanup()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="aivoco-profile-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "stacks.txt"
    spy_opts = ["--format", "raw", "--threads", "--rate", str(args.rate)]
    spy_opts += [] if args.blocking else ["--nonblocking"]
    spy_opts += ["-o", str(raw)]
    gil = not args.all_samples and not args.idle
    spy_opts += [f for f, on in (("--idle", args.idle), ("--gil", gil)) if on]
    spy_opts += ["--native"] if args.native else []
    with tempfile.TemporaryDirectory(prefix="aivoco-profile-run-") as tmpdir:
        tmp = Path(tmpdir)
        speech = m.speech_file(
            tmp / "speech.wav", args.seconds + 30, 16000 if args.protocol == "sts" else 8000
        )
        emulator = m.EmulatorProcess()
        pulse_cm = m.private_pulse() if args.io == "devices" else None
        try:
            urls = emulator.start()
            pulse = pulse_cm.__enter__() if pulse_cm is not None else None
            url = urls.sts_url if args.protocol == "sts" else urls.call_url
            cmd = [args.protocol, "--key", "profile", "--url", url]
            cmd += ["--max-duration", f"{args.seconds:g}"]
            cmd += ["--agent", "profile-agent"] if args.protocol == "call" else []
            if args.io == "file":
                cmd += ["--input", str(speech), "--output", str(tmp / "out.wav")]
            cmd += {"plain": ["--plain"], "json": ["--json"], "live": []}[args.view]
            env = m.clean_env(pulse.env if pulse is not None else None)
            tty = (args.cols, args.rows) if args.view == "live" else None
            feeder = m.play_into_mic(pulse, speech) if pulse is not None else None
            aivoco = [sys.executable, "-m", "aivoco", *cmd]
            spy: m.Child | None = None
            if args.under:
                client = m.Child([pyspy, "record", *spy_opts, "--", *aivoco], env=env, tty=tty)
                time.sleep(1.0)
                kids = m.descendants(client.pid)
                target = kids[0] if kids else client.pid
            else:
                client = m.Child(aivoco, env=env, tty=tty)
                target = client.pid
            sampler = m.TreeSampler(target, 0.5, children=False).start()
            start = client.started_at
            time.sleep(max(0.0, start + args.warmup - time.monotonic()))
            if not args.under:
                duration = int(args.seconds - args.warmup - 1)
                spy = m.Child(
                    [pyspy, "record", "--pid", str(target), "--duration", str(duration), *spy_opts]
                )
                spy.wait(duration + 30)
            client.wait(args.seconds + 40)
            samples = sampler.stop()
            if spy is not None:
                spy.stop()
                if spy.proc.returncode not in (0, None):
                    print(f"py-spy failed: {spy.stderr_text()[-800:]}", file=sys.stderr)
                    print("where attaching is not allowed, try --under", file=sys.stderr)
            client.stop()
            if feeder is not None:
                feeder.stop()
        finally:
            if pulse_cm is not None:
                pulse_cm.__exit__(None, None, None)
            emulator.stop()
    if not raw.exists():
        raise SystemExit(f"py-spy wrote no stacks ({raw})")
    threads = parse_raw(raw.read_text(encoding="utf-8", errors="replace"))
    lo = start + (0.0 if args.under else args.warmup)
    st = m.steady(samples, lo, start + args.seconds, target)
    if st is not None:
        by_tid: dict[int, tuple[float, float]] = {}
        first = next(s for s in samples if s.t >= lo)
        last = [s for s in samples if s.t <= start + args.seconds][-1]
        p0, p1 = first.procs.get(target), last.procs.get(target)
        if p0 is not None and p1 is not None:
            for tid, t in p1.threads.items():
                b = p0.threads.get(tid)
                scale = 100.0 / m.CLK_TCK / st.seconds
                by_tid[tid] = (
                    (t.ticks - (b.ticks if b else 0)) * scale,
                    (t.sys_ticks - (b.sys_ticks if b else 0)) * scale,
                )
        for tid, tp in threads.items():
            if tid in by_tid:
                tp.cpu_pct, tp.sys_pct = by_tid[tid]
    weighted = not args.idle and st is not None
    head = (
        f"profile_call: aivoco {args.protocol}, {args.io}, {args.view}"
        + (f" {args.cols}x{args.rows}" if args.view == "live" else "")
        + f"; {args.seconds:g} s call, sampled "
        + ("from start" if args.under else f"after {args.warmup:g} s")
        + f" at {args.rate}/s"
        + (" (idle kept)" if args.idle else "")
        + (" (GIL-holding samples, weighted by user CPU)" if gil else "")
        + (" (blocking: the target is paused per sample)" if args.blocking else "")
        + (f"; process {st.cpu_pct:.2f} % of a core" if st is not None else "")
        + f"; {m.machine_line()}"
    )
    text = head + "\n\n" + summarize(threads, args.top, args.threads, weighted, gil)
    print(text)
    (out_dir / "summary.md").write_text(text + "\n", encoding="utf-8")
    print(f"\nraw stacks and summary in {out_dir} (flamegraph: py-spy's raw format)")


if __name__ == "__main__":
    m.run_main(main)
