"""The floor of a Python client on real devices: two bare streams, nothing else.

    python bench/ref_device_floor.py --seconds 20

Opens the streams an `aivoco sts --echo off` call opens, as it opens them, through
python-sounddevice on the default devices: a microphone at 16 kHz and a speaker at
24 kHz, mono float32, 10 ms blocks; the microphone asks for PortAudio's low latency, the
speaker for 20 ms (the first step of aivoco's output ladder, what its 80 ms downlink
needs: docs/devices.md#latency). Each callback does the least a client can: the input
copies its block into a preallocated ring, the output writes silence. No network, no
framing, no second process, no UI. Prints one JSON line of counters at the end.

bench/bench_cpu.py runs it as `floor-dev-streams` beside aivoco and the Node client, on
the same virtual devices: what is left between this floor and aivoco is aivoco's own
work; what lies between the Node client and this floor is the price of 10 ms blocks
through the sound server, which the latency goals ask for. `--output-latency-ms 100`
and `--input-block-ms 128` give the floor at the Node client's own buffering.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import numpy as np
import sounddevice as sd

from aivoco.audio.capture import CAPTURE_BLOCK_MS
from aivoco.audio.streams import OUTPUT_STEPS

# aivoco's own settings, so the floor follows them: the protocol's rates, the input
# block, and the output ladder's first step (its latency and callback block).
IN_RATE_HZ = 16000
OUT_RATE_HZ = 24000
FIRST_STEP = OUTPUT_STEPS[0]
RING_S = 2


def run(seconds: float, input_block_ms: int, output_latency_ms: int) -> dict[str, Any]:
    ring = np.zeros(IN_RATE_HZ * RING_S, np.float32)
    counts = {"input_blocks": 0, "output_blocks": 0, "input_overflows": 0, "output_underflows": 0}
    pos = 0
    ready = threading.Event()

    def on_input(indata: Any, frames: int, _time: Any, status: Any) -> None:
        nonlocal pos
        if status.input_overflow:
            counts["input_overflows"] += 1
        if pos + frames > ring.size:  # every block is copied: a block that does not fit
            pos = 0  # before the end goes to the start
        ring[pos : pos + frames] = indata[:, 0]
        pos += frames
        counts["input_blocks"] += 1
        ready.set()

    def on_output(outdata: Any, _frames: int, _time: Any, status: Any) -> None:
        if status.output_underflow:
            counts["output_underflows"] += 1
        outdata.fill(0.0)
        counts["output_blocks"] += 1

    mic = sd.InputStream(
        samplerate=IN_RATE_HZ, channels=1, dtype="float32", latency="low",
        blocksize=IN_RATE_HZ * input_block_ms // 1000, callback=on_input,
    )  # fmt: skip
    speaker = sd.OutputStream(
        samplerate=OUT_RATE_HZ, channels=1, dtype="float32", latency=output_latency_ms / 1000,
        blocksize=OUT_RATE_HZ * FIRST_STEP.block_ms // 1000, callback=on_output,
    )  # fmt: skip
    with mic, speaker:
        # A consumer thread woken per block, as a client's uplink is (and as arecord's
        # reader in the Node client is per pipe read).
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready.wait(0.5):
                ready.clear()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--input-block-ms", type=int, default=round(CAPTURE_BLOCK_MS))
    ap.add_argument("--output-latency-ms", type=int, default=FIRST_STEP.latency_ms)
    args = ap.parse_args()
    stats = run(args.seconds, args.input_block_ms, args.output_latency_ms)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
