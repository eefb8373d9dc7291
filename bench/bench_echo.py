"""Echo control on the rig: what reaches the uplink, how fast a barge-in silences the
agent, and how often the agent interrupts itself, per mode.

The rig is the tests' private PulseAudio (tests/pulse.py) with an acoustic echo path:
the speaker's monitor looped back into the microphone (`EchoPath`), delayed and
attenuated. Real PortAudio streams, real WebRTC AEC3. Parts:

  echo   For each delay x attenuation: the agent's speech (3 x the demo utterance) is
         played through aivoco's speaker while its microphone is captured, with the
         PortAudio-stamped reference. The same recording then goes through echo control
         offline, frame by frame, in each mode:
           aec            ours: far end aligned by PortAudio's DAC/ADC timestamps
           aec-unaligned  reference: the far end as it arrives (no timestamps), as a
                          client without alignment would feed AEC3
           gate, off
         Printed: ERLE of the canceller on speech in steady state (from 2 s after the
         agent starts; goal >= 20 dB), the echo level that reaches the uplink, the share
         of echo frames that got through (false passes), and the coupling measured vs
         the one set on the loopback.
  barge  sts, the user talks over the reply at the agent's level: time from the speech
         onset in the microphone to the speaker falling silent (DAC time of the first
         silent sample), with local barge-in (ours) and without (reference: the agent
         stops when the emulator notices, and what is queued plays out).
  self   Self-interruptions (the emulator's barge-in count) over 2 replies, per mode
         and protocol.

Nothing is asserted. Run: python bench/bench_echo.py [--part echo|barge|self] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from echo_rig import (
    conversation,
    rig_call,
    say,
    sessions,
    speech_wav,
    wait_for_reply,
)
from pulse import EchoPath, PulseServer

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.files import read_file
from aivoco.audio.playout import ClockPlayer
from aivoco.audio.timed import TimedBlock
from aivoco.emulator.assets import demo_utterance_path
from aivoco.session.echo import EchoControl, FrameTrace, choose_mode
from aivoco.session.interfaces import MarkToken
from aivoco.session.options import EchoMode
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.wire.driver import ProtocolName

RATE = 16000


# -- part 1: the echo that reaches the uplink ------------------------------------------------
@dataclass
class Capture:
    """One rig recording: reference blocks and microphone frames, each with our
    PortAudio-derived time and the time the bench received it."""

    reference: list[tuple[TimedBlock, float]]
    mic: list[tuple[AudioChunk, float]]
    device_rate_hz: int


def capture(delay_ms: int, attenuation_db: float, pulse: PulseServer) -> Capture:
    from aivoco.audio.capture import MicCapture
    from aivoco.audio.engine import DevicePlayer

    agent = read_file(demo_utterance_path(), 24000)
    gap = AudioChunk.silence_ms(500, 24000)
    reply = AudioChunk.concat([gap, agent, gap, agent, gap, agent, gap, gap])
    with EchoPath(pulse, delay_ms, attenuation_db):
        player: DevicePlayer[MarkToken] = DevicePlayer(None)
        mic = MicCapture(None, RATE, 20)
        reference: list[tuple[TimedBlock, float]] = []
        frames: list[tuple[AudioChunk, float]] = []
        stop = threading.Event()

        def listen() -> None:
            for frame in mic:
                frames.append((frame, time.monotonic()))
                if stop.is_set():
                    return

        player.start()
        mic.start()
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(3.0)  # the loopback settles (tests/pulse.py: EchoPath)
        start = time.monotonic()
        step = 480  # 20 ms at 24 kHz, paced like the emulator
        for k, i in enumerate(range(0, reply.frames, step)):
            player.play(AudioChunk(reply.samples[i : i + step].copy(), 24000))
            while time.monotonic() < start + (k + 1) * 0.02:
                block = player.reference.read()
                if block.frames:
                    reference.append((block, time.monotonic()))
                time.sleep(0.005)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            block = player.reference.read()
            if block.frames:
                reference.append((block, time.monotonic()))
            time.sleep(0.01)
        stop.set()
        mic.close()
        player.close()
        listener.join(timeout=2)
    return Capture(reference, frames, player.clock_rate_hz)


def replay(cap: Capture, mode: EchoMode, aligned: bool = True) -> list[FrameTrace]:
    """Echo control over a recording, frame by frame, as the uplink would run it.

    Aligned: the times PortAudio's timestamps gave. Unaligned: each block is taken as
    played, and each frame as captured, the moment it reached the bench."""
    player: ClockPlayer[MarkToken] = ClockPlayer(cap.device_rate_hz)  # only its tap is used
    setup = choose_mode(mode, acoustic=True, rate_hz=RATE)
    state = CallState("sts", "bench", "bench", has_credits=False)
    control = EchoControl(
        setup, player=player, rate_hz=RATE, frame_ms=20, state=state, bus=RecordBus()
    )
    control.trace = []
    refs = iter(cap.reference)
    pending = next(refs, None)
    for frame, arrived in cap.mic:
        # What had reached the bench before this frame is what the uplink would have.
        while pending is not None and pending[1] <= arrived:
            block, got = pending
            at = block.start_s if aligned else got - block.frames / cap.device_rate_hz
            player.reference.write(block.samples, at)
            pending = next(refs, None)
        t = frame.captured_at_s if aligned else arrived - 0.02
        control.process(AudioChunk(frame.samples, RATE, captured_at_s=t), arrived)
    return control.trace


def _power_db(levels: list[float]) -> float:
    return float(10 * np.log10(np.mean([10 ** (x / 10) for x in levels]) + 1e-12))


def echo_figures(trace: list[FrameTrace]) -> dict[str, float]:
    first = next(x.t_s for x in trace if x.far_now_dbfs > -60)
    loud = [x for x in trace if x.estimate.far_dbfs >= -45 and x.t_s >= first + 2.0]
    erle = _power_db([x.near_dbfs for x in loud]) - _power_db([x.processed_dbfs for x in loud])
    # Echo frames: the agent audible and the microphone hearing something, from the
    # moment its playback starts (the rig's null sinks emit a short steady burst when a
    # stream opens, before any playback: not echo).
    heard = [x for x in trace if x.t_s >= first and x.estimate.audible and x.near_dbfs > -60]
    passed = [x for x in heard if x.out_dbfs > -96]
    return {
        "erle_db": erle,
        "near_dbfs": _power_db([x.near_dbfs for x in loud]),
        "sent_dbfs": _power_db([x.out_dbfs for x in loud]),
        "false_pass": len(passed) / max(1, len(heard)),
        "frames": len(heard),
    }


def coupling_spread(trace: list[FrameTrace]) -> tuple[float, float]:
    """(90th, 99th percentile) of near - far over frames with loud playback that the
    microphone heard: how the gate's coupling estimate sits against the echo's peaks."""
    r = [
        x.near_dbfs - x.estimate.far_dbfs
        for x in trace
        if x.estimate.far_dbfs >= -45 and x.near_dbfs > -96
    ]
    return float(np.percentile(r, 90)), float(np.percentile(r, 99))


def part_echo(pulse: PulseServer, quick: bool) -> None:
    conditions = [(80, -12.0)] if quick else [
        (d, a) for d in (40, 80, 120) for a in (-6.0, -12.0, -20.0)
    ]  # fmt: skip
    print("\n== echo reaching the uplink (agent speech only; ERLE in steady state) ==")
    print(
        f"{'delay':>5} {'atten':>6} | {'ERLE aec':>8} {'ERLE unaligned':>14} | "
        f"{'near':>6} {'sent aec':>8} {'sent gate':>9} | {'false pass aec/gate':>19} | "
        f"{'coupling p90/p99':>16}"
    )
    for delay, att in conditions:
        cap = capture(delay, att, pulse)
        aec = echo_figures(replay(cap, EchoMode.AEC))
        raw = echo_figures(replay(cap, EchoMode.AEC, aligned=False))
        gate_trace = replay(cap, EchoMode.GATE)
        gate = echo_figures(gate_trace)
        p50, p99 = coupling_spread(gate_trace)
        print(
            f"{delay:>5} {att:>6.0f} | {aec['erle_db']:>8.1f} {raw['erle_db']:>14.1f} | "
            f"{aec['near_dbfs']:>6.1f} {aec['sent_dbfs']:>8.1f} {gate['sent_dbfs']:>9.1f} | "
            f"{aec['false_pass']:>9.1%}/{gate['false_pass']:<9.1%} | {p50:>7.1f}/{p99:<7.1f}"
        )


# -- part 2: how fast a barge-in silences the agent ------------------------------------------
def barge_once(pulse: PulseServer, barge_in: bool, mode: EchoMode) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_wav(Path(tmp))
        with rig_call(pulse, mode=mode, barge_in=barge_in) as (emu, call):
            call.echo.trace = []
            say(pulse, wav)
            rec = sessions(emu, ProtocolName.STS)
            emu.wait_until(lambda: bool(rec and rec[0].replies and rec[0].replies[0].frames_sent))
            time.sleep(1.0)
            started = time.monotonic()
            talker = threading.Thread(target=say, args=(pulse, wav))
            talker.start()
            wait_for_reply(emu, ProtocolName.STS, 1)
            time.sleep(1.5)
            talker.join()
            trace = list(call.echo.trace)
            triggered = list(call.echo.barge_in.triggered_at) if call.echo.barge_in else []
    onset = speech_onset(trace, started, mode)
    after = [x for x in trace if x.t_s >= onset]
    silent_at = next(
        x.t_s
        for i, x in enumerate(after)
        if all(y.far_now_dbfs < -60 for y in after[i : i + 25])  # and for 500 ms after
    )
    reply = sessions(emu, ProtocolName.STS)[0].replies[0]
    out = {"onset_to_silent_ms": (silent_at - onset) * 1000, "agent_stopped": reply.interrupted}
    if triggered:
        out["onset_to_cut_ms"] = (triggered[0] - onset) * 1000
        out["cut_to_silent_ms"] = (silent_at - triggered[0]) * 1000
    return out


def speech_onset(trace: list[FrameTrace], started: float, mode: EchoMode) -> float:
    """When the user's speech reached the microphone (capture time).

    aec: the first frame whose residual is louder than -45 dBFS (the canceller leaves
    the echo below -55 dBFS in steady state, and speech through). gate: the first frame
    louder, relative to the playback, than 3 dB above the loudest echo frame before the
    user spoke. Neither depends on the barge-in decision being measured."""
    later = [x for x in trace if x.t_s >= started]
    if mode is EchoMode.AEC:
        return next(x.t_s for x in later if x.processed_dbfs > -45)
    before = [x for x in trace if x.t_s < started and x.estimate.far_dbfs >= -45]
    ceiling = max(x.near_dbfs - x.estimate.far_dbfs for x in before)
    return next(
        x.t_s
        for x in later
        if x.near_dbfs > -40 and x.near_dbfs - x.estimate.far_dbfs > ceiling + 3
    )


def part_barge(pulse: PulseServer, quick: bool) -> None:
    runs = 1 if quick else 3
    print("\n== sts barge-in: speech onset in the mic -> the speaker falls silent ==")
    for mode in (EchoMode.AEC, EchoMode.GATE):
        for barge_in, label in ((True, "local barge-in (ours)"), (False, "none (reference)")):
            results = [barge_once(pulse, barge_in, mode) for _ in range(runs)]
            total = [r["onset_to_silent_ms"] for r in results]
            stopped = sum(bool(r["agent_stopped"]) for r in results)
            line = f"{mode.value:<5} {label:<22} onset->silent {_stats(total)}"
            line += f" | emulator stopped {stopped}/{runs}"
            if any("onset_to_cut_ms" in r for r in results):
                results = [r for r in results if "onset_to_cut_ms" in r]
                line += f" | onset->cut {_stats([r['onset_to_cut_ms'] for r in results])}"
                line += f" | cut->silent {_stats([r['cut_to_silent_ms'] for r in results])}"
            print(line)


def _stats(values: list[float]) -> str:
    return f"mean {np.mean(values):4.0f} ms (max {np.max(values):4.0f})"


# -- part 3: self-interruptions --------------------------------------------------------------
def part_self(pulse: PulseServer, quick: bool) -> None:
    replies = 1 if quick else 2
    print(f"\n== self-interruptions over {replies} replies (emulator barge-ins) ==")
    for protocol in (ProtocolName.STS, ProtocolName.CALL):
        counts: dict[str, Any] = {}
        for mode in (EchoMode.OFF, EchoMode.GATE, EchoMode.AEC):
            run = conversation(pulse, mode=mode, protocol=protocol, replies=replies)
            counts[mode.value] = run.self_interruptions
        print(f"{protocol.value:<5} " + "  ".join(f"{k}: {v}" for k, v in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["echo", "barge", "self"], action="append")
    parser.add_argument("--quick", action="store_true", help="one condition, one run each")
    args = parser.parse_args()
    parts = args.part or ["echo", "barge", "self"]
    with tempfile.TemporaryDirectory(prefix="aivoco-echo-bench-") as root:
        pulse = PulseServer(Path(root)).start()
        try:
            os.environ.update(pulse.env)
            for name in parts:
                {"echo": part_echo, "barge": part_barge, "self": part_self}[name](pulse, args.quick)
        finally:
            pulse.stop()


if __name__ == "__main__":
    main()
