"""Streaming resamplers for device <-> protocol rates, fed 20 ms chunks like a call.

For each rate pair and each implementation it prints:
  * CPU ms per second of audio (best of N passes over 10 s of speech-like noise), and
  * audio held back, in ms: after each 20 ms chunk, (input fed - output emitted) in
    seconds; worst and mean over the stream. This is latency the resampler adds.

Implementations, side by side:
  aivoco           aivoco.audio.resample.StreamResampler (libsamplerate sinc_medium, fed
                   fixed 2.5 ms blocks so chunking cannot change its output)
  lsr-medium       libsamplerate sinc_medium fed the 20 ms chunks directly
  lsr-fastest      libsamplerate sinc_fastest, direct
  lsr-best         libsamplerate sinc_best, direct
  soxr-HQ/LQ       soxr.ResampleStream at quality 'HQ' / 'LQ'
No speed is asserted: run `python bench/bench_resampler.py` and read the table.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from aivoco.audio.resample import StreamResampler

PAIRS = [
    (48000, 16000),
    (44100, 16000),
    (48000, 8000),
    (24000, 48000),
    (8000, 48000),
    (24000, 44100),
]
SECONDS = 10
CHUNK_MS = 20
REPEATS = 3

Float32Array = npt.NDArray[np.float32]
# A factory returns a fresh stream: a function from one input chunk to its output.
Stream = Callable[[Float32Array], Float32Array]
Factory = Callable[[int, int], Stream]


def optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


samplerate = optional("samplerate")
soxr = optional("soxr")


def speech_like(seconds: int, rate: int, seed: int = 3) -> Float32Array:
    rng = np.random.default_rng(seed)
    n = seconds * rate
    t = np.arange(n) / rate
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, 1)
    x = rng.laplace(0, 0.1, n) * envelope + 0.2 * np.sin(2 * np.pi * 220 * t) * envelope
    out: Float32Array = np.clip(x, -1, 1).astype(np.float32)
    return out


def aivoco_stream(in_rate: int, out_rate: int) -> Stream:
    rs = StreamResampler(in_rate, out_rate)

    def run(x: Float32Array) -> Float32Array:
        return rs.process_float(x)[:, 0]

    return run


def lsr_stream(converter: str) -> Factory:
    def make(in_rate: int, out_rate: int) -> Stream:
        assert samplerate is not None
        impl: Any = samplerate.Resampler(converter, channels=1)
        ratio = out_rate / in_rate

        def run(x: Float32Array) -> Float32Array:
            return np.asarray(impl.process(x, ratio, end_of_input=False), np.float32)

        return run

    return make


def soxr_stream(quality: str) -> Factory:
    def make(in_rate: int, out_rate: int) -> Stream:
        assert soxr is not None
        impl: Any = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)

        def run(x: Float32Array) -> Float32Array:
            return np.asarray(impl.resample_chunk(x), np.float32)

        return run

    return make


def implementations() -> list[tuple[str, Factory]]:
    out: list[tuple[str, Factory]] = [("aivoco", aivoco_stream)]
    if samplerate is not None:
        out += [
            ("lsr-medium", lsr_stream("sinc_medium")),
            ("lsr-fastest", lsr_stream("sinc_fastest")),
            ("lsr-best", lsr_stream("sinc_best")),
        ]
    if soxr is not None:
        out += [("soxr-HQ", soxr_stream("HQ")), ("soxr-LQ", soxr_stream("LQ"))]
    return out


def measure(
    factory: Factory, in_rate: int, out_rate: int, x: Float32Array
) -> tuple[float, float, float]:
    """(CPU ms per audio second, worst held-back ms, mean held-back ms)."""
    step = in_rate * CHUNK_MS // 1000
    chunks = [x[i : i + step] for i in range(0, x.size, step)]
    best = float("inf")
    held: list[float] = []
    for attempt in range(REPEATS):
        stream = factory(in_rate, out_rate)
        fed = emitted = 0
        held = []
        start = time.process_time()
        for chunk in chunks:
            emitted += stream(chunk).shape[0]
            fed += chunk.shape[0]
            held.append((fed / in_rate - emitted / out_rate) * 1000)
        elapsed = time.process_time() - start
        best = min(best, elapsed) if attempt else elapsed
    return best / SECONDS * 1000, max(held), float(np.mean(held))


def main() -> int:
    impls = implementations()
    print(f"{SECONDS} s of speech-like audio per pair, {CHUNK_MS} ms chunks, best of {REPEATS}")
    missing = [name for name, mod in (("samplerate", samplerate), ("soxr", soxr)) if mod is None]
    if missing:
        print(f"not installed, left out: {', '.join(missing)}")
    print("CPU = ms of CPU time per second of audio; held = audio held back after a chunk")
    print()
    print(
        f"{'pair':<14} {'resampler':<12} {'CPU ms/s':>9} {'worst held ms':>14} {'mean held ms':>13}"
    )
    for in_rate, out_rate in PAIRS:
        x = speech_like(SECONDS, in_rate)
        for name, factory in impls:
            cpu, worst, mean = measure(factory, in_rate, out_rate, x)
            pair = f"{in_rate}->{out_rate}"
            print(f"{pair:<14} {name:<12} {cpu:>9.2f} {worst:>14.1f} {mean:>13.1f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
