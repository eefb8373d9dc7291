"""Echo control in-process: timed taps, the far end, the coupling, the gate, WebRTC's
canceller, local barge-in. The acoustic path is simulated by the test (the played
reference, delayed and attenuated, added to what the microphone hears); the rig with a
real one is tests/test_echo_rig.py."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from aivoco.audio.aec import EchoUnavailableError, WebRtcProcessor
from aivoco.audio.chunk import AudioChunk
from aivoco.audio.echo import (
    CouplingEstimator,
    EchoEstimate,
    ErleMeter,
    FarCursor,
    FarEnd,
    GateSettings,
    gate_passes,
    level_dbfs,
)
from aivoco.audio.files import read_file
from aivoco.audio.playout import ClockPlayer
from aivoco.audio.timed import TimedRing, block_time_s
from aivoco.emulator.assets import demo_utterance_path
from aivoco.session.bargein import LocalBargeIn, speech_onset
from aivoco.session.echo import EchoControl, choose_mode
from aivoco.session.interfaces import MarkToken
from aivoco.session.options import EchoMode, NoiseSuppression
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState

RATE = 16000
FRAME = 320  # 20 ms
T0 = 5000.0  # an arbitrary monotonic origin


# -- timed taps --------------------------------------------------------------------------
def test_block_time_uses_the_reported_distance_and_distrusts_nonsense() -> None:
    assert block_time_s(10.0, 500.0, 500.1, 0.05) == pytest.approx(10.1)  # output: future
    assert block_time_s(10.0, 500.0, 499.98, -0.02) == pytest.approx(9.98)  # input: past
    assert block_time_s(10.0, 0.0, 0.0, 0.05) == pytest.approx(10.05)  # host reports zeros
    assert block_time_s(10.0, 500.0, 1e9, 0.05) == pytest.approx(10.05)  # another clock


def test_timed_ring_reads_back_the_time_of_the_first_sample_after_overflow() -> None:
    ring = TimedRing(1000, 1000)  # 1 s at 1 kHz
    for k in range(15):  # 15 blocks of 100 ms, stamped 100 ms apart
        ring.write(np.full((100, 1), k, np.float32), 100.0 + 0.1 * k)
    block = ring.read()
    assert block.frames == 1000  # the oldest 500 were dropped
    assert ring.dropped_frames == 500
    assert block.samples[0, 0] == 5 and block.start_index == 500
    assert block.start_s == pytest.approx(100.5)
    ring.write(np.zeros((10, 1), np.float32), 200.0)
    assert ring.read().start_s == pytest.approx(200.0)


# -- the far end -------------------------------------------------------------------------
def test_far_end_finds_what_was_heard_at_a_time_across_rates() -> None:
    tap = TimedRing(48000 * 2, 48000)
    far = FarEnd(tap, RATE)
    click = np.zeros((48000, 1), np.float32)
    click[24000] = 1.0  # heard at T0 + 0.5 s
    for i in range(0, 48000, 480):  # 10 ms device blocks
        tap.write(click[i : i + 480], T0 + i / 48000)
    far.pull()
    seg = far.segment(T0 + 0.49, 320)
    assert int(np.argmax(np.abs(seg))) == 160  # 10 ms into the segment
    assert far.level_dbfs(T0 + 0.45, T0 + 0.55) > -40
    assert far.level_dbfs(T0 + 0.6, T0 + 0.9) < -90
    assert not far.segment(T0 + 5.0, 320).any()  # not played yet: silence


def test_far_end_window_levels_are_the_two_windows_levels() -> None:
    """Both windows an uplink frame asks for come from one segment (cheaper), with the
    figures the two separate reads give, at any offset into a loud/quiet pattern."""
    tap = TimedRing(24000 * 4, 24000)
    far = FarEnd(tap, RATE)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((24000 * 3, 1)) * 0.2).astype(np.float32)
    x[: 24000 * 3 : 2400] *= 8.0  # sparse loud samples: the loudest block moves around
    x[24000 : 24000 + 7000] = 0.0  # a pause
    for i in range(0, x.shape[0], 240):
        tap.write(x[i : i + 240], T0 + i / 24000)
    far.pull()
    for k in range(60):
        t = T0 + 0.3 + k * 0.037
        t0, t1 = t - 0.25, t + 0.05
        pair = far.window_levels_dbfs(t0, t1, 0.3)
        assert pair == (far.level_dbfs(t0, t1), far.level_dbfs(t0 - 0.3, t1))


def test_far_cursor_is_continuous_through_timestamp_wobble_and_follows_a_real_jump() -> None:
    tap = TimedRing(RATE * 3, RATE)
    far = FarEnd(tap, RATE)
    ramp = np.arange(RATE * 2, dtype=np.float32)[:, None] / 1e6  # sample k holds k
    rng = np.random.default_rng(7)
    for i in range(0, RATE * 2, 160):  # 10 ms blocks, each stamped up to 3 ms late
        tap.write(ramp[i : i + 160], T0 + i / RATE + rng.uniform(0, 0.003))
    far.pull()
    cursor = FarCursor(far)
    taken = [cursor.take(T0 + 0.2 + k * 0.02 + rng.uniform(-0.003, 0.003), 320) for k in range(40)]
    stream = np.round(np.concatenate(taken) * 1e6).astype(int)
    assert np.all(np.diff(stream) == 1)  # nothing skipped or repeated
    assert cursor.jumps == 0
    # The playback jumps 50 ms (an underrun): the cursor follows within a few frames.
    for k in range(40, 80):
        cursor.take(T0 + 0.2 + k * 0.02 - 0.05, 320)
    assert cursor.jumps == 1
    last = np.round(cursor.take(T0 + 0.2 + 80 * 0.02 - 0.05, 320) * 1e6).astype(int)
    expected = round((0.2 + 80 * 0.02 - 0.05) * RATE)
    assert abs(int(last[0]) - expected) < RATE * 0.011


# -- coupling and the gate -----------------------------------------------------------------
def measured(est: CouplingEstimator) -> bool:
    return est.measured  # a call, so mypy does not narrow it between asserts


def test_coupling_tracks_the_echo_and_ignores_some_speech_over_it() -> None:
    settings = GateSettings()
    est = CouplingEstimator(settings)
    assert est.coupling_db == settings.initial_coupling_db
    assert not measured(est)
    rng = np.random.default_rng(3)
    for _ in range(300):  # echo-only frames: 12 dB below the playback, give or take
        est.observe(-32.0 + rng.uniform(-8, 0), -20.0, 0.02)
    echo_only = est.coupling_db
    # The 90th percentile of -12..-20 dB, and the echo frames' spread above it.
    assert measured(est) and -13.2 < echo_only - settings.echo_spread_db < -12.4
    for _ in range(100):  # the user talks over the agent for 2 s, 15 dB above the echo
        est.observe(-17.0, -20.0, 0.02)
    assert est.coupling_db - echo_only == pytest.approx(2.0, abs=0.01)  # 1 dB/s
    for _ in range(100):  # the canceller vouches for these: a louder echo path
        est.observe(-17.0, -20.0, 0.02, trusted=True)
    assert est.coupling_db > 0


def test_the_gate_passes_only_what_is_clearly_louder_than_the_echo() -> None:
    s = GateSettings()
    quiet = EchoEstimate(audible=False, far_dbfs=-96.0, expected_echo_dbfs=-108.0)
    assert gate_passes(-30.0, quiet, s)  # the agent is silent: anything goes
    loud = EchoEstimate(audible=True, far_dbfs=-15.0, expected_echo_dbfs=-27.0)
    assert not gate_passes(-27.0, loud, s)  # as loud as the echo can be
    assert not gate_passes(-24.5, loud, s)  # within the margin
    assert gate_passes(-23.0, loud, s)


def test_erle_is_the_power_ratio_of_near_to_out() -> None:
    meter = ErleMeter(0.02, warmup_s=0.1)
    near = np.full(320, 0.1, np.float32)
    for _ in range(4):
        meter.observe(near, near * 0.1)
    assert meter.erle_db is None  # still warming up
    for _ in range(200):
        meter.observe(near, near * 0.1)
    assert meter.erle_db == pytest.approx(20.0, abs=0.01)
    assert meter.call_erle_db == pytest.approx(20.0, abs=0.01)


def test_erle_over_the_call_keeps_what_the_last_seconds_forget() -> None:
    """A canceller that re-adapts at the end (20 dB for 8 s, then 0 dB for 2 s): the
    last seconds say little, the call's energy says what the user's echo went through."""
    meter = ErleMeter(0.02)
    near = np.full(320, 0.1, np.float32)
    for _ in range(400):
        meter.observe(near, near * 0.1)
    for _ in range(100):
        meter.observe(near, near)
    smoothed, call = meter.erle_db, meter.call_erle_db
    assert smoothed is not None and call is not None
    assert smoothed < 2.0
    # (400 + 100) units of near against 400 x 0.01 + 100 of out: 10 log10(500 / 104).
    assert call == pytest.approx(10 * np.log10(500 / 104), abs=0.01)


# -- WebRTC's module -------------------------------------------------------------------------
def test_webrtc_processor_keeps_frame_lengths_that_are_not_10ms_multiples() -> None:
    proc = WebRtcProcessor(RATE, echo_cancellation=True)
    x = (np.sin(np.arange(RATE) * 0.05) * 8000).astype(np.int16)
    outs = [proc.process(x[i : i + 400], x[i : i + 400]) for i in range(0, RATE - 400, 400)]
    assert all(o.shape == (400,) and o.dtype == np.int16 for o in outs)


def test_without_pywebrtc_aec_falls_back_to_the_gate_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)  # as if not installed
    with pytest.raises(EchoUnavailableError, match="aivoco\\[aec\\]"):
        WebRtcProcessor(RATE, echo_cancellation=True)
    setup = choose_mode(EchoMode.AEC, acoustic=True, rate_hz=RATE)
    assert setup.mode is EchoMode.GATE and setup.processor is None
    assert "aec unavailable" in setup.note and "pip install" in setup.note
    auto = choose_mode(EchoMode.AUTO, acoustic=True, rate_hz=RATE, high_pass=True)
    assert auto.mode is EchoMode.GATE and "high-pass unavailable" in auto.note


def test_auto_is_off_without_an_acoustic_path_and_aec_with_one() -> None:
    assert choose_mode(EchoMode.AUTO, acoustic=False, rate_hz=RATE).mode is EchoMode.OFF
    setup = choose_mode(EchoMode.AUTO, acoustic=True, rate_hz=RATE, noise=NoiseSuppression.MODERATE)
    assert setup.mode is EchoMode.AEC and setup.processor is not None
    assert choose_mode(EchoMode.GATE, acoustic=False, rate_hz=RATE).mode is EchoMode.GATE


# -- the whole uplink piece over a simulated room ------------------------------------------
def speech() -> np.ndarray:
    """Real speech (the demo utterance, RMS -20.5 dBFS) at 16 kHz as float."""
    return read_file(demo_utterance_path(), RATE).mono_samples().astype(np.float32) / 32768


@dataclass
class Room:
    """The agent plays `far` from T0; the microphone hears it `delay_ms` later at
    `coupling_db`, plus the user (`user`, placed at `user_at_s`)."""

    far: np.ndarray
    delay_ms: float = 80.0
    coupling_db: float = -12.0
    user: np.ndarray | None = None
    user_at_s: float = 0.0

    def near(self, k: int) -> np.ndarray:
        out = np.zeros(FRAME, np.float32)
        lag = round(self.delay_ms * RATE / 1000)
        idx = np.arange(k * FRAME, (k + 1) * FRAME) - lag
        ok = (idx >= 0) & (idx < self.far.size)
        out[ok] = self.far[idx[ok]] * 10 ** (self.coupling_db / 20)
        if self.user is not None:
            u = np.arange(k * FRAME, (k + 1) * FRAME) - round(self.user_at_s * RATE)
            ok = (u >= 0) & (u < self.user.size)
            out[ok] += self.user[u[ok]]
        return out


@dataclass
class Rig:
    control: EchoControl
    player: ClockPlayer[MarkToken]
    bus_records: list[dict[str, object]]
    barge: LocalBargeIn


def make_rig(
    mode: EchoMode, mic_live: Callable[[], bool] = lambda: True, out_rate_hz: int | None = None
) -> Rig:
    player: ClockPlayer[MarkToken] = ClockPlayer(RATE)  # its clock is the test: never started
    player.play(AudioChunk.silence(RATE * 30, RATE))  # something queued to cut
    state = CallState("sts", "test", "test", has_credits=False)
    bus = RecordBus()
    records: list[dict[str, object]] = []

    class Sink:
        def on_record(self, record: dict[str, object]) -> None:
            records.append(record)

    bus.subscribe(Sink())
    barge = LocalBargeIn(player, state, bus)
    setup = choose_mode(mode, acoustic=True, rate_hz=RATE)
    control = EchoControl(
        setup,
        player=player,
        rate_hz=RATE,
        frame_ms=20,
        state=state,
        bus=bus,
        barge_in=barge,
        mic_live=mic_live,
        out_rate_hz=out_rate_hz,
    )
    return Rig(control, player, records, barge)


def run_room(rig: Rig, room: Room, seconds: float) -> Iterator[tuple[int, AudioChunk]]:
    """Play the room frame by frame: the reference is written 100 ms ahead, as a device
    buffer does; each near frame goes through echo control. Once playback is cleared
    (a barge-in), what had not been written to the device is never played."""
    ahead = 5
    for k in range(round(seconds * 50)):
        j = k + ahead
        far = np.zeros(FRAME, np.float32)
        seg = room.far[j * FRAME : (j + 1) * FRAME]
        far[: seg.size] = seg
        if rig.player.stats().jitter.clears:
            far[:] = 0.0
            room.far[j * FRAME :] = 0.0
        rig.player.reference.write(far, T0 + j * 0.02)
        # What the call's observer does every 20 ms: meter what the speaker plays now.
        playing = room.far[k * FRAME : (k + 1) * FRAME]
        heard = playing.size > 0 and float(np.abs(playing).max()) > 0.01
        rig.control.state.set_levels(agent_speaking=heard and not rig.player.stats().jitter.clears)
        near = AudioChunk.from_float32(room.near(k), RATE)
        frame = AudioChunk(near.samples, RATE, captured_at_s=T0 + k * 0.02)
        yield k, rig.control.process(frame, T0 + k * 0.02 + 0.02)


def agent_reply() -> np.ndarray:
    s = speech()
    return np.concatenate([np.zeros(RATE // 2, np.float32), s, s, np.zeros(RATE, np.float32)])


@pytest.mark.parametrize("out_rate_hz", [RATE, RATE // 2])  # sts, and an agent call's 8 kHz
@pytest.mark.parametrize("mode", [EchoMode.GATE, EchoMode.AEC])
def test_echo_never_goes_upstream_while_the_agent_talks(mode: EchoMode, out_rate_hz: int) -> None:
    rig = make_rig(mode, out_rate_hz=out_rate_hz)
    room = Room(agent_reply())
    outs = list(run_room(rig, room, 8.0))
    assert all(o.sample_rate_hz == out_rate_hz and o.frames == out_rate_hz // 50 for _, o in outs)
    loud = [k for k, out in outs if level_dbfs(out.to_float32()) > -60]
    assert loud == []  # every frame silent (has_audio false), echo included
    assert rig.barge.count == 0
    assert rig.control.suppressed_frames > 200
    snap = rig.control.state.snapshot().echo
    assert snap.mode == mode.value
    if mode is EchoMode.AEC:
        assert snap.erle_db is not None and snap.erle_db > 20
        assert snap.erle_call_db is not None and snap.erle_call_db > 20


@pytest.mark.parametrize("out_rate_hz", [RATE, RATE // 2])
@pytest.mark.parametrize("mode", [EchoMode.GATE, EchoMode.AEC, EchoMode.OFF])
def test_talking_over_the_agent_goes_through_and_cuts_it(mode: EchoMode, out_rate_hz: int) -> None:
    rig = make_rig(mode, out_rate_hz=out_rate_hz)
    # The user starts 2 s into the reply, as loud as the agent (12 dB above its echo).
    room = Room(agent_reply(), user=speech(), user_at_s=2.5)
    sent = dict(run_room(rig, room, 4.5))
    barge = [r for r in rig.bus_records if r["type"] == "barge_in"]
    assert rig.barge.count == 1 and len(barge) == 1
    assert rig.player.stats().jitter.clears == 1
    first = barge[0]
    assert float(str(first["cleared_ms"])) > 1000  # the queued reply was cut
    user_frames = range(round(2.5 * 50), round(4.5 * 50))
    through = [k for k in user_frames if level_dbfs(sent[k].to_float32()) > -40]
    assert len(through) > 20  # the user's speech reached the uplink


@pytest.mark.parametrize("out_rate_hz", [RATE, RATE // 2])
def test_muted_sends_silence_and_never_barges_in(out_rate_hz: int) -> None:
    live = [True]
    rig = make_rig(EchoMode.AEC, mic_live=lambda: live[0], out_rate_hz=out_rate_hz)
    live[0] = False
    room = Room(agent_reply(), user=speech(), user_at_s=2.5)
    outs = [out for _, out in run_room(rig, room, 4.5)]
    assert all(not out.samples.any() and out.sample_rate_hz == out_rate_hz for out in outs)
    assert rig.barge.count == 0


def test_the_rest_of_an_interrupted_reply_is_dropped_until_the_agent_pauses() -> None:
    rig = make_rig(EchoMode.OFF)
    barge = rig.barge
    for k in range(10):  # 200 ms of speech over the agent
        barge.feed(True, 20.0, T0 + k * 0.02)
    assert barge.count == 1
    # The agent keeps sending its reply every 100 ms: dropped...
    assert not any(barge.admit(T0 + 0.3 + 0.1 * i) for i in range(10))
    assert barge.dropped_chunks == 10
    # ...until it pauses for half a second: its next reply plays.
    assert barge.admit(T0 + 1.2 + 0.5)
    assert barge.admit(T0 + 1.8)


def test_nothing_to_cut_is_no_barge_in() -> None:
    rig = make_rig(EchoMode.OFF)
    rig.player.clear()  # the agent's audio has all been played
    for k in range(10):
        assert not rig.barge.feed(True, 20.0, T0 + k * 0.02)
    assert rig.barge.count == 0


def test_a_barge_in_onset_needs_enough_speech_spanning_100ms() -> None:
    def onset(pattern: str) -> bool:  # one character per 20 ms frame: x = speech
        return speech_onset(deque((c == "x", 20.0) for c in pattern))

    assert not onset("xxxx")  # 80 ms: a glitch, not yet an onset
    assert onset("xxxxx")  # 100 ms
    assert onset("x..x.x")  # the gate lets speech through in pieces
    assert not onset("x.....x")  # 40 ms of speech is not enough, however spread
    assert speech_onset(deque([(True, 100.0)]))  # --chunk-ms 100: one frame will do


def test_echo_control_converts_only_to_half_its_rate() -> None:
    setup = choose_mode(EchoMode.GATE, acoustic=True, rate_hz=RATE)
    with pytest.raises(ValueError, match="to half"):
        EchoControl(
            setup, player=ClockPlayer(RATE), rate_hz=RATE, frame_ms=20,
            state=CallState("call", "t", "t", has_credits=False), bus=RecordBus(),
            out_rate_hz=RATE // 4,
        )  # fmt: skip
