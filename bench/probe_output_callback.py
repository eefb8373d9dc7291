"""Does an output callback written in C keep a 20 ms speaker stream clean under load?

    pip install rtmixer                     # not a project dependency: this probe only
    python bench/probe_output_callback.py                  # 3 rounds, both cores busy
    python bench/probe_output_callback.py --busy 0 --rounds 1 --leads 20,40

Why (docs/performance.md#left): a 20 ms output stream meets the 80 ms downlink goal, but
its callback is Python and, with both cores busy, waits for the interpreter lock while
a thread of ours holds it, and the stream underflows. rtmixer (by python-sounddevice's
author) runs the callback in C, reading a ring buffer; something must still fill the
ring, and in aivoco that is Python. This probe measures both, side by side, in one run,
on the tests' private PulseAudio (tests/pulse.py), 24 kHz mono, 10 ms blocks, 20 ms
asked of PortAudio:

* `python`: a sounddevice callback writing a tone (what aivoco's speaker does today);
  counted: callbacks flagged as underflows.
* `c, lead L`: rtmixer's C callback playing a ring that a Python thread tops up to L ms
  every 5 ms; counted: times the ring ran dry (the C callback then plays silence and
  drops the ring; the thread starts it again) and device underflows.

Each trial runs in a subprocess of its own with `--contend` (3) Python threads doing
pure-Python work (what a call's uplink, loop and observer do), for `--seconds` (8) after
one second of settling; `--busy` (2) `python -c "while 1: pass"` processes keep the
cores busy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _measure as m

RATE_HZ = 24_000
BLOCK = 240  # 10 ms
LATENCY_S = 0.02


def _contend(stop: threading.Event) -> None:
    while not stop.is_set():
        total = 0
        for i in range(20_000):
            total += i
        time.sleep(0.001)


def _tone(start: int, frames: int) -> object:
    import numpy as np

    t = np.arange(start, start + frames) / RATE_HZ
    return (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def trial_python(seconds: float) -> str:
    import sounddevice as sd

    under = [0, 0]  # settling, measured
    pos = [0]
    measuring = threading.Event()

    def cb(out: object, frames: int, _t: object, status: object) -> None:
        if status.output_underflow:  # type: ignore[attr-defined]
            under[measuring.is_set()] += 1
        out[:, 0] = _tone(pos[0], frames)  # type: ignore[index]
        pos[0] += frames

    kw = {"samplerate": RATE_HZ, "blocksize": BLOCK, "channels": 1, "dtype": "float32"}
    with sd.OutputStream(latency=LATENCY_S, callback=cb, **kw) as stream:
        time.sleep(1.0)
        measuring.set()
        time.sleep(seconds)
        return f"python   latency {stream.latency * 1000:.0f} ms: underflows {under[1]}"


def trial_c(seconds: float, lead_ms: float) -> str:
    import rtmixer  # type: ignore[import-not-found,unused-ignore]

    mixer = rtmixer.Mixer(samplerate=RATE_HZ, blocksize=BLOCK, channels=1, latency=LATENCY_S)
    ring = rtmixer.RingBuffer(4, 8192)
    lead = int(RATE_HZ * lead_ms / 1000)
    pos = dry = 0
    mixer.start()

    def top_up() -> None:
        nonlocal pos
        want = lead - ring.read_available
        if want > 0:
            ring.write(_tone(pos, want))
            pos += want

    top_up()
    action = mixer.play_ringbuffer(ring)
    start = time.monotonic()
    while time.monotonic() < start + 1.0 + seconds:
        time.sleep(BLOCK / RATE_HZ / 2)
        top_up()
        if action not in mixer.actions:  # the ring ran dry: the callback dropped it
            dry += time.monotonic() > start + 1.0
            action = mixer.play_ringbuffer(ring)
    mixer.stop()
    underflows = mixer.stats.output_underflows
    mixer.close()
    return (
        f"c, lead {lead_ms:g} ms  latency {mixer.latency * 1000:.0f} ms: ring ran dry {dry}, "
        f"device underflows {underflows}"
    )


def run_trial(args: argparse.Namespace) -> None:
    stop = threading.Event()
    for _ in range(args.contend):
        threading.Thread(target=_contend, args=(stop,), daemon=True).start()
    if args.trial == "python":
        print(trial_python(args.seconds))
    else:
        print(trial_c(args.seconds, float(args.trial.split(":")[1])))
    stop.set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--leads", default="20,40", help="ring leads to try, ms")
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes")
    parser.add_argument("--contend", type=int, default=3, help="Python threads per trial")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--trial", help=argparse.SUPPRESS)  # one trial, in a subprocess
    args = parser.parse_args()
    if args.trial:
        run_trial(args)
        return 0
    try:
        import rtmixer  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        print("rtmixer is not installed: `pip install rtmixer` (this probe only)")
        return 2
    trials = ["python"] + [f"c:{lead}" for lead in args.leads.split(",")]
    print(f"{args.rounds} round(s), {args.busy} busy process(es), {args.contend} threads")
    with m.private_pulse() as pulse:
        env = {**os.environ, **pulse.client_env()}
        hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(args.busy)]
        try:
            for r in range(args.rounds):
                for trial in trials:
                    cmd = [sys.executable, __file__, "--trial", trial]
                    cmd += ["--contend", str(args.contend), "--seconds", str(args.seconds)]
                    out = subprocess.run(
                        cmd, check=False, env=env, capture_output=True, text=True, timeout=60
                    )
                    print(f"round {r + 1}  {out.stdout.strip() or out.stderr.strip()[-200:]}")
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
