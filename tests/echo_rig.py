"""The echo rig: a real call through PortAudio with an acoustic echo path, against the
emulator, shared by tests/test_echo_rig.py and bench/bench_echo.py.

The private PulseAudio (tests/pulse.py) gets a loopback from the speaker's monitor into
the microphone's feed sink (`EchoPath`): whatever aivoco plays comes back through its
microphone, delayed and attenuated, as from a laptop's speakers. The test plays speech
into the microphone (`paplay` into the feed sink) and the emulator's echo agent answers
with the same speech; without echo control the agent hears its own reply and barges in
on itself (its record counts `barge_ins`).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from pulse import EchoPath, PulseServer, stop_client

from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.emulator.assets import demo_utterance_path
from aivoco.emulator.records import SessionRecord
from aivoco.session import CallOptions, open_call
from aivoco.session.call import Call
from aivoco.session.lifecycle import Phase
from aivoco.session.options import EchoMode
from aivoco.wire.driver import ProtocolName

KEY = "echo-rig-key"
REPLY_DEADLINE_S = 25.0  # an utterance (3.8 s) + hangover + latency + the reply (3.8 s)


def speech_wav(directory: Path, gain_db: float = 0.0) -> Path:
    """The demo utterance (eSpeak NG, peak -3 dBFS, RMS -20.5 dBFS) at `gain_db`."""
    data, rate = soundfile.read(str(demo_utterance_path()), dtype="float32")
    path = directory / f"speech{gain_db:+.0f}dB.wav"
    out = np.clip(data * 10 ** (gain_db / 20), -1.0, 1.0)
    soundfile.write(str(path), out, rate, subtype="PCM_16")
    return path


@dataclass
class RigRun:
    """What one rig call produced, read after the call ended."""

    record: SessionRecord
    summary: dict[str, Any]
    echo: dict[str, Any] = field(default_factory=dict)
    speaker_raw: Path | None = None

    @property
    def self_interruptions(self) -> int:
        return self.record.barge_ins


@contextmanager
def rig_call(
    pulse: PulseServer,
    *,
    mode: EchoMode,
    protocol: ProtocolName = ProtocolName.STS,
    delay_ms: int = 80,
    attenuation_db: float = -12.0,
    barge_in: bool = True,
    record_speaker: Path | None = None,
    low_cpu: bool = False,
) -> Iterator[tuple[Emulator, Call]]:
    """An emulator and a live call through the echo path; the call ends on leaving."""
    config = EmulatorConfig(port=0, latency_ms=300)
    with EchoPath(pulse, delay_ms, attenuation_db), Emulator(config) as emu:
        rec: subprocess.Popen[bytes] | None = None
        if record_speaker is not None:
            rec = pulse.record_speaker(record_speaker, 48000)
        sts = protocol is ProtocolName.STS
        options = CallOptions(
            protocol=protocol,
            key=KEY,
            url=emu.sts_url if sts else emu.call_url,
            agent="rig",
            echo=mode,
            barge_in=barge_in,
            max_duration_s=120.0,
            low_cpu=low_cpu,
        )
        call = open_call(options)
        try:
            call.start()
            assert call.phase is Phase.LIVE, call.result
            yield emu, call
        finally:
            call.hang_up()
            call.wait(5)
            call.close()
            if rec is not None:
                time.sleep(0.3)
                stop_client(rec)


def sessions(emu: Emulator, protocol: ProtocolName) -> list[Any]:
    return list(emu.sts_sessions if protocol is ProtocolName.STS else emu.call_sessions)


def say(pulse: PulseServer, wav: Path) -> None:
    """Play `wav` into the microphone and wait until it has been played."""
    proc = pulse.play_into_mic(wav)
    try:
        proc.wait(timeout=30)
    finally:
        stop_client(proc)


def wait_for_reply(emu: Emulator, protocol: ProtocolName, count: int) -> bool:
    """Until the agent finished (or abandoned) its `count`th reply."""

    def done() -> bool:
        found = sessions(emu, protocol)
        if not found:
            return False
        replies = found[0].replies
        return len(replies) >= count and replies[count - 1].finished_at is not None

    return emu.wait_until(done, REPLY_DEADLINE_S)


def echo_figures(call: Call) -> dict[str, Any]:
    echo = call.echo
    snap = call.state.snapshot()
    return {
        "mode": echo.mode.value,
        "coupling_db": round(echo.estimator.coupling.coupling_db, 1),
        "coupling_measured": echo.estimator.coupling.measured,
        "suppressed_frames": echo.suppressed_frames,
        "passed_frames": echo.passed_frames,
        "erle_db": snap.echo.erle_db,
        "erle_call_db": snap.echo.erle_call_db,
        "far_jumps": echo.cursor.jumps,
        "local_barge_ins": snap.echo.barge_ins,
    }


def conversation(
    pulse: PulseServer,
    *,
    mode: EchoMode,
    protocol: ProtocolName = ProtocolName.STS,
    replies: int = 2,
    delay_ms: int = 80,
    attenuation_db: float = -12.0,
    speaker_raw: Path | None = None,
    low_cpu: bool = False,
) -> RigRun:
    """`replies` turns: say the utterance, let the agent answer it in full (or not)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_wav(Path(tmp))
        with rig_call(
            pulse,
            mode=mode,
            protocol=protocol,
            delay_ms=delay_ms,
            attenuation_db=attenuation_db,
            record_speaker=speaker_raw,
            low_cpu=low_cpu,
        ) as (emu, call):
            for k in range(1, replies + 1):
                say(pulse, wav)
                assert wait_for_reply(emu, protocol, k), f"no reply {k} within the deadline"
                time.sleep(0.8)  # let the echo of the reply's tail die away
            figures = echo_figures(call)
        result = call.result
        assert result is not None
        record = sessions(emu, protocol)[0]
    return RigRun(record, result.summary.to_record(), figures, speaker_raw)


def barge_in_while_replying(
    pulse: PulseServer,
    *,
    mode: EchoMode,
    protocol: ProtocolName = ProtocolName.STS,
    louder_db: float = 6.0,
    into_reply_s: float = 1.0,
    speaker_raw: Path | None = None,
) -> tuple[RigRun, float]:
    """Say the utterance; `into_reply_s` after the agent starts answering, talk over it
    (`louder_db` above the first utterance). Returns the run and when (monotonic) the
    barge-in speech was started."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_wav(Path(tmp))
        loud = speech_wav(Path(tmp), louder_db)
        with rig_call(pulse, mode=mode, protocol=protocol, record_speaker=speaker_raw) as (
            emu,
            call,
        ):
            say(pulse, wav)

            def replying() -> bool:
                found = sessions(emu, protocol)
                return bool(found and found[0].replies and found[0].replies[0].frames_sent)

            assert emu.wait_until(replying, REPLY_DEADLINE_S), "the agent never answered"
            time.sleep(into_reply_s)
            started = time.monotonic()
            talker = threading.Thread(target=say, args=(pulse, loud))
            talker.start()
            assert wait_for_reply(emu, protocol, 1)
            talker.join(timeout=30)
            figures = echo_figures(call)
        result = call.result
        assert result is not None
        record = sessions(emu, protocol)[0]
    return RigRun(record, result.summary.to_record(), figures, speaker_raw), started


def voiced_s(pcm: np.ndarray, rate_hz: int, threshold_dbfs: float = -50.0) -> float:
    """Seconds of 10 ms blocks louder than `threshold_dbfs` (RMS): how much of a
    recording is speech, whatever the silences around and between it."""
    block = rate_hz // 100
    x = pcm[: pcm.size // block * block].astype(np.float64).reshape(-1, block) / 32768
    rms = np.sqrt(np.mean(x * x, axis=1))
    return float(np.count_nonzero(rms > 10 ** (threshold_dbfs / 20))) / 100


def utterance_voiced_s() -> float:
    data, rate = soundfile.read(str(demo_utterance_path()), dtype="int16")
    return voiced_s(np.asarray(data), int(rate))


def speaker_voiced_s(raw: Path) -> float:
    """Speech heard on the speaker's monitor (parec: s16le mono 48 kHz)."""
    return voiced_s(np.frombuffer(raw.read_bytes(), "<i2"), 48000)
