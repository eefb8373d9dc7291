"""Real audio through PortAudio: PortAudio -> ALSA pulse plugin -> private PulseAudio.

The microphone tests play a 1 kHz tone into the `aivoco_micsrc` null sink and capture it
with `MicCapture`; the speaker tests play through `DevicePlayer` and record the
`aivoco_spk` monitor with parec. Neither side is mocked. See tests/pulse.py.

The null sinks render in large blocks until a low-latency client appears, so a new
stream may wait up to ~2 s for its first audio; every wait below therefore has a
generous deadline instead of a fixed sleep, and the tests stop as soon as they have
what they need.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from clirun import cli_env, run_cli
from pulse import PulseServer, stop_client
from quiet_try import quiet_try, underflowed
from tones import (
    dominant_freq,
    level_dbfs,
    max_phase_jump,
    sine,
    sine_chunk,
    sine_dbfs,
    steady,
)

from aivoco.audio.capture import MicCapture
from aivoco.audio.chunk import AudioChunk
from aivoco.audio.devices import DeviceInfo, list_devices, resolve_device
from aivoco.audio.engine import DevicePlayer
from aivoco.audio.levels import peak
from aivoco.audio.playout import PlayerStats
from aivoco.audio.speaker_proc import ProcessPlayer
from aivoco.audio.streams import OUTPUT_STEPS
from aivoco.audio.timed import TimedBlock
from aivoco.errors import DeviceError
from aivoco.session.build import build_player, build_source
from aivoco.session.options import CallOptions, EchoMode
from aivoco.wire.driver import ProtocolName

pytestmark = pytest.mark.device

AMPLITUDE = 0.5  # -9.03 dBFS RMS for a sine
# Measured through the whole chain (paplay -> null sink -> remap source -> ALSA pulse
# plugin -> PortAudio 44.1 kHz -> our resampler), levels arrive within 0.05 dB of what
# was played; PulseAudio's own resampler (speex) could add a little passband ripple on
# other machines, hence the 10x margin.
LEVEL_TOLERANCE_DB = 0.5
FREQ_TOLERANCE_HZ = 10.0
DEADLINE_S = 20.0
# A clean tone measures below 0.03 rad; losing even 20 samples measures ~0.8 rad.
MAX_PHASE_JUMP_RAD = 0.3


@contextmanager
def call_once_after(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` exactly once: after `seconds` from a timer thread (a watchdog for
    loops that would otherwise block forever), or on leaving the block, whichever is
    first."""
    lock = threading.Lock()
    done = False

    def once() -> None:
        nonlocal done
        with lock:
            if not done:
                done = True
                action()

    timer = threading.Timer(seconds, once)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        once()


Speaker = DevicePlayer[str] | ProcessPlayer[str]


def play_tone(player: Speaker, seconds: float, mark: str = "end") -> None:
    """A 440 Hz tone in 20 ms chunks, as an agent sends them, then a mark."""
    tone = sine_chunk(440, 24000, seconds, AMPLITUDE)
    for i in range(0, tone.frames, 480):
        player.play(AudioChunk(tone.samples[i : i + 480].copy(), 24000))
    player.add_marker(mark)


def until_reached(player: Speaker, taps: list[AudioChunk], deadline: float) -> list[str]:
    """Wait (until `deadline`) for a mark to be reached, keeping what was played: the
    tap ring holds 2 s."""
    reached: list[str] = []
    while not reached and time.monotonic() < deadline:
        time.sleep(0.05)
        taps.append(player.take_played())
        reached = player.pop_reached()
    return reached


def device_named(name: str) -> DeviceInfo:
    matches = [d for d in list_devices() if d.name == name]
    assert matches, f"no PortAudio device named {name!r}: {list_devices()}"
    return matches[0]


# -- enumeration and selection -----------------------------------------------------------
def test_pulse_devices_are_listed(pulse: PulseServer) -> None:
    names = [d.name for d in list_devices()]
    assert "pulse" in names and "default" in names
    default = device_named("default")
    assert default.default_input and default.default_output
    assert default.max_input_channels > 0 and default.max_output_channels > 0
    assert default.hostapi == "ALSA"


def test_aivoco_devices_command_lists_pulse(pulse: PulseServer) -> None:
    out = run_cli("devices", "--json", env=cli_env(**pulse.env))
    assert out.returncode == 0, out.stderr
    by_name = {d["name"]: d for d in json.loads(out.stdout)}
    assert {"pulse", "default"} <= set(by_name)
    assert by_name["default"]["default_input"] and by_name["default"]["default_output"]
    table = run_cli("devices", env=cli_env(**pulse.env))
    assert table.returncode == 0, table.stderr
    assert "pulse" in table.stdout and "default" in table.stdout
    assert "input, output" in table.stdout  # the default marks


def test_aivoco_devices_latency_opens_each_output_as_a_call_would(pulse: PulseServer) -> None:
    out = run_cli("devices", "--json", "--latency", env=cli_env(**pulse.env))
    assert out.returncode == 0, out.stderr
    by_name = {d["name"]: d for d in json.loads(out.stdout)}
    probe = by_name["pulse"]["output_latency"]
    assert probe["problem"] is None
    assert probe["rate_hz"] == 24000
    assert probe["asked_ms"] in [s.latency_ms for s in OUTPUT_STEPS]
    assert 0 < probe["measured_ms"] < 1000
    table = run_cli("devices", "--latency", env=cli_env(**pulse.env))
    assert table.returncode == 0, table.stderr
    # A second probe: it may settle on another step on a busy machine.
    assert "out latency" in table.stdout and "ms (" in table.stdout


def test_resolve_device_by_index_name_and_default(pulse: PulseServer) -> None:
    pulse_dev = device_named("pulse")
    default_dev = device_named("default")
    assert resolve_device(None, "input") == default_dev
    assert resolve_device(None, "output") == default_dev
    assert resolve_device(pulse_dev.index, "output") == pulse_dev
    assert resolve_device(str(pulse_dev.index), "input") == pulse_dev
    assert resolve_device("puls", "input") == pulse_dev  # substring
    assert resolve_device("PULSE", "output") == pulse_dev  # case-insensitive
    assert resolve_device(" default ", "input") == default_dev  # spaces are trimmed


def test_resolve_device_errors(pulse: PulseServer) -> None:
    with pytest.raises(DeviceError, match="no input device matches 'no-such-card'"):
        resolve_device("no-such-card", "input")
    with pytest.raises(DeviceError, match="no audio device with index 9999"):
        resolve_device(9999, "output")
    # "ul" is in both "pulse" and "default": the error names the candidates.
    with pytest.raises(DeviceError, match="matches several output devices") as err:
        resolve_device("ul", "output")
    assert "pulse" in str(err.value) and "default" in str(err.value)


# -- microphone ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "device", "native"),
    [(16000, None, False), (8000, "pulse", False), (16000, None, True), (8000, "pulse", True)],
)
def test_mic_capture_hears_a_1khz_tone(
    pulse: PulseServer, tmp_path: Path, rate: int, device: str | None, native: bool
) -> None:
    tone_path = tmp_path / "tone.wav"
    soundfile.write(str(tone_path), sine(1000, 48000, 15.0, AMPLITUDE), 48000, subtype="PCM_16")
    mic = MicCapture(device, rate, 20, native=native)
    assert mic.frame_frames == rate // 50
    if native:  # the call's rate: the sound server converts, as for arecord
        assert (mic.device_rate_hz, mic.resampling) == (rate, False)
    else:  # the device's rate, and aivoco converts (docs/devices.md#rates)
        assert mic.device_rate_hz == resolve_device(device, "input").default_samplerate_hz
        assert mic.resampling
    frames: list[AudioChunk] = []
    loud = 0
    mic.start()
    feeder = pulse.play_into_mic(tone_path)
    try:
        with call_once_after(DEADLINE_S, mic.close):
            for frame in mic:
                frames.append(frame)
                if peak(frame) > AMPLITUDE / 2:
                    loud += 1
                if loud >= 75:  # 1.5 s of tone is plenty
                    break
    finally:
        stop_client(feeder)
    assert loud >= 75, f"the tone did not reach the microphone within {DEADLINE_S} s"
    assert all(f.frames == rate // 50 and f.sample_rate_hz == rate for f in frames)
    assert all(f.channels == 1 for f in frames)
    pcm = AudioChunk.concat(frames).mono_samples()
    onset = int(np.flatnonzero(np.abs(pcm) > AMPLITUDE / 2 * 32768)[0])
    body = pcm[onset + rate // 10 : onset + rate // 10 + rate]  # 1 s, skipping 100 ms
    assert body.size == rate
    assert dominant_freq(body, rate) == pytest.approx(1000, abs=FREQ_TOLERANCE_HZ)
    assert level_dbfs(body) == pytest.approx(sine_dbfs(AMPLITUDE), abs=LEVEL_TOLERANCE_DB)
    # Continuity: a dropped or repeated device block would jump the tone's phase.
    assert max_phase_jump(body, rate, 1000) < MAX_PHASE_JUMP_RAD
    assert mic.lost_frames == 0


STS, CALL = ProtocolName.STS, ProtocolName.CALL


@pytest.mark.parametrize(
    ("protocol", "echo", "output", "native", "capture_hz", "label_end"),
    [
        (STS, EchoMode.OFF, None, True, 16000, "@ 16000 Hz"),
        # auto is off: no speaker can echo
        (STS, EchoMode.AUTO, "out.wav", True, 16000, "@ 16000 Hz"),
        # aec (or gate) aligns mic and speaker
        (STS, EchoMode.AUTO, None, False, 16000, "@ {default} Hz -> 16000 Hz"),
        (STS, EchoMode.GATE, None, False, 16000, "@ {default} Hz -> 16000 Hz"),
        (CALL, EchoMode.OFF, None, True, 8000, "@ 8000 Hz"),
        # an 8 kHz agent call lined up with its speaker: at AEC3's own 16 kHz
        (CALL, EchoMode.AUTO, None, False, 16000,
         "@ {default} Hz -> 16000 Hz -> 8000 Hz after echo control"),
    ],
)  # fmt: skip
def test_a_call_captures_at_its_own_rate_only_without_echo_alignment(
    pulse: PulseServer,
    tmp_path: Path,
    protocol: ProtocolName,
    echo: EchoMode,
    output: str | None,
    native: bool,
    capture_hz: int,
    label_end: str,
) -> None:
    """Echo control lines the microphone's timestamps up with the speaker's, which held
    only at the device's own rate (docs/devices.md#rates); without it the microphone
    opens at the protocol's rate and the sound server converts, as for arecord. With it
    an agent call captures at 16 kHz, WebRTC AEC3's own rate, and echo control hands
    back 8 kHz (session/echo.py, docs/echo.md#rate)."""
    out = None if output is None else tmp_path / output
    rate = 16000 if protocol is STS else 8000
    options = CallOptions(protocol=protocol, key="k", agent="a", echo=echo, output_file=out)
    source, label = build_source(options, rate)
    try:
        assert isinstance(source, MicCapture)
        assert source.sample_rate_hz == capture_hz
        default = resolve_device(None, "input").default_samplerate_hz
        assert source.device_rate_hz == (capture_hz if native else default)
        assert label.endswith(label_end.format(default=default))
    finally:
        source.close()


@pytest.mark.parametrize("protocol", [STS, CALL])
def test_low_cpu_captures_whole_frames_and_plays_in_this_process(
    pulse: PulseServer, protocol: ProtocolName
) -> None:
    """--low-cpu (docs/devices.md#low-cpu): one microphone callback per frame instead of
    one per 10 ms, and the speaker in the call's process with 100 ms asked of PortAudio,
    in 50 ms blocks; without it, 10 ms blocks and the speaker's own process."""
    rate = 16000 if protocol is STS else 8000
    for low_cpu in (True, False):
        options = CallOptions(protocol=protocol, key="k", agent="a", chunk_ms=40, low_cpu=low_cpu)
        source, _ = build_source(options, rate)
        try:
            assert isinstance(source, MicCapture)
            block_ms = 40 if low_cpu else 10
            assert source.block_frames == source.device_rate_hz * block_ms // 1000
        finally:
            source.close()
        player, label, written = build_player(options, rate)
        try:
            assert written is None
            if low_cpu:
                assert isinstance(player, DevicePlayer) and label.endswith(
                    ", in-process, 100 ms (--low-cpu)"
                )
                assert player.wait_settled(DEADLINE_S)
                assert (player.output_step.latency_ms, player.output_step.block_ms) == (100, 50)
            else:
                assert isinstance(player, ProcessPlayer) and "in-process" not in label
        finally:
            player.close()


# -- speaker -------------------------------------------------------------------------------
def wait_until_recording(raw: Path, rec: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while raw.stat().st_size < 4800 and time.monotonic() < deadline:  # 50 ms of s16 48k
        assert rec.poll() is None, "parec exited"
        time.sleep(0.05)
    assert raw.stat().st_size >= 4800, "parec recorded nothing"


@dataclass
class Played:
    """What one try of a tone gave: the player's side and the monitor's (`raw`), and
    for the speaker process its echo reference."""

    reached: list[str]
    taps: list[AudioChunk]
    cues: list[tuple[int, float | None]]
    queued_at: float
    stats: PlayerStats
    player: DevicePlayer[str] | ProcessPlayer[str]
    raw: Path
    ref: TimedBlock | None = None


def play_440(pulse: PulseServer, raw: Path, seconds: float) -> Played:
    rec = pulse.record_speaker(raw, 48000)
    taps: list[AudioChunk] = []
    try:
        wait_until_recording(raw, rec)
        # A long pre-fill, so that how fast this thread queues the tone (it may be
        # descheduled on a busy machine) cannot starve the device: this test is about the
        # device path; the jitter policy has its own tests.
        player: DevicePlayer[str] = DevicePlayer("pulse", prefill_ms=300, rate_hz=24000)
        try:
            assert player.clock_rate_hz == 24000  # the call's rate (docs/devices.md#rates)
            assert player.wait_settled(DEADLINE_S), "the output latency ladder did not settle"
            assert player.output_latency_ms is not None and player.output_latency_ms > 0
            player.start()
            # As in a call: the speaker is already running (playing silence) when the
            # agent's audio arrives, in a burst of 20 ms chunks.
            deadline = time.monotonic() + DEADLINE_S
            while not (tap := player.take_played()).frames and time.monotonic() < deadline:
                time.sleep(0.02)
            taps.append(tap)
            player.cue_heard(1)
            queued_at = time.monotonic()
            play_tone(player, seconds)
            reached = until_reached(player, taps, deadline)
            time.sleep(0.5)  # the tail still travels through PulseAudio to parec
            taps.append(player.take_played())
            stats = player.stats()
            cues = player.pop_heard()
        finally:
            player.close()
    finally:
        stop_client(rec)
    return Played(reached, taps, cues, queued_at, stats, player, raw)


def test_device_player_plays_a_440hz_tone(pulse: PulseServer, tmp_path: Path) -> None:
    seconds = 1.5
    got = quiet_try(
        lambda n: play_440(pulse, tmp_path / f"speaker-{n}.raw", seconds),
        lambda p: underflowed(p.stats),
    )
    reached, taps, cues, queued_at = got.reached, got.taps, got.cues, got.queued_at
    stats, player, raw = got.stats, got.player, got.raw
    assert isinstance(player, DevicePlayer)
    assert reached == ["end"], f"the tone was not played within {DEADLINE_S} s"
    # The first sound is heard at its block's DAC time (docs/devices.md#heard): after
    # it was queued, and before the tone's last sample (1.5 s later) was played.
    [(key, heard_at)] = cues
    assert key == 1 and heard_at is not None
    assert queued_at < heard_at < time.monotonic() - seconds
    assert stats.output_latency_ms == player.output_latency_ms
    # The resampler holds back a few ms of the stream until more audio (or a flush) comes.
    assert stats.jitter.played_ms == pytest.approx(seconds * 1000, abs=10)
    assert stats.jitter.underruns == 0
    assert stats.device_underflows == 0

    # What the speaker's monitor heard: the tone, at its level, without gaps or repeats.
    heard = np.frombuffer(raw.read_bytes(), "<i2")
    body = steady(heard)
    assert body.size > 48000  # over 1 s of tone after trimming
    assert dominant_freq(body, 48000) == pytest.approx(440, abs=FREQ_TOLERANCE_HZ)
    assert level_dbfs(body) == pytest.approx(sine_dbfs(AMPLITUDE), abs=LEVEL_TOLERANCE_DB)
    assert max_phase_jump(body, 48000, dominant_freq(body, 48000)) < MAX_PHASE_JUMP_RAD

    # What the player says it handed to the device: the same tone, bit-exact level.
    played = AudioChunk.concat(taps)
    assert played.sample_rate_hz == player.clock_rate_hz
    tap_body = steady(played)
    assert dominant_freq(tap_body, played.sample_rate_hz) == pytest.approx(440, abs=1)
    assert level_dbfs(tap_body) == pytest.approx(sine_dbfs(AMPLITUDE), abs=0.1)
    tap_loud = np.flatnonzero(np.abs(played.mono_samples()) > 0.05 * 32768)
    tap_s = (tap_loud[-1] - tap_loud[0]) / played.sample_rate_hz
    assert tap_s == pytest.approx(seconds, abs=0.01)

    # Nothing lost or repeated between the two: the speaker heard the tone for as long as
    # the player played it (one lost 10 ms device block would be 0.01 s off).
    loud = np.flatnonzero(np.abs(heard) > 0.05 * 32768)
    heard_s = (loud[-1] - loud[0]) / 48000
    assert heard_s == pytest.approx(tap_s, abs=0.003)
