"""What the speaker process costs: its CPU, and how long a speaker takes to be ready.

    python bench/probe_speaker_process.py              # 10 s per phase, both ladders
    python bench/probe_speaker_process.py --seconds 5 --rounds 2

Why (docs/devices.md#process): a call's output stream runs in a child process, from a
20 ms first step. bench_cpu.py counts the child with the call; this probe splits what it
costs, on the tests' private PulseAudio (tests/pulse.py), 24 kHz:

* the child's CPU (% of one core, from /proc) with the stream settled and nothing
  started, started and playing silence, and playing 20 ms chunks paced in real time (as
  an agent sends them), for the call's ladder (from 20 ms) and for one from 100 ms (what
  every earlier release asked for), side by side;
* how long building the speaker takes and when its stream has settled, for the
  process and for the in-process `DevicePlayer` it replaces.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m

RATE_HZ = 24_000
CHUNK = 480  # 20 ms


def child_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(player: object) -> float:
    start = time.monotonic()
    while player.stats().output_latency_ms is None:  # type: ignore[attr-defined]
        if time.monotonic() - start > 20:
            raise SystemExit("the stream did not settle in 20 s")
        time.sleep(0.01)
    return time.monotonic() - start


def phases(steps: tuple, seconds: float) -> list[float]:  # type: ignore[type-arg]
    import numpy as np

    from aivoco.audio.chunk import AudioChunk
    from aivoco.audio.speaker_proc import ProcessPlayer

    player: ProcessPlayer[str] = ProcessPlayer("pulse", rate_hz=RATE_HZ, steps=steps)
    pid = player._proc.pid
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(CHUNK) / RATE_HZ) * 32767).astype(np.int16)
    out = []
    try:
        settle(player)
        for phase in ("idle", "silence", "playing"):
            if phase == "silence":
                player.start()
            before, start, n = child_cpu_s(pid), time.monotonic(), 0
            while (now := time.monotonic()) - start < seconds:
                due = start + n * CHUNK / RATE_HZ
                if due > now:
                    time.sleep(due - now)
                if phase == "playing":
                    player.play(AudioChunk(tone, RATE_HZ))
                n += 1
                if n % 2 == 0:  # what a call's uplink and observer take back
                    player.take_played()
                    player.reference.read()
            out.append(100 * (child_cpu_s(pid) - before) / (time.monotonic() - start))
    finally:
        player.close()
    return out


def readiness() -> list[str]:
    from aivoco.audio.engine import DevicePlayer
    from aivoco.audio.speaker_proc import ProcessPlayer

    rows = []
    for cls in (DevicePlayer, ProcessPlayer):
        start = time.monotonic()
        player: Any = cls("pulse", rate_hz=RATE_HZ)
        built = time.monotonic() - start
        settled = built + settle(player)
        player.close()
        rows.append(f"| {cls.__name__} | {built * 1000:.0f} | {settled * 1000:.0f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with m.private_pulse() as pulse:
        os.environ.update(pulse.client_env())
        from aivoco.audio.devices import load_sounddevice
        from aivoco.audio.streams import OUTPUT_STEPS

        load_sounddevice()  # PortAudio's start is the call's, not the speaker's
        print("child CPU, % of one core: settled / started, silence / playing 20 ms chunks")
        print("| ladder | idle | silence | playing |\n|---|---|---|---|")
        for _ in range(args.rounds):
            for name, steps in (("from 20 ms", OUTPUT_STEPS), ("from 100 ms", OUTPUT_STEPS[1:])):
                cells = " | ".join(f"{x:.2f}" for x in phases(steps, args.seconds))
                print(f"| {name} | {cells} |", flush=True)
        print("\nms from asking for the speaker: built / its stream settled")
        print("| speaker | built | settled |\n|---|---|---|")
        for _ in range(args.rounds):
            print("\n".join(readiness()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
