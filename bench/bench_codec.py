"""G.711 mu-law: aivoco.audio.g711 side by side with CPython's audioop (the C reference).

One minute of 8 kHz speech-like noise is encoded and decoded two ways:
  * in one call (the whole minute), which measures raw throughput, and
  * in 3000 calls of 20 ms (160 samples), the way the agent-call protocol uses it, where
    per-call overhead dominates.
Each figure is the best of N repetitions (time.perf_counter); outputs are compared for
identity. No speed is asserted: run `python bench/bench_codec.py` and read the table.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import numpy.typing as npt

from aivoco.audio.g711 import ulaw_decode, ulaw_encode

RATE = 8000
SECONDS = 60
FRAME = 160  # 20 ms at 8 kHz
REPEATS = 7


def load_audioop() -> ModuleType | None:
    # audioop is deprecated on 3.11/3.12 (gone in 3.13, where audioop-lts provides it).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            return None


def speech_like(seconds: int, rate: int, seed: int = 7) -> npt.NDArray[np.int16]:
    """Laplacian noise, low-passed and shaped by a ~4 Hz syllable envelope with pauses:
    the level distribution of speech, which decides which mu-law segments get used."""
    rng = np.random.default_rng(seed)
    n = seconds * rate
    x = rng.laplace(0.0, 1.0, n)
    x = np.convolve(x, np.ones(4) / 4, mode="same")  # a gentle low-pass
    t = np.arange(n) / rate
    envelope = np.clip(
        np.sin(2 * np.pi * 4 * t) + 0.3 * rng.standard_normal(n).cumsum() / 300, 0, 1
    )
    envelope *= rng.random(n // rate + 1).repeat(rate)[:n] > 0.2  # whole-second pauses
    y = x * envelope / np.abs(x).max() * 0.8 * 32767
    out: npt.NDArray[np.int16] = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
    return out


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Best wall time in seconds over `repeats` runs (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def row(label: str, ours_s: float, ref_s: float | None, calls: int) -> str:
    ours_us = ours_s / calls * 1e6
    if ref_s is None:
        return f"{label:<34} {ours_us:>12.2f} {'-':>12} {'-':>8}"
    ref_us = ref_s / calls * 1e6
    return f"{label:<34} {ours_us:>12.2f} {ref_us:>12.2f} {ours_us / ref_us:>7.2f}x"


def main() -> int:
    audioop = load_audioop()
    pcm = speech_like(SECONDS, RATE)
    pcm_bytes = pcm.astype("<i2").tobytes()
    codes = ulaw_encode(pcm)
    code_bytes = codes.tobytes()
    frames = [pcm[i : i + FRAME] for i in range(0, pcm.size, FRAME)]
    frame_codes = [code_bytes[i : i + FRAME] for i in range(0, len(code_bytes), FRAME)]
    frame_pcm_bytes = [f.astype("<i2").tobytes() for f in frames]

    print(f"G.711 mu-law, {SECONDS} s of 8 kHz speech-like noise ({pcm.size} samples)")
    print(f"Python {platform.python_version()}, numpy {np.__version__}, best of {REPEATS}")
    if audioop is None:
        print("audioop not available: showing aivoco figures only")
    else:
        identical_enc = audioop.lin2ulaw(pcm_bytes, 2) == code_bytes
        identical_dec = audioop.ulaw2lin(code_bytes, 2) == ulaw_decode(code_bytes).tobytes()
        print(f"outputs identical to audioop: encode {identical_enc}, decode {identical_dec}")
        if not (identical_enc and identical_dec):
            print("MISMATCH: the codec is not bit-exact with audioop")
            return 1
    print()
    print(f"{'operation (time per call)':<34} {'aivoco µs':>12} {'audioop µs':>12} {'ratio':>8}")

    # Whole minute in one call.
    ours = best_of(lambda: ulaw_encode(pcm))
    ref = best_of(lambda: audioop.lin2ulaw(pcm_bytes, 2)) if audioop else None
    print(row("encode 1 min, one call", ours, ref, 1))
    ours = best_of(lambda: ulaw_decode(code_bytes))
    ref = best_of(lambda: audioop.ulaw2lin(code_bytes, 2)) if audioop else None
    print(row("decode 1 min, one call", ours, ref, 1))

    # 20 ms frames, as the protocol sends them. audioop works on bytes; ours on arrays
    # (encode) and bytes (decode), which is what the wire code has at hand.
    n = len(frames)
    ours = best_of(lambda: [ulaw_encode(f) for f in frames])
    ref = best_of(lambda: [audioop.lin2ulaw(b, 2) for b in frame_pcm_bytes]) if audioop else None
    print(row(f"encode 20 ms frame ({n} calls)", ours, ref, n))
    ours = best_of(lambda: [ulaw_decode(c) for c in frame_codes])
    ref = best_of(lambda: [audioop.ulaw2lin(c, 2) for c in frame_codes]) if audioop else None
    print(row(f"decode 20 ms frame ({n} calls)", ours, ref, n))

    # What a call really pays per 20 ms frame, including the conversions each side needs
    # to go from/to an int16 array (audioop: bytes in, bytes out).
    ours = best_of(lambda: [ulaw_encode(f).tobytes() for f in frames])
    ref = (
        best_of(lambda: [audioop.lin2ulaw(f.astype("<i2").tobytes(), 2) for f in frames])
        if audioop
        else None
    )
    print(row("encode frame, array -> bytes", ours, ref, n))
    ours = best_of(lambda: [ulaw_decode(c) for c in frame_codes])
    ref = (
        best_of(lambda: [np.frombuffer(audioop.ulaw2lin(c, 2), "<i2") for c in frame_codes])
        if audioop
        else None
    )
    print(row("decode frame, bytes -> array", ours, ref, n))
    print()
    print("ratio = aivoco time / audioop time (below 1: aivoco is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
