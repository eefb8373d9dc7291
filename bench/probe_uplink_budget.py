"""The uplink's fixed delays: what the converter and WebRTC's module hold back, per rate.

    python bench/probe_uplink_budget.py
    python bench/probe_uplink_budget.py --seconds 2

Why (docs/devices.md#budget): with echo control a frame leaves 14-25 ms after its last
sample (bench/bench_latency.py, "after frame end"). Most of that is not thread time but
audio that a filter holds back, the same on an idle and a busy machine. This probe
measures those parts offline, with the same libraries the call uses, no devices:

* each libsamplerate converter's hold-back (output owed minus output given, settled)
  for the microphone's conversions, fed in 10 ms device blocks as the call feeds it:
  sinc_fastest (live streams) beside sinc_medium (files; what live streams used before);
* how late a tone's onset leaves WebRTC's audio processing module (pywebrtc-audio), per
  rate, with the echo canceller (AEC3), the noise suppressor, both, and neither, in
  10 ms frames with a silent far end. The module's own delay, not an estimate.

What the budget leaves out and bench_latency.py includes: the sound server and
PortAudio handing a block over (about 3.7 ms after its end through ALSA's pulse plugin),
half a frame of waiting on average, and the call's own work and hand-overs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aivoco.audio.resample import DEFAULT_CONVERTER, LIVE_CONVERTER, StreamResampler

PAIRS = ((44100, 16000), (48000, 16000), (44100, 8000), (48000, 8000))
APM_RATES = (8000, 16000, 32000, 48000)
THRESHOLD = 0.1  # of full scale: onset detection, as bench/bench_latency.py


def hold_back_ms(converter: str, in_hz: int, out_hz: int, seconds: float) -> float:
    """Output a converter owes but has not given, once settled, in ms of output."""
    rs = StreamResampler(in_hz, out_hz, converter=converter, block_ms=None)
    block = in_hz // 100  # the device's 10 ms blocks
    rng = np.random.default_rng(1)
    fed = given = 0
    owed: list[float] = []
    for _ in range(round(seconds * 100)):
        x = (rng.standard_normal(block) * 0.1).astype(np.float32)
        given += rs.process_float(x).shape[0]
        fed += block
        owed.append(fed * out_hz / in_hz - given)
    return float(np.mean(owed[len(owed) // 2 :])) * 1000 / out_hz


def apm_delay_ms(rate_hz: int, *, aec: bool, ns: bool) -> float | None:
    """How much later a tone's onset leaves the module than it entered (None: not seen)."""
    from pywebrtc_audio import AudioProcessor

    ap = AudioProcessor(
        sample_rate=rate_hz, echo_cancellation=aec, noise_suppression=ns,
        ns_level=1, high_pass_filter=False,
    )  # fmt: skip
    step = rate_hz // 100
    onset = rate_hz // 2 + 37  # not on a 10 ms edge
    x = np.zeros(rate_hz, np.int16)
    t = np.arange(rate_hz // 10) / rate_hz
    x[onset : onset + t.size] = (16000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    far = np.zeros(step, np.int16)
    y = np.concatenate(
        [np.asarray(ap.process(x[i : i + step], far if aec else None), np.int16)
         for i in range(0, x.size, step)]
    )  # fmt: skip
    loud = np.flatnonzero(np.abs(y[onset - step :].astype(np.int32)) > THRESHOLD * 32768)
    if loud.size == 0:
        return None
    return (int(loud[0]) - step) * 1000 / rate_hz


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="audio per converter (2 s)")
    args = ap.parse_args(argv)
    print("converter hold-back, ms of output (10 ms device blocks)\n")
    print(f"| pair | {LIVE_CONVERTER} (live streams) | {DEFAULT_CONVERTER} (files) |")
    print("|---|---|---|")
    for in_hz, out_hz in PAIRS:
        live = hold_back_ms(LIVE_CONVERTER, in_hz, out_hz, args.seconds)
        ref = hold_back_ms(DEFAULT_CONVERTER, in_hz, out_hz, args.seconds)
        print(f"| {in_hz} -> {out_hz} | {live:.2f} | {ref:.2f} |")
    try:
        import pywebrtc_audio  # noqa: F401
    except ImportError as exc:
        print(f"\nWebRTC module: not measured ({exc}; pip install 'aivoco[aec]')")
        return 0
    print("\nWebRTC audio processing: a tone's onset, ms later out than in\n")
    print("| rate | nothing | noise suppression | echo canceller (--echo aec) | both |")
    print("|---|---|---|---|---|")
    for rate in APM_RATES:
        cells = [
            apm_delay_ms(rate, aec=aec, ns=ns)
            for aec, ns in ((False, False), (False, True), (True, False), (True, True))
        ]
        text = " | ".join("not seen" if c is None else f"{c:.2f}" for c in cells)
        print(f"| {rate} | {text} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
