"""Soak: one long call against the emulator; the client's RSS and CPU over time as
slopes, and the recording's drift against the wall clock and between its tracks.

The client is the real command in a subprocess (`aivoco sts` or `aivoco call`), sending
a file that repeats the demo utterance every `PERIOD_S` seconds; the emulator (in this
process, so its own memory does not count) answers each one. Every `--every` seconds
the client's RSS (VmRSS) and CPU time (utime + stime) are sampled from /proc. After the
call:

* RSS and CPU slopes are least-squares fits over the samples after the first minute
  (warm-up), in MB per hour and percentage points per hour: flat is the goal;
* recording vs call: the recording's length against the call's own duration;
* track drift: the onsets of the user's utterances in the recording's left track
  against the input's clock (`PERIOD_S` apart), and the agent's answers in the right
  track against the user's utterances (a constant latency if the tracks keep time).

    python bench/soak.py                    # 10 minutes, sts
    python bench/soak.py --minutes 60 --protocol call --keep /tmp/soak

Linux only (/proc). The machine's other load shows in the CPU figures; say what else ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from aivoco.audio.files import read_file
from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.emulator.assets import demo_utterance_path

PERIOD_S = 8.0  # one utterance every 8 s: speech, then quiet for the agent's answer
KEY = "soak-key-4d7e1b92"
WARM_UP_S = 60.0
_TICK_S = float(1 / 100)  # envelope frames of 10 ms


@dataclass(frozen=True)
class Sample:
    t_s: float
    rss_mb: float
    cpu_s: float


def make_input(path: Path, seconds: float) -> int:
    """The demo utterance every PERIOD_S seconds, `seconds` long (16 kHz); how many."""
    rate = 16000
    speech = read_file(demo_utterance_path(), rate).mono_samples()
    period = np.zeros(int(PERIOD_S * rate), np.int16)
    period[: speech.shape[0]] = speech
    count = int(seconds // PERIOD_S)
    with soundfile.SoundFile(str(path), "w", rate, 1, "PCM_16") as f:
        for _ in range(count):
            f.write(period)
    return count


def sample(pid: int, t0: float) -> Sample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    rss_kb = int(status.split("VmRSS:")[1].split()[0])
    ticks = int(stat[11]) + int(stat[12])  # utime, stime (fields 14 and 15)
    return Sample(time.monotonic() - t0, rss_kb / 1024, ticks / _clock_ticks())


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def client_command(emu: Emulator, args: argparse.Namespace, work: Path) -> list[str]:
    seconds = args.minutes * 60
    make_input(work / "in.wav", seconds + PERIOD_S)
    if args.protocol == "sts":
        target = ["sts", "--url", emu.sts_url]
    else:
        target = ["call", "--url", emu.call_url, "--agent", "soak"]
    return [
        sys.executable, "-m", "aivoco", *target, "--key", KEY,
        "--input", str(work / "in.wav"), "--output", str(work / "agent.wav"),
        "--record", str(work / "rec.wav"), "--transcript", str(work / "t.jsonl"),
        "--max-duration", str(seconds), "--json",
    ]  # fmt: skip


class Client:
    """The client process, its output drained as it comes (a full pipe would stall it)."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.summary: dict[str, Any] = {}
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if '"type": "summary"' in line:
                self.summary = json.loads(line)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def watch(self, every_s: float) -> list[Sample]:
        t0 = time.monotonic()
        samples: list[Sample] = []
        while self.proc.poll() is None:
            s = sample(self.proc.pid, t0)
            if s is not None:
                samples.append(s)
                if len(samples) % max(1, round(60 / every_s)) == 1:
                    print(f"  {s.t_s / 60:6.1f} min  RSS {s.rss_mb:7.1f} MB  "
                          f"CPU {s.cpu_s:8.1f} s", flush=True)  # fmt: skip
            time.sleep(every_s)
        for reader in self._readers:
            reader.join(10)
        if self.proc.returncode != 0:
            tail = "".join(self.stderr)[-2000:]
            raise SystemExit(f"the client exited with {self.proc.returncode}: {tail}")
        return samples


def slope_per_hour(t_s: np.ndarray, y: np.ndarray) -> float:
    if t_s.shape[0] < 3:
        return float("nan")
    return float(np.polyfit(t_s / 3600.0, y, 1)[0])


def report_resources(samples: list[Sample]) -> None:
    t = np.array([s.t_s for s in samples])
    rss = np.array([s.rss_mb for s in samples])
    cpu = np.array([s.cpu_s for s in samples])
    cpu_pct = np.diff(cpu) / np.diff(t) * 100  # per interval
    mid_t = (t[1:] + t[:-1]) / 2
    after = t >= min(WARM_UP_S, t[-1] / 4)
    after_mid = mid_t >= min(WARM_UP_S, t[-1] / 4)
    half = t >= t[-1] / 2
    print(f"RSS: {rss[after][0]:.1f} MB after warm-up, {rss[-1]:.1f} MB at the end, "
          f"max {rss.max():.1f} MB; slope {slope_per_hour(t[after], rss[after]):+.2f} MB/hour "
          f"after warm-up, {slope_per_hour(t[half], rss[half]):+.2f} MB/hour over the "
          "second half")  # fmt: skip
    print(f"CPU: mean {cpu_pct[after_mid].mean():.2f} % of one core; slope "
          f"{slope_per_hour(mid_t[after_mid], cpu_pct[after_mid]):+.2f} points/hour")  # fmt: skip


def onsets(track: np.ndarray, rate: int) -> np.ndarray:
    """Times (s) where sound starts after at least 1 s of quiet (10 ms envelope)."""
    hop = int(rate * _TICK_S)
    frames = track[: track.shape[0] // hop * hop].astype(np.float32).reshape(-1, hop)
    loud = np.sqrt((frames**2).mean(axis=1)) > 300.0
    found, quiet = [], 100
    for i, is_loud in enumerate(loud):
        if is_loud and quiet >= 100:
            found.append(i * _TICK_S)
        quiet = 0 if is_loud else quiet + 1
    return np.array(found)


def report_drift(work: Path, summary: dict[str, Any]) -> None:
    data, rate = soundfile.read(str(work / "rec.wav"), dtype="int16", always_2d=True)
    length_s = data.shape[0] / rate
    duration_s = float(summary["duration_s"])
    print(f"recording: {length_s:.2f} s for a call of {duration_s:.2f} s "
          f"({length_s - duration_s:+.3f} s)")  # fmt: skip
    user, agent = onsets(data[:, 0], rate), onsets(data[:, 1], rate)
    if user.shape[0] < 3:
        print("tracks: too few utterances to fit a drift")
        return
    k = np.arange(user.shape[0])
    fit = np.polyfit(k * PERIOD_S, user, 1)
    user_drift_ms_h = (fit[0] - 1.0) * 3600 * 1000
    print(f"user track: {user.shape[0]} utterances, {PERIOD_S:g} s apart by the input's clock; "
          f"drift {user_drift_ms_h:+.1f} ms/hour, worst offset "
          f"{np.abs(user - np.polyval(fit, k * PERIOD_S)).max() * 1000:.0f} ms")  # fmt: skip
    pairs = [(u, a) for u in user for a in agent[(agent > u) & (agent < u + PERIOD_S)][:1]]
    if len(pairs) >= 3:
        u, a = np.array(pairs).T
        lat = a - u
        drift = slope_per_hour(u, lat) * 1000
        print(f"agent track: {len(pairs)} answers, latency {lat.mean():.3f} s "
              f"(sd {lat.std() * 1000:.0f} ms); drift against the user track "
              f"{drift:+.1f} ms/hour")  # fmt: skip
        # The jitter buffer's pre-fill grows 20 ms per underrun (up to 240 ms): answers
        # then start that much later, by design, which is not a clock drifting.
        print(f"    playback pre-fill 60 -> {summary.get('playback_prefill_ms')} ms after "
              f"{summary.get('playback_underruns')} underruns; latency of the first 5 answers "
              f"{lat[:5].mean():.3f} s, of the last 5 {lat[-5:].mean():.3f} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--protocol", choices=["sts", "call"], default="sts")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--keep", type=Path, help="keep the files in this directory")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="aivoco-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    config = EmulatorConfig(port=0, credits=1e9, accept_keys=(KEY,))
    print(f"soak: {args.protocol}, {args.minutes:g} min against the emulator; files in {work}")
    started = time.monotonic()
    with Emulator(config) as emu:
        client = Client(client_command(emu, args, work))
        samples = client.watch(args.every)
    summary = client.summary
    print(
        f"done in {(time.monotonic() - started) / 60:.1f} min; "
        f"summary: turns {summary.get('turns')}, protocol errors "
        f"{summary.get('protocol_errors')}, underruns {summary.get('playback_underruns')}"
    )
    report_resources(samples)
    report_drift(work, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
