"""CPU, context switches and memory of one call, aivoco side by side with its references.

    python bench/bench_cpu.py                       # sts headless vs the bare-library client
    python bench/bench_cpu.py --modes all --node-client /work/ref/Test_S2S_on_CLI
    python bench/bench_cpu.py --modes headless --seconds 30 --runs 1 --json-out cpu.json
    python bench/bench_cpu.py --list
    python bench/bench_cpu.py --modes live --baseline ../base-checkout   # before/after

Every run is a real call of `--seconds` (60) against `aivoco emulate` (a subprocess,
started once), sending a speech file (the demo utterance every 9.3 s; the emulator
echoes each one, so audio flows both ways) paced in real time. The client process and
its children are sampled from /proc every 0.5 s; figures are over the steady state,
from `--warmup` (5 s) after start to `--seconds` after start (start-up imports and the
hang-up are left out). Modes run round robin (run 1 of every mode, then run 2, ...) so
drift on the machine affects all of them alike.

Modes (`--list`): aivoco `sts`/`call` with file in/out and `--plain`; the same with the
live view on a pseudo-terminal of 80x24 and 120x40; real devices (a private PulseAudio
with null sinks, tests/pulse.py; the speech file is played into the virtual microphone
with paplay) with `--plain` and with the live view, and `--plain` with `--echo off` (the
Node client has no echo control: that row is the like-for-like one; the default, with
WebRTC's canceller, stays beside it), and `--echo off --chunk-ms 128` (the Node client's
own uplink chunking as well: what is left is the price of the device streams' 10 ms
blocks); and the references:
  ref-sts-file   bench/ref_sts_client.py: python-socketio client doing the same wire work
  ref-call-file  bench/ref_call_client.py: websocket-client doing the same wire work
  node-sts-dev   Aivoco's own Node.js terminal client (Test_S2S_on_CLI), on the same
                 virtual devices; needs `--node-client DIR` (see RESULTS.md for how to
                 install it outside this repository); skipped with a note without it.
  floor-dev-streams       bench/ref_device_floor.py: the two bare sounddevice streams an
                 `aivoco sts --echo off` call opens (10 ms blocks, a 20 ms speaker),
                 callbacks that only copy and fill, no call: the floor of any Python
                 client at the latency goals' buffering;
  floor-dev-node-buffers the same at about the Node client's buffering (128 ms reads,
                 a 100 ms speaker).

The client's environment has no AIVOCO_* variable (no key or URL of yours leaks in, and
`AIVOCO_ECHO` set around the bench does not change a mode): a mode's options are on its
command line.

`--baseline DIR` (a source tree of aivoco, e.g. `git worktree add DIR BASE_COMMIT`) runs
every aivoco mode a second time from DIR (as `MODE@base`, through PYTHONPATH), in the
same rounds, so a change is measured against its base under the same conditions.

Per mode it prints: % of one core (median and range over runs; the Node client includes
its `arecord` child), voluntary context switches per second, RSS at the start and end of
the window, terminal output per second (live view), how much agent audio came back, and
for aivoco the top threads (named through bench/_named_threads.py).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m

NODE_CHUNK_MS = 128  # the Node client's uplink chunk: 4096 bytes of 16 kHz PCM16 per read
# The floor at about the Node client's buffering: arecord's 128 ms reads, and a speaker
# that keeps 100 ms (aivoco's second output step).
NODE_BUFFERS = ("--input-block-ms", str(NODE_CHUNK_MS), "--output-latency-ms", "100")


@dataclass(frozen=True)
class Mode:
    name: str
    client: str  # aivoco | ref | node
    protocol: str  # sts | call
    io: str  # file | devices
    live: tuple[int, int] | None = None  # (cols, rows) of the pseudo-terminal
    tree: Path | None = None  # run aivoco from this source tree (--baseline)
    echo: str | None = None  # aivoco's --echo, given on the command line (None: its default)
    chunk_ms: int | None = None  # aivoco's --chunk-ms (None: its default, 20)
    extra: tuple[str, ...] = ()  # more options for the client (the floor's buffering, --low-cpu)

    def describe(self) -> str:
        if self.client == "ref":
            return f"bare-library {self.protocol} client, file in"
        if self.client == "node":
            return "Aivoco's Node.js client (Test_S2S_on_CLI), virtual devices"
        if self.client == "floor":
            extra = f" {' '.join(self.extra)}" if self.extra else ""
            return f"bare sounddevice streams, no call (bench/ref_device_floor.py{extra})"
        view = f"live view {self.live[0]}x{self.live[1]}" if self.live else "--plain"
        echo = f", --echo {self.echo}" if self.echo else ""
        chunk = f", --chunk-ms {self.chunk_ms}" if self.chunk_ms else ""
        extra = f", {' '.join(self.extra)}" if self.extra else ""
        return (
            f"aivoco {self.protocol}, {'file in/out' if self.io == 'file' else 'devices'}, "
            f"{view}{echo}{chunk}{extra}"
        )


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in [
        Mode("sts-file-plain", "aivoco", "sts", "file"),
        Mode("ref-sts-file", "ref", "sts", "file"),
        Mode("call-file-plain", "aivoco", "call", "file"),
        Mode("ref-call-file", "ref", "call", "file"),
        Mode("sts-file-live-80x24", "aivoco", "sts", "file", (80, 24)),
        Mode("sts-file-live-120x40", "aivoco", "sts", "file", (120, 40)),
        Mode("call-file-live-80x24", "aivoco", "call", "file", (80, 24)),
        Mode("call-file-live-120x40", "aivoco", "call", "file", (120, 40)),
        Mode("sts-dev-plain", "aivoco", "sts", "devices"),
        Mode("sts-dev-plain-echo-off", "aivoco", "sts", "devices", echo="off"),
        Mode("node-sts-dev", "node", "sts", "devices"),
        # The Node client's own chunking: arecord hands it 4096 bytes (128 ms) at a time.
        Mode("sts-dev-node-chunks", "aivoco", "sts", "devices", echo="off", chunk_ms=NODE_CHUNK_MS),
        # ...and its buffering too: the microphone in whole chunks, a 100 ms speaker.
        Mode(
            "sts-dev-low-cpu",
            "aivoco",
            "sts",
            "devices",
            echo="off",
            chunk_ms=NODE_CHUNK_MS,
            extra=("--low-cpu",),
        ),
        Mode("sts-dev-low-cpu-aec", "aivoco", "sts", "devices", extra=("--low-cpu",)),
        Mode("floor-dev-streams", "floor", "sts", "devices"),
        Mode("floor-dev-node-buffers", "floor", "sts", "devices", extra=NODE_BUFFERS),
        Mode("call-dev-plain", "aivoco", "call", "devices"),
        Mode("call-dev-plain-echo-off", "aivoco", "call", "devices", echo="off"),
        Mode("sts-dev-live-80x24", "aivoco", "sts", "devices", (80, 24)),
        Mode("call-dev-live-80x24", "aivoco", "call", "devices", (80, 24)),
    ]
}
GROUPS: dict[str, list[str]] = {
    "sts": ["sts-file-plain", "ref-sts-file"],
    "headless": ["sts-file-plain", "ref-sts-file", "call-file-plain", "ref-call-file"],
    "live": [
        "sts-file-live-80x24",
        "sts-file-live-120x40",
        "call-file-live-80x24",
        "call-file-live-120x40",
    ],
    "devices": [
        "sts-dev-plain",
        "sts-dev-plain-echo-off",
        "sts-dev-node-chunks",
        "sts-dev-low-cpu",
        "sts-dev-low-cpu-aec",
        "floor-dev-streams",
        "floor-dev-node-buffers",
        "node-sts-dev",
        "call-dev-plain",
        "call-dev-plain-echo-off",
        "sts-dev-live-80x24",
        "call-dev-live-80x24",
    ],
}
GROUPS["all"] = GROUPS["headless"] + GROUPS["live"] + GROUPS["devices"]
# (ours, reference, goal factor or None): printed as ratios, pair by pair.
COMPARISONS: list[tuple[str, str, float | None]] = [
    ("sts-file-plain", "ref-sts-file", 1.3),
    ("call-file-plain", "ref-call-file", 1.3),
    ("sts-dev-plain", "node-sts-dev", 2.0),
    ("sts-dev-plain-echo-off", "node-sts-dev", 2.0),
    ("sts-dev-node-chunks", "node-sts-dev", 2.0),
    ("sts-dev-low-cpu", "node-sts-dev", 2.0),
    ("floor-dev-streams", "node-sts-dev", 2.0),
    ("floor-dev-node-buffers", "node-sts-dev", 2.0),
    ("sts-dev-plain-echo-off", "floor-dev-streams", None),
    ("call-dev-plain", "node-sts-dev", 2.0),
    ("call-dev-plain-echo-off", "node-sts-dev", 2.0),
    ("sts-file-live-80x24", "sts-file-plain", None),
    ("sts-file-live-120x40", "sts-file-plain", None),
    ("call-file-live-80x24", "call-file-plain", None),
    ("call-file-live-120x40", "call-file-plain", None),
    ("sts-dev-live-80x24", "sts-dev-plain", None),
    ("call-dev-live-80x24", "call-dev-plain", None),
]
LIVE_GOAL_PCT = 5.0
AGENT = "bench-agent"


@dataclass
class RunResult:
    mode: str
    run: int
    ok: bool
    note: str = ""
    cpu_pct: float = float("nan")
    sys_pct: float = float("nan")
    voluntary_per_s: float = float("nan")
    involuntary_per_s: float = float("nan")
    rss_start_mb: float = float("nan")
    rss_end_mb: float = float("nan")
    rss_max_mb: float = float("nan")
    window_s: float = 0.0
    load_1min: float = float("nan")  # /proc/loadavg after the run: others on the machine
    output_bytes_per_s: float = 0.0
    agent_audio_s: float | None = None
    replies: int | None = None
    by_process: dict[str, float] = field(default_factory=dict)
    # Over the window's quarters: % of a core in each, and RSS MB at each boundary.
    cpu_quarters: list[float] = field(default_factory=list)
    rss_quarters: list[float] = field(default_factory=list)
    threads: list[tuple[str, float]] = field(default_factory=list)
    threads_sys: dict[str, float] = field(default_factory=dict)
    threads_wakeups: dict[str, float] = field(default_factory=dict)


@dataclass
class Context:
    seconds: float
    warmup: float
    tmp: Path
    sts_url: str
    call_url: str
    speech16: Path
    speech8: Path
    pulse: Any = None
    node_dir: Path | None = None
    node_script: Path | None = None


# -- the Node client -----------------------------------------------------------------------
def prepare_node_client(node_dir: Path) -> Path:
    """A copy of its main.js with the server URL and the microphone device taken from the
    environment, written beside it (outside this repository). main.js hard-codes the
    production URL, and `mic` defaults to ALSA device plughw:1,0 (no such card here)."""
    src = node_dir / "main.js"
    if not src.exists() or not (node_dir / "node_modules").is_dir():
        raise SystemExit(f"{node_dir}: no main.js or node_modules (npm install there first)")
    text = src.read_text(encoding="utf-8")
    url_line = re.compile(r"^const WEBSOCKET_URL = .*$", re.M)
    text, n_url = url_line.subn("const WEBSOCKET_URL = process.env.AIVOCO_BENCH_STS_URL;", text)
    text, n_mic = re.subn(
        r"fileType: 'raw'(\s*//[^\n]*)?",
        "fileType: 'raw', device: process.env.AIVOCO_BENCH_MIC || 'default'",
        text,
        count=1,
    )
    if n_url != 1 or n_mic != 1:
        raise SystemExit(f"{src}: unexpected layout (url lines {n_url}, mic options {n_mic})")
    out = node_dir / "main.bench.js"
    out.write_text(text, encoding="utf-8")
    return out


# -- one run -------------------------------------------------------------------------------
def run_once(mode: Mode, run: int, ctx: Context) -> RunResult:
    key = f"bench-{mode.name}-{run}"
    out_wav = ctx.tmp / f"{mode.name}-{run}.wav"
    thread_map = ctx.tmp / f"{mode.name}-{run}.threads"
    env = m.clean_env(ctx.pulse.env if ctx.pulse is not None else None)
    feeder: m.Child | None = None
    if mode.io == "devices":
        if ctx.pulse is None:
            return RunResult(mode.name, run, False, "no PulseAudio")
        feeder = m.play_into_mic(ctx.pulse, ctx.speech16)
        time.sleep(0.3)
    speech = ctx.speech16 if mode.protocol == "sts" else ctx.speech8
    url = ctx.sts_url if mode.protocol == "sts" else ctx.call_url
    stdin_pipe = False
    cwd: Path | None = None
    names_path: Path | None = None
    if mode.client == "aivoco":
        args = [mode.protocol, "--key", key, "--url", url, "--max-duration", f"{ctx.seconds:g}"]
        if mode.protocol == "call":
            args += ["--agent", AGENT]
        if mode.io == "file":
            args += ["--input", str(speech), "--output", str(out_wav)]
        if mode.live is None:
            args.append("--plain")
        if mode.echo is not None:  # on the command line: clean_env drops every AIVOCO_*
            args += ["--echo", mode.echo]
        if mode.chunk_ms is not None:
            args += ["--chunk-ms", str(mode.chunk_ms)]
        args += mode.extra
        cmd = m.aivoco_command(*args, thread_map=thread_map)
        names_path = thread_map
        if mode.tree is not None:  # ahead of the installed aivoco (the shim's sys.path[0]
            env["PYTHONPATH"] = str(mode.tree)  # is bench/, so the cwd does not interfere)
    elif mode.client == "floor":
        cmd = [sys.executable, str(m.BENCH_DIR / "ref_device_floor.py")]
        cmd += ["--seconds", f"{ctx.seconds:g}", *mode.extra]
    elif mode.client == "ref":
        script = "ref_sts_client.py" if mode.protocol == "sts" else "ref_call_client.py"
        cmd = [sys.executable, str(m.BENCH_DIR / script), "--url", url, "--key", key]
        cmd += ["--input", str(speech), "--seconds", f"{ctx.seconds:g}"]
    else:
        if ctx.node_script is None:
            return RunResult(mode.name, run, False, "skipped: no --node-client DIR")
        cmd = ["node", str(ctx.node_script)]
        env["AIVOCO_BENCH_STS_URL"] = url
        cwd = ctx.node_dir
        stdin_pipe = True
    child: m.Child | None = None
    try:
        child = m.Child(cmd, env=env, cwd=cwd, tty=mode.live, stdin_pipe=stdin_pipe)
        start = child.started_at
        sampler = m.TreeSampler(child.pid, 0.5).start()
        if mode.client == "node":
            child.send(f"start {key}\n")
            time.sleep(max(0.0, start + ctx.seconds + 1.0 - time.monotonic()))
            child.send("stop\n")
            time.sleep(1.0)
            child.send("exit\n")
            code = child.wait(5.0)
        else:
            code = child.wait(ctx.seconds + 45.0)
        samples = sampler.stop()
        end_wall = time.monotonic()
        child.stop()
    finally:
        if child is not None:
            child.stop()  # a no-op after a normal end; on Ctrl-C it hangs up first
        if feeder is not None:
            feeder.stop()
    result = RunResult(mode.name, run, True)
    with open("/proc/loadavg", encoding="ascii") as f:
        result.load_1min = float(f.read().split()[0])
    names = m.read_thread_map(names_path)
    st = m.steady(samples, start + ctx.warmup, start + ctx.seconds, child.pid, names)
    if st is None:
        return RunResult(mode.name, run, False, "not enough samples (exited early?)")
    result.cpu_pct = st.cpu_pct
    result.sys_pct = st.sys_pct
    result.threads_sys = st.threads_sys
    result.threads_wakeups = st.threads_wakeups
    result.voluntary_per_s = st.voluntary_per_s
    result.involuntary_per_s = st.involuntary_per_s
    result.rss_start_mb, result.rss_end_mb, result.rss_max_mb = (
        st.rss_start_mb,
        st.rss_end_mb,
        st.rss_max_mb,
    )
    result.window_s = st.seconds
    if len(st.series) >= 4:
        q = len(st.series) / 4
        parts = [st.series[round(i * q) : round((i + 1) * q)] for i in range(4)]
        result.cpu_quarters = [sum(c for _, c, _ in p) / len(p) for p in parts if p]
        result.rss_quarters = [st.rss_start_mb] + [p[-1][2] for p in parts if p]
    result.by_process = st.by_process
    result.threads = st.threads
    result.output_bytes_per_s = child.output_bytes / max(1e-9, end_wall - start)
    text = child.stdout_text()
    if mode.client == "aivoco":
        if code != 0:
            result.ok = False
            result.note = f"exit {code}: {(text + child.stderr_text())[-300:]!r}"
        # The summary table printed at the end: "audio | sent X s, received Y s".
        received = re.findall(r"received ([0-9.]+) s", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text))
        if received:
            result.agent_audio_s = float(received[-1])
        if mode.live is None:
            result.replies = len(re.findall(r"\] agent: ", text))
    elif mode.client in ("ref", "floor"):
        lines = [line for line in text.splitlines() if line.startswith("{")]
        if code != 0 or not lines:
            result.ok = False
            result.note = f"exit {code}: {child.stderr_text()[-300:]!r}"
        elif mode.client == "ref":
            result.agent_audio_s = float(json.loads(lines[-1])["audio_received_s"])
    else:
        result.replies = text.count("🤖 AI: ")
        if "Voice session started" not in text:
            result.ok = False
            result.note = f"no session: {text[-300:]!r}"
    with_audio = result.agent_audio_s is not None and result.agent_audio_s > 0
    no_call = mode.client == "floor"
    if result.ok and not with_audio and not result.replies and mode.live is None and not no_call:
        result.note = (result.note + " no agent audio came back").strip()
    return result


# -- report --------------------------------------------------------------------------------
def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None or math.isnan(x) else format(x, spec)


def report(results: list[RunResult], selected: Sequence[str], args: argparse.Namespace) -> str:
    by_mode: dict[str, list[RunResult]] = {}
    for r in results:
        by_mode.setdefault(r.mode, []).append(r)
    lines = [
        f"bench_cpu: {args.seconds:g} s calls, steady window {args.warmup:g}-{args.seconds:g} s, "
        f"{args.runs} run(s) per mode; {m.machine_line()}",
        "",
    ]
    rows = []
    cpu: dict[str, float] = {}
    for name in selected:
        runs = by_mode.get(name, [])
        good = [r for r in runs if r.ok]
        notes = sorted({r.note for r in runs if r.note})
        if not good:
            rows.append([name, "-", "-", "-", "-", "-", "-", "-", "; ".join(notes) or "no runs"])
            continue
        c = [r.cpu_pct for r in good]
        cpu[name] = m.median(c)
        audio = [r.agent_audio_s for r in good if r.agent_audio_s is not None]
        replies = [r.replies for r in good if r.replies is not None]
        back = (
            f"{m.median(audio):.1f} s"
            if audio
            else (f"{m.median([float(x) for x in replies]):.0f} replies" if replies else "-")
        )
        rows.append(
            [
                name,
                m.spread(c, "{:.2f}"),
                _fmt(m.median([r.sys_pct for r in good]), ".2f"),
                _fmt(m.median([r.voluntary_per_s for r in good]), ".0f"),
                f"{m.median([r.rss_start_mb for r in good]):.0f} -> "
                f"{m.median([r.rss_end_mb for r in good]):.0f}",
                _fmt(m.median([r.output_bytes_per_s for r in good]) / 1024, ".1f"),
                back,
                f"{len(good)}/{len(runs)}",
                "; ".join(notes),
            ]
        )
    lines.append(
        m.table(
            [
                "mode",
                "% of a core",
                "of which kernel",
                "vol. ctx sw/s",
                "RSS MB start -> end",
                "stdout kB/s",
                "agent audio back",
                "ok runs",
                "notes",
            ],
            rows,
        )
    )
    comp = []
    for ours, ref, goal in COMPARISONS:
        if ours in cpu and ref in cpu and cpu[ref] > 0:
            ratio = cpu[ours] / cpu[ref]
            if goal is not None:
                verdict = f"goal <= {goal:g}x: {'met' if ratio <= goal else 'NOT met'}"
            elif ref == f"{ours}@base":
                verdict = f"after - before: {cpu[ours] - cpu[ref]:+.2f} points"
            elif MODES[ref].client == "floor":
                verdict = f"aivoco over the bare streams: {cpu[ours] - cpu[ref]:+.2f} points"
            else:
                extra = cpu[ours] - cpu[ref]
                verdict = (
                    f"view adds {extra:.2f} % of a core; live total goal <= {LIVE_GOAL_PCT:g} %: "
                    f"{'met' if cpu[ours] <= LIVE_GOAL_PCT else 'NOT met'}"
                )
            comp.append(
                [f"{ours} / {ref}", f"{cpu[ours]:.2f} / {cpu[ref]:.2f}", f"{ratio:.2f}x", verdict]
            )
    if comp:
        lines += ["", m.table(["pair", "% of a core", "ratio", "verdict"], comp)]
    drift = []
    for name in selected:
        good = [r for r in by_mode.get(name, []) if r.ok and len(r.cpu_quarters) == 4]
        if good:
            cq = [m.median([r.cpu_quarters[i] for r in good]) for i in range(4)]
            rq = [m.median([r.rss_quarters[i] for r in good]) for i in range(5)]
            drift.append(
                [name, " / ".join(f"{c:.2f}" for c in cq), " / ".join(f"{x:.1f}" for x in rq)]
            )
    if drift:
        lines += [
            "",
            "over the window (is it flat?): CPU per quarter, RSS at start and each quarter's end",
            m.table(["mode", "% of a core, Q1 / Q2 / Q3 / Q4", "RSS MB"], drift),
        ]
    for name in selected:
        good = [r for r in by_mode.get(name, []) if r.ok]
        if not good:
            continue
        merged: dict[str, list[float]] = {}
        merged_sys: dict[str, list[float]] = {}
        merged_wake: dict[str, list[float]] = {}
        for r in good:
            per: dict[str, float] = {}
            for label, pct in r.threads:
                per[label] = per.get(label, 0.0) + pct
            for label, pct in per.items():
                merged.setdefault(label, []).append(pct)
                merged_sys.setdefault(label, []).append(r.threads_sys.get(label, 0.0))
                merged_wake.setdefault(label, []).append(r.threads_wakeups.get(label, 0.0))
        procs: dict[str, list[float]] = {}
        for r in good:
            for label, pct in r.by_process.items():
                procs.setdefault(re.sub(r"\[\d+\]$", "", label), []).append(pct)
        top = sorted(merged.items(), key=lambda kv: -m.median(kv[1]))[: args.top_threads]
        lines += ["", f"{name}: threads of the main process (% of a core, median over runs)"]
        lines.append(
            m.table(
                ["thread", "% of a core", "of which kernel", "vol. ctx sw/s (wake-ups)"],
                [
                    [
                        k,
                        f"{m.median(v):.2f}",
                        f"{m.median(merged_sys[k]):.2f}",
                        f"{m.median(merged_wake[k]):.0f}",
                    ]
                    for k, v in top
                ],
            )
        )
        if len(procs) > 1:
            lines.append(
                "processes: "
                + ", ".join(f"{k} {m.median(v):.2f} %" for k, v in sorted(procs.items()))
            )
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------
def parse_modes(spec: str) -> list[str]:
    out: list[str] = []
    for raw in spec.split(","):
        part = raw.strip()
        names = GROUPS.get(part, [part])
        for n in names:
            if n not in MODES:
                raise SystemExit(f"unknown mode {n!r}; --list shows them")
            if n not in out:
                out.append(n)
    return out


def add_baseline(selected: list[str], tree: Path) -> list[str]:
    """Each aivoco mode, then the same mode run from `tree` (its base), compared."""
    if not (tree / "aivoco" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {tree}: no aivoco package there")
    out: list[str] = []
    for name in selected:
        out.append(name)
        mode = MODES[name]
        if mode.client == "aivoco":
            base = f"{name}@base"
            MODES[base] = replace(mode, name=base, tree=tree)
            COMPARISONS.append((name, base, None))
            out.append(base)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description="CPU per call: aivoco side by side with its references.",
        epilog="Groups: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in GROUPS.items()),
    )
    ap.add_argument("--modes", default="sts", help="modes or groups, comma-separated (sts)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each call (60)")
    ap.add_argument("--warmup", type=float, default=5.0, help="start-up left out (5 s)")
    ap.add_argument("--runs", type=int, default=3, help="runs per mode (3)")
    ap.add_argument("--node-client", type=Path, default=None, help="Test_S2S_on_CLI directory")
    ap.add_argument("--top-threads", type=int, default=8)
    ap.add_argument("--json-out", type=Path, default=None, help="every run's figures as JSON")
    ap.add_argument("--list", action="store_true", help="list the modes and exit")
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also run each aivoco mode from this aivoco source tree (as MODE@base)",
    )
    args = ap.parse_args()
    if args.list:
        for name, mode in MODES.items():
            print(f"{name:24} {mode.describe()}")
        return
    if args.seconds <= args.warmup + 2:
        raise SystemExit("--seconds must exceed --warmup by more than 2 s")
    selected = parse_modes(args.modes)
    if args.baseline is not None:
        selected = add_baseline(selected, args.baseline.resolve())
    m.install_cleanup()
    estimate = len(selected) * args.runs * (args.seconds + 4)
    print(
        f"{len(selected)} mode(s) x {args.runs} run(s) x {args.seconds:g} s: "
        f"about {estimate / 60:.0f} min",
        flush=True,
    )
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="aivoco-bench-cpu-") as tmpdir:
        tmp = Path(tmpdir)
        length = args.seconds + 30
        ctx_kwargs: dict[str, Any] = {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "tmp": tmp,
            "speech16": m.speech_file(tmp / "speech16k.wav", length, 16000),
            "speech8": m.speech_file(tmp / "speech8k.wav", length, 8000),
        }
        if args.node_client is not None:
            ctx_kwargs["node_dir"] = args.node_client.resolve()
            ctx_kwargs["node_script"] = prepare_node_client(ctx_kwargs["node_dir"])
        needs_pulse = any(MODES[n].io == "devices" for n in selected)
        emulator = m.EmulatorProcess()
        try:
            urls = emulator.start()
            ctx = Context(sts_url=urls.sts_url, call_url=urls.call_url, **ctx_kwargs)
            pulse_cm = m.private_pulse() if needs_pulse else None
            ctx.pulse = pulse_cm.__enter__() if pulse_cm is not None else None
            try:
                for run in range(1, args.runs + 1):
                    for name in selected:
                        r = run_once(MODES[name], run, ctx)
                        results.append(r)
                        print(
                            f"  run {run} {name:24} {_fmt(r.cpu_pct, '.2f'):>6} % "
                            f"(load {_fmt(r.load_1min, '.2f')}) "
                            f"{'ok' if r.ok else 'FAILED'} {r.note}",
                            flush=True,
                        )
                        time.sleep(1.0)
            finally:
                if pulse_cm is not None:
                    pulse_cm.__exit__(None, None, None)
        finally:
            emulator.stop()
    print()
    print(report(results, selected, args))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    m.run_main(main)
