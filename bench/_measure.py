"""Shared measurement helpers for the benchmarks in bench/ (not part of the aivoco package).

- `EmulatorProcess` / `InProcessEmulator`: `aivoco emulate --port 0` as a subprocess
  (its URLs parsed from the first lines it prints) or in this process.
- `TreeSampler`: samples a process and its descendants every `interval_s` from /proc:
  CPU (utime+stime, from /proc/PID/stat and per thread from /proc/PID/task/*/stat, with
  thread names from `comm`), voluntary and involuntary context switches (per thread
  from /proc/PID/task/*/status, summed: /proc/PID/status counts the main thread only)
  and RSS. `steady()` turns two samples into % of one core, per process and per
  thread, over a steady-state window that skips start-up.
- `Child`: a subprocess started in its own session, optionally on a pseudo-terminal of
  a given size (the live view only runs on a TTY), whose output is drained and counted
  on a thread; `stop()` ends it (SIGINT, SIGTERM, SIGKILL) and every `Child` still
  running is stopped at exit, also after Ctrl-C or an error.
- `private_pulse()`: the tests' private PulseAudio with null sinks (tests/pulse.py).
- `speech_file()`: a WAV of the demo utterance repeated with pauses, so the emulator's
  echo agent answers all through a long call.

Thread names: Python (before 3.14) does not name OS threads, so every Python thread's
`comm` reads "python". Commands run through `_named_threads.py` instead record each
Python thread's native id and name in a map file (and set `comm` to it); threads that are
not in the map were started by C code (PortAudio, libpulse) and are shown as
`native:<comm>`, where comm is inherited from the thread that created them.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
TESTS_DIR = REPO_DIR / "tests"
NAMED_THREADS = BENCH_DIR / "_named_threads.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- /proc sampling ------------------------------------------------------------------------
@dataclass(frozen=True)
class ThreadSample:
    tid: int
    comm: str
    ticks: int  # utime + stime
    voluntary: int
    involuntary: int
    sys_ticks: int = 0  # stime alone: time in the kernel (syscalls, wake-ups)


@dataclass(frozen=True)
class ProcSample:
    pid: int
    comm: str
    ticks: int  # utime + stime of the whole process (exited threads included)
    rss_kb: int
    threads: dict[int, ThreadSample]
    sys_ticks: int = 0

    @property
    def voluntary(self) -> int:
        return sum(t.voluntary for t in self.threads.values())

    @property
    def involuntary(self) -> int:
        return sum(t.involuntary for t in self.threads.values())


@dataclass(frozen=True)
class TreeSample:
    t: float  # time.monotonic()
    procs: dict[int, ProcSample]

    @property
    def rss_kb(self) -> int:
        return sum(p.rss_kb for p in self.procs.values())


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:  # the process or thread is gone
        return None


def _stat_fields(text: str) -> tuple[str, list[str]]:
    """(comm, fields from `state` on) of a /proc stat line; comm may hold spaces."""
    left, right = text.index("("), text.rindex(")")
    return text[left + 1 : right], text[right + 2 :].split()


def _ctxt(status: str) -> tuple[int, int]:
    vol = invol = 0
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            vol = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            invol = int(line.split()[1])
    return vol, invol


def read_process(pid: int, threads: bool = True) -> ProcSample | None:
    stat = _read(f"/proc/{pid}/stat")
    statm = _read(f"/proc/{pid}/statm")
    if stat is None or statm is None:
        return None
    comm, f = _stat_fields(stat)
    ticks = int(f[11]) + int(f[12])
    rss_kb = int(statm.split()[1]) * PAGE_KB
    found: dict[int, ThreadSample] = {}
    if threads:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            tids = []
        for tid in tids:
            tstat = _read(f"/proc/{pid}/task/{tid}/stat")
            tstatus = _read(f"/proc/{pid}/task/{tid}/status")
            if tstat is None or tstatus is None:
                continue
            tcomm, tf = _stat_fields(tstat)
            vol, invol = _ctxt(tstatus)
            found[tid] = ThreadSample(
                tid, tcomm, int(tf[11]) + int(tf[12]), vol, invol, int(tf[12])
            )
    return ProcSample(pid, comm, ticks, rss_kb, found, int(f[12]))


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (by scanning /proc for parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        try:
            _, f = _stat_fields(stat)
        except ValueError:
            continue
        parents.setdefault(int(f[1]), []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def read_tree(pid: int, children: bool = True) -> TreeSample:
    now = time.monotonic()
    procs: dict[int, ProcSample] = {}
    for p in [pid, *(descendants(pid) if children else [])]:
        s = read_process(p)
        if s is not None:
            procs[p] = s
    return TreeSample(now, procs)


class TreeSampler:
    """Samples a process tree every `interval_s` on a thread until `stop()`."""

    def __init__(self, pid: int, interval_s: float = 0.5, children: bool = True) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.children = children
        self.samples: list[TreeSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            sample = read_tree(self.pid, self.children)
            if self.pid not in sample.procs:
                return
            self.samples.append(sample)
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> list[TreeSample]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples


@dataclass
class Steady:
    """Figures over a steady-state window [first, last] of a sampled process tree."""

    seconds: float
    cpu_pct: float  # % of one core, whole tree
    sys_pct: float  # of which in the kernel (stime)
    by_process: dict[str, float]  # "comm[pid]" -> % of one core
    threads: list[tuple[str, float]]  # main process: (thread label, % of one core), desc.
    threads_sys: dict[str, float]  # main process: thread label -> kernel part of that %
    threads_wakeups: dict[str, float]  # main process: thread label -> voluntary ctx sw/s
    voluntary_per_s: float
    involuntary_per_s: float
    rss_start_mb: float
    rss_end_mb: float
    rss_max_mb: float
    series: list[tuple[float, float, float]] = field(default_factory=list)  # t, cpu%, rss MB


def thread_label(tid: int, comm: str, names: Mapping[int, str]) -> str:
    name = names.get(tid)
    return name if name is not None else f"native:{comm}"


def read_thread_map(path: Path | None) -> dict[int, str]:
    """The map written by _named_threads.py: one `tid<TAB>name` per line."""
    names: dict[int, str] = {}
    if path is None or not path.exists():
        return names
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        tid, _, name = line.partition("\t")
        if tid.isdigit():
            names[int(tid)] = name
    return names


def steady(
    samples: Sequence[TreeSample],
    start_t: float,
    end_t: float,
    main_pid: int,
    thread_names: Mapping[int, str] | None = None,
) -> Steady | None:
    """CPU, context switches and RSS between the first sample at or after `start_t` and the
    last at or before `end_t`. Processes or threads born inside the window count from
    zero; ones that died inside it are lost (except through the parent's exited-thread
    totals, which /proc/PID/stat keeps)."""
    window = [s for s in samples if start_t <= s.t <= end_t]
    if len(window) < 2:
        return None
    first, last = window[0], window[-1]
    dt = last.t - first.t
    names = thread_names or {}

    def delta_proc(pid: int, p: ProcSample) -> tuple[int, int, int, int]:
        before = first.procs.get(pid)
        if before is None:
            return p.ticks, p.voluntary, p.involuntary, p.sys_ticks
        vol = inv = 0
        for tid, t in p.threads.items():
            b = before.threads.get(tid)
            vol += t.voluntary - (b.voluntary if b else 0)
            inv += t.involuntary - (b.involuntary if b else 0)
        return p.ticks - before.ticks, vol, inv, p.sys_ticks - before.sys_ticks

    by_process: dict[str, float] = {}
    total_ticks = total_vol = total_inv = total_sys = 0
    for pid, p in last.procs.items():
        ticks, vol, inv, sys_ticks = delta_proc(pid, p)
        total_ticks += ticks
        total_sys += sys_ticks
        total_vol += vol
        total_inv += inv
        by_process[f"{p.comm}[{pid}]"] = 100.0 * ticks / CLK_TCK / dt
    threads: dict[str, float] = {}
    threads_sys: dict[str, float] = {}
    threads_wakeups: dict[str, float] = {}
    main_last, main_first = last.procs.get(main_pid), first.procs.get(main_pid)
    if main_last is not None:
        for tid, t in main_last.threads.items():
            tb = main_first.threads.get(tid) if main_first else None
            ticks = t.ticks - (tb.ticks if tb else 0)
            sys_ticks = t.sys_ticks - (tb.sys_ticks if tb else 0)
            label = thread_label(tid, t.comm, names)
            threads[label] = threads.get(label, 0.0) + 100.0 * ticks / CLK_TCK / dt
            threads_sys[label] = threads_sys.get(label, 0.0) + 100.0 * sys_ticks / CLK_TCK / dt
            vol = t.voluntary - (tb.voluntary if tb else 0)
            threads_wakeups[label] = threads_wakeups.get(label, 0.0) + vol / dt
    series = []
    for a, b in itertools.pairwise(window):
        ticks = sum(
            p.ticks - (a.procs[pid].ticks if pid in a.procs else 0) for pid, p in b.procs.items()
        )
        series.append((b.t - first.t, 100.0 * ticks / CLK_TCK / (b.t - a.t), b.rss_kb / 1024))
    return Steady(
        seconds=dt,
        cpu_pct=100.0 * total_ticks / CLK_TCK / dt,
        sys_pct=100.0 * total_sys / CLK_TCK / dt,
        by_process=by_process,
        threads=sorted(threads.items(), key=lambda kv: -kv[1]),
        threads_sys=threads_sys,
        threads_wakeups=threads_wakeups,
        voluntary_per_s=total_vol / dt,
        involuntary_per_s=total_inv / dt,
        rss_start_mb=first.rss_kb / 1024,
        rss_end_mb=last.rss_kb / 1024,
        rss_max_mb=max(s.rss_kb for s in window) / 1024,
        series=series,
    )


# -- child processes -----------------------------------------------------------------------
_CHILDREN: set[Child] = set()
_CHILDREN_LOCK = threading.Lock()


class Child:
    """A subprocess in its own session; output drained and counted on a thread.

    `tty=(cols, rows)` runs it on a fresh pseudo-terminal of that size (stdin, stdout and
    stderr all on it). Otherwise stdout and stderr go to a pipe each, kept in memory
    (`stdout_text()`, `stderr_text()`) unless `keep_output=False`; stdin is a pipe when
    `stdin_pipe` (write with `send()`), else /dev/null.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        tty: tuple[int, int] | None = None,
        stdin_pipe: bool = False,
        keep_output: bool = True,
    ) -> None:
        self.args = list(args)
        self.tty = tty
        self.output_bytes = 0
        self.keep_output = keep_output
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._master: int | None = None
        self.started_at = time.monotonic()
        if tty is not None:
            master, slave = pty.openpty()
            cols, rows = tty
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                self.args,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
            os.close(slave)
            self._master = master
            self._spawn_reader(master, self._out)
        else:
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self._spawn_reader(self.proc.stdout.fileno(), self._out)
            self._spawn_reader(self.proc.stderr.fileno(), self._err, count=False)
        with _CHILDREN_LOCK:
            _CHILDREN.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _spawn_reader(self, fd: int, sink: list[bytes], count: bool = True) -> None:
        def run() -> None:
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the pty's other side closed
                    return
                if not data:
                    return
                with self._lock:
                    if count:
                        self.output_bytes += len(data)
                    if self.keep_output:
                        sink.append(data)

        t = threading.Thread(target=run, name="bench-drain", daemon=True)
        t.start()
        self._readers.append(t)

    def stdout_text(self) -> str:
        with self._lock:
            return b"".join(self._out).decode("utf-8", "replace")

    def stderr_text(self) -> str:
        with self._lock:
            return b"".join(self._err).decode("utf-8", "replace")

    def send(self, text: str) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        if stdin is None:
            return
        with contextlib.suppress(OSError):
            stdin.write(text.encode())
            stdin.flush()

    def wait_for_output(self, pattern: str, timeout_s: float) -> bool:
        """Wait until stdout (or the pty) shows `pattern` (a regex)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if rx.search(self.stdout_text()):
                return True
            if self.proc.poll() is not None:
                return bool(rx.search(self.stdout_text()))
            time.sleep(0.05)
        return False

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 5.0) -> int:
        """SIGINT (a graceful hang-up for aivoco), then SIGTERM, then SIGKILL."""
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 3.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait_s)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        # Children of the child in its session (e.g. the Node client's arecord).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for t in self._readers:
            t.join(timeout=2)
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with _CHILDREN_LOCK:
            _CHILDREN.discard(self)
        return self.proc.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all_children() -> None:
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for child in children:
        with contextlib.suppress(Exception):
            child.stop(grace_s=1.0)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def install_cleanup() -> None:
    """Stop every child on exit; SIGTERM behaves like Ctrl-C (unwinds, then cleans up)."""
    atexit.register(stop_all_children)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def run_main(main: Callable[[], None]) -> None:
    """A bench script's entry point: Ctrl-C or SIGTERM (see install_cleanup) ends it with
    "interrupted" and exit 130, its children already stopped on the way out."""
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


# Another checkout of aivoco to measure (`--aivoco-root`, e.g. a worktree of an older
# commit for "before" figures): its directory goes first on the child's PYTHONPATH,
# ahead of this environment's (editable) install. None: the aivoco installed here.
@dataclass
class _Build:
    root: Path | None = None


AIVOCO_BUILD = _Build()


def set_aivoco_root(root: Path | None) -> None:
    """Measure the aivoco in `root` (a checkout: `root/aivoco/__init__.py`)."""
    AIVOCO_BUILD.root = None if root is None else check_root(root)


def check_root(root: Path) -> Path:
    if not (root / "aivoco" / "__init__.py").is_file():
        raise SystemExit(f"{root}: not an aivoco checkout (no aivoco/__init__.py)")
    return root.resolve()


def aivoco_env(env: dict[str, str], root: Path | None = None) -> dict[str, str]:
    """`env` for an aivoco child: `root` (default: `--aivoco-root`) first on PYTHONPATH."""
    root = root or AIVOCO_BUILD.root
    if root is None:
        return env
    rest = env.get("PYTHONPATH")
    path = os.pathsep.join(filter(None, [str(root), rest]))
    # PYTHONSAFEPATH (Python 3.11+): `python -m` must not put the working directory,
    # possibly another checkout, ahead of PYTHONPATH.
    return {**env, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"}


def aivoco_label(root: Path | None = None) -> str:
    """Which aivoco the benchmark runs, for its report."""
    root = root or AIVOCO_BUILD.root or REPO_DIR
    head = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return f"aivoco from {root}" + (f" ({head[:60]})" if head else "")


def aivoco_command(*args: str, thread_map: Path | None = None) -> list[str]:
    """`python -m aivoco ARGS`, through the thread-naming shim when `thread_map` is set."""
    if thread_map is None:
        return [sys.executable, "-m", "aivoco", *args]
    return [sys.executable, str(NAMED_THREADS), str(thread_map), "-m", "aivoco", *args]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without AIVOCO_* (no key or URL leaks in), COLUMNS or LINES."""
    drop = ("COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIVOCO_") and k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TERM", "xterm-256color")
    env.update(extra or {})
    return env


# -- the emulator ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EmulatorUrls:
    sts_url: str  # http://127.0.0.1:PORT
    call_url: str  # ws://127.0.0.1:PORT/ws  (append /{key}/{agent})


class EmulatorProcess:
    """`aivoco emulate --port 0` in a subprocess; URLs parsed from what it prints."""

    def __init__(self, latency_ms: float = 300.0, log_level: str = "info") -> None:
        self.args = [
            sys.executable,
            "-m",
            "aivoco",
            "emulate",
            "--port",
            "0",
            "--latency-ms",
            f"{latency_ms:g}",
            "--credits",
            "1000000",
            "--log-level",
            log_level,
        ]
        self.child: Child | None = None
        self.urls: EmulatorUrls | None = None
        self._log = ""

    def start(self, timeout_s: float = 20.0) -> EmulatorUrls:
        self.child = Child(self.args, env=clean_env())
        if not self.child.wait_for_output(r"agent call \(WebSocket\):\s+\S+", timeout_s):
            err = self.child.stderr_text()[-2000:]
            self.child.stop()
            raise RuntimeError(f"the emulator did not start: {err}")
        text = self.child.stdout_text()
        sts = re.search(r"Speech-to-Speech \(Socket\.IO\):\s+(\S+)", text)
        call = re.search(r"agent call \(WebSocket\):\s+(\S+)/\{key\}/\{agent\}", text)
        if sts is None or call is None:
            self.child.stop()
            raise RuntimeError(f"cannot parse the emulator's URLs from: {text!r}")
        self.urls = EmulatorUrls(sts.group(1), call.group(1))
        return self.urls

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def log(self) -> str:
        return self.child.stderr_text() if self.child is not None else self._log

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self._log = self.child.stderr_text()
            self.child = None

    def __enter__(self) -> EmulatorUrls:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class InProcessEmulator:
    """The emulator on a thread of this process (adds its CPU to this process)."""

    def __init__(self, latency_ms: float = 300.0) -> None:
        from aivoco.emulator import Emulator, EmulatorConfig

        self.emulator = Emulator(
            EmulatorConfig(host="127.0.0.1", port=0, latency_ms=latency_ms, credits=1e6)
        )

    def __enter__(self) -> EmulatorUrls:
        self.emulator.start()
        return EmulatorUrls(self.emulator.sts_url, self.emulator.call_url)

    def __exit__(self, *exc: object) -> None:
        self.emulator.stop()


# -- PulseAudio ----------------------------------------------------------------------------
@contextlib.contextmanager
def private_pulse() -> Iterator[Any]:
    """The tests' private PulseAudio (tests/pulse.py): yields a started `PulseServer`.

    Sinks: aivoco_spk (default sink; its monitor is what the speaker played),
    aivoco_micsrc (play into it), aivoco_mic (default source = aivoco_micsrc.monitor).
    """
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from pulse import PulseServer

    with tempfile.TemporaryDirectory(prefix="aivoco-bench-pulse-") as root:
        server = PulseServer(Path(root)).start()
        try:
            yield server
        finally:
            server.stop()


def play_into_mic(pulse: Any, wav: Path) -> Child:
    """paplay `wav` into the virtual microphone (aivoco_micsrc); stop() ends it."""
    return Child(
        ["paplay", "--device=aivoco_micsrc", str(wav)], env=pulse.client_env(), keep_output=False
    )


# -- audio input ---------------------------------------------------------------------------
def speech_file(path: Path, seconds: float, rate_hz: int, gap_s: float = 5.5) -> Path:
    """The demo utterance (3.8 s) then `gap_s` of silence, repeated for `seconds`, as a
    mono PCM16 WAV at `rate_hz`. The emulator echoes each utterance ~0.9 s after it ends
    and stops a reply when new speech starts (barge-in), so the gap leaves room for the
    whole 3.8 s echo: audio flows up ~40 % and down ~40 % of the time."""
    import soundfile

    from aivoco.audio.files import read_file
    from aivoco.emulator.assets import demo_utterance_path

    utt = read_file(demo_utterance_path(), rate_hz).mono_samples()
    period = np.concatenate([utt, np.zeros(round(gap_s * rate_hz), np.int16)])
    reps = int(np.ceil(seconds * rate_hz / period.size))
    data = np.tile(period, reps)[: round(seconds * rate_hz)]
    soundfile.write(str(path), data, rate_hz, subtype="PCM_16")
    return path


# -- small statistics ------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain Markdown table (readable in a terminal, pastable into RESULTS.md)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def wait_readable(fd: int, timeout_s: float) -> bool:
    r, _, _ = select.select([fd], [], [], timeout_s)
    return bool(r)


def machine_line() -> str:
    cpu = "unknown CPU"
    text = _read("/proc/cpuinfo") or ""
    m = re.search(r"model name\s*:\s*(.+)", text)
    if m:
        cpu = m.group(1).strip()
    load = " ".join((_read("/proc/loadavg") or "? ? ?").split()[:3])
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {load}"
    )
