"""`aivoco report` on a synthetic one-hour call: how long the report takes, step by step.

The call is written the way aivoco writes one: a 24 kHz stereo PCM16 WAV (you left, the
agent right; 345 MB for an hour) and a JSON Lines transcript with a turn every ~12 s
(function calls, barge-ins, underruns and protocol errors sprinkled in). Then the
report is made through the public `write_report` and, separately, each step is timed:
the envelopes (the WAV read in blocks), the model, the timeline figure, the page.

    python bench/bench_report.py [--minutes 60] [--keep DIR]

No time is asserted; read the table. Files go to a temporary directory (deleted after,
unless --keep).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import soundfile

from aivoco.report import write_report
from aivoco.report.bands import call_bands
from aivoco.report.build import build_model
from aivoco.report.figures import latency_png, timeline_png
from aivoco.report.levels import read_levels
from aivoco.report.transcript import load_transcript

RATE = 24000
TURN_S = 12.0  # user 4 s, latency ~0.6-2 s, agent ~5 s, a pause
T = TypeVar("T")


def _speech(seconds: float, rng: np.random.Generator) -> npt.NDArray[np.int16]:
    """Noise shaped by a ~4 Hz syllable envelope: speech-like levels, cheap to make."""
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, 1)
    x = rng.standard_normal(n) * envelope * 0.2 * 32767
    out: npt.NDArray[np.int16] = np.clip(x, -32768, 32767).astype(np.int16)
    return out


def _record(records: list[dict[str, Any]], kind: str, t: float, **fields: Any) -> None:
    records.append({"type": kind, "t": round(t, 3), "time": "2026-01-01T00:00:00+00:00", **fields})


def _turn(
    i: int, t0: float, rng: np.random.Generator, records: list[dict[str, Any]]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """One exchange from t0: the records, and (start, end) of your speech and the reply."""
    user = (t0 + 0.5, t0 + 0.5 + rng.uniform(2.0, 4.5))
    latency = rng.uniform(0.5, 2.2)
    reply = (user[1] + latency, user[1] + latency + rng.uniform(2.0, 5.0))
    _record(records, "user_speech_end", user[1] + 0.3, duration_s=round(user[1] - user[0], 3))
    if i % 10 == 0:
        cid = f"call_{i}"
        _record(
            records,
            "function_call",
            user[1] + 0.2,
            call_id=cid,
            name="get_weather",
            arguments={"city": "Paris"},
        )
        _record(
            records,
            "function_result",
            user[1] + 0.21,
            call_id=cid,
            name="get_weather",
            ok=True,
            result={"temperature": 18.5},
            duration_ms=3.0,
        )
    _record(records, "agent_text", reply[0], text=f"Answer number {i}.")
    _record(records, "turn", reply[0], latency_ms=round(latency * 1000, 1))
    if i % 25 == 0:
        _record(records, "clear", reply[0] + 1.0, cleared_ms=120.0)
    if i % 40 == 0:
        _record(records, "underrun", reply[0] + 0.5, gap_ms=40.0)
    if i % 60 == 0:
        _record(records, "protocol_error", reply[0] + 0.7, message="malformed JSON")
    return user, reply


def synthesise(directory: Path, minutes: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    duration = minutes * 60
    records: list[dict[str, Any]] = []
    _record(records, "connecting", 0.0, endpoint="127.0.0.1:11002", protocol="sts")
    _record(records, "ready", 0.001, credits_available=100.0, cost_per_minute=1.0)
    wav = directory / "long.wav"
    with soundfile.SoundFile(str(wav), "w", RATE, 2, "PCM_16") as out:
        t, i = 0.0, 1
        while t + TURN_S <= duration:
            user, reply = _turn(i, t, rng, records)
            block = np.zeros((round(TURN_S * RATE), 2), np.int16)
            for channel, (start, end) in ((0, user), (1, reply)):
                a = round((start - t) * RATE)
                speech = _speech(end - start, rng)[: block.shape[0] - a]
                block[a : a + len(speech), channel] = speech
            out.write(block)
            t, i = t + TURN_S, i + 1
    _record(records, "hangup", t, reason="max-duration")
    _record(
        records,
        "summary",
        t,
        reason="max-duration",
        duration_s=t,
        turns=i - 1,
        recording=str(wav),
        recording_s=t,
        playback_underruns=(i - 1) // 40,
    )
    transcript = directory / "long.jsonl"
    transcript.write_text("".join(json.dumps(r) + "\n" for r in records))
    return transcript, wav


def timed(label: str, fn: Callable[[], T], rows: list[tuple[str, float]]) -> T:
    start = time.perf_counter()
    value = fn()
    rows.append((label, time.perf_counter() - start))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    holder = None if args.keep else tempfile.TemporaryDirectory(prefix="aivoco-bench-")
    directory = args.keep or Path(holder.name if holder else ".")
    directory.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, float]] = []
    transcript, wav = timed(
        "synthesise the call", lambda: synthesise(directory, args.minutes), rows
    )
    size_mb = wav.stat().st_size / 1e6
    result = timed(
        "write_report (HTML + PNG), total",
        lambda: write_report(transcript, wav, directory / "long.html", directory / "long.png"),
        rows,
    )
    levels = timed("  envelopes (WAV read in blocks)", lambda: read_levels(wav), rows)
    records = load_transcript(transcript).records
    model = timed("  transcript -> model", lambda: build_model(records), rows)
    bands = call_bands(model, levels)
    timed("  timeline figure", lambda: timeline_png(model, levels, bands), rows)
    timed("  latency figure", lambda: latency_png(model), rows)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {sys.platform}")
    print(
        f"call: {result.duration_s / 60:.1f} min, {result.turns} turns, {len(records)} records, "
        f"WAV {size_mb:.0f} MB; report {result.html_path.stat().st_size / 1e6:.2f} MB"
    )
    for label, seconds in rows:
        print(f"{label:<40} {seconds:7.2f} s")
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
