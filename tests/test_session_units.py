"""Pure parts of the session core: turn tracking, call state, records, output files."""

from __future__ import annotations

import json
import logging
import wave
from pathlib import Path

import numpy as np
import pytest

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AudioFileError
from aivoco.redact import RedactingFilter, clear_secrets, redact, register_secret
from aivoco.session.files import MAX_SKEW_MS, StereoRecorder, TranscriptWriter
from aivoco.session.lifecycle import Phase
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState, Credits
from aivoco.session.turns import TurnTracker


# -- turns ---------------------------------------------------------------------------
def _speak(tr: TurnTracker, start: float, voiced_s: float, silent_s: float) -> list[object]:
    """20 ms frames at 16 kHz, each sent when complete (as a real-time source does):
    the frame ending at audio time `a` is sent at wall time `start + a`."""
    ends = []
    t = start
    for voiced, seconds in ((True, voiced_s), (False, silent_s)):
        for _ in range(round(seconds / 0.02)):
            t += 0.02
            ends.append(tr.on_user_frame(voiced, 320, 16000, t))
    return [e for e in ends if e is not None]


def test_turn_latency_is_end_of_speech_to_first_agent_audio() -> None:
    tr = TurnTracker()
    ends = _speak(tr, 10.0, 1.0, 0.6)
    assert len(ends) == 1
    end = ends[0]
    assert end.ended_at == pytest.approx(1.0)  # type: ignore[attr-defined]  # audio time
    assert end.duration_s == pytest.approx(1.0)  # type: ignore[attr-defined]
    assert tr.on_agent_audio(11.8) == pytest.approx(800.0)
    # Later chunks of the same agent turn give no new figure.
    assert tr.on_agent_audio(11.9) is None
    assert tr.on_agent_audio(12.0) is None


def test_no_latency_without_user_speech_or_within_agent_turn() -> None:
    tr = TurnTracker()
    assert tr.on_agent_audio(1.0) is None  # the agent greets first
    _speak(tr, 2.0, 0.5, 0.6)
    assert tr.on_agent_audio(3.5) == pytest.approx(1000.0)
    # A second agent turn without new user speech is not an answer.
    assert tr.on_agent_audio(10.0) is None


def test_overlap_gives_no_latency_figure() -> None:
    tr = TurnTracker()
    t = 0.0
    for _ in range(50):
        t += 0.02
        tr.on_user_frame(True, 320, 16000, t)
    assert tr.user_speaking
    assert tr.on_agent_audio(t) is None  # agent starts while the user still talks


def test_short_gap_does_not_end_user_turn() -> None:
    tr = TurnTracker()
    ends = _speak(tr, 0.0, 0.4, 0.4)  # 400 ms pause < 500 ms hangover
    assert ends == []
    ends = _speak(tr, 0.8, 0.4, 0.6)
    assert len(ends) == 1
    assert ends[0].duration_s == pytest.approx(1.2)  # type: ignore[attr-defined]


def _utterance_frames() -> list[bool]:
    from aivoco.audio.files import read_file
    from aivoco.audio.levels import HAS_AUDIO_PEAK_THRESHOLD
    from aivoco.emulator.assets import demo_utterance_path

    x = read_file(demo_utterance_path(), 16000).samples[:, 0].astype(np.int32)
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    voiced = np.abs(frames).max(axis=1) / 32768 > HAS_AUDIO_PEAK_THRESHOLD
    return [bool(v) for v in voiced] + [False] * 50  # then silence, as the uplink sends


def test_turns_follow_the_audio_not_the_threads() -> None:
    """The demo utterance (one sentence, a 0.32 s pause in it) is one turn, whatever the
    wall-clock timing of the frames: on time, or with the uplink thread stalled for
    100-300 ms at random (as under load) and catching up in a burst."""
    voiced = _utterance_frames()
    rng = np.random.default_rng(7)
    results = []
    for stalls in (False, True, True, True):
        tr, t, ends = TurnTracker(), 0.0, []
        for v in voiced:
            t += 0.02
            if stalls and rng.random() < 0.05:
                t += rng.uniform(0.1, 0.3)
            ends.append(tr.on_user_frame(v, 320, 16000, t))
        results.append([(e.ended_at, e.duration_s) for e in ends if e is not None])
    assert all(r == results[0] for r in results)
    assert len(results[0]) == 1 and results[0][0][1] == pytest.approx(3.74, abs=0.02)


# -- state ---------------------------------------------------------------------------
def test_credit_estimate_ticks_then_uses_final_totals() -> None:
    c = Credits(available=10.0, cost_per_minute=2.0)
    used, remaining = c.estimate(90.0)
    assert used == pytest.approx(3.0)
    assert remaining == pytest.approx(7.0)
    final = Credits(available=10.0, cost_per_minute=2.0, final_used=3.5, final_remaining=6.5)
    assert final.estimate(1000.0) == (3.5, 6.5)
    assert Credits().estimate(60.0) == (None, None)


def test_state_snapshot_is_a_copy_and_elapsed_freezes_at_end() -> None:
    st = CallState("sts", "example.org", "voice female", has_credits=True)
    assert st.elapsed_s() == 0.0
    st.set_phase(Phase.LIVE)
    st.add_entry("agent", "hello")
    st.add_latency(500.0)
    st.add_latency(700.0)
    snap = st.snapshot()
    st.add_entry("agent", "later")
    assert [e.text for e in snap.transcript] == ["hello"]
    assert snap.latency_last_ms == 700.0
    assert snap.latency_mean_ms == 600.0
    assert snap.turns == 2
    st.set_phase(Phase.ENDED)
    st.set_end_reason("idle")
    frozen = st.elapsed_s()
    assert st.elapsed_s(now=frozen + 1e6) == pytest.approx(frozen)
    assert st.snapshot().end_reason == "idle"


# -- records and transcript ----------------------------------------------------------
class _Collect:
    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def on_record(self, record: dict[str, object]) -> None:
        self.records.append(record)


def test_record_bus_writes_json_lines_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"type": "earlier call"}\n')  # --transcript appends
    bus = RecordBus()
    sink = _Collect()
    bus.subscribe(sink)
    bus.add_writer(TranscriptWriter(path))
    bus.emit("connecting", endpoint="h")
    bus.start_clock()
    bus.emit("agent_text", text="héllo")
    # Flushed per line: readable before close, as after a crash.
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["earlier call", "connecting", "agent_text"]
    assert json.loads(lines[-1])["text"] == "héllo"
    assert sink.records[-1]["t"] >= 0  # type: ignore[operator]
    bus.close()


def test_transcript_write_failure_is_kept_as_the_bus_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="cannot write transcript"):
        TranscriptWriter(tmp_path / "missing-dir" / "t.jsonl")
    bus = RecordBus()
    w = TranscriptWriter("/dev/full")
    bus.add_writer(w)
    bus.emit("agent_text", text="x" * 10000)
    assert isinstance(bus.error, AudioFileError)
    bus.close()


# -- stereo recorder -----------------------------------------------------------------
def _tone(rate: int, seconds: float, value: int) -> AudioChunk:
    return AudioChunk(np.full(round(rate * seconds), value, np.int16), rate)


def test_recorder_aligns_user_left_agent_right(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    rec = StereoRecorder(path, 24000)
    for _ in range(10):
        rec.add_user(_tone(16000, 0.02, 1000))  # resampled to 24 kHz
        rec.add_agent(_tone(24000, 0.02, -2000))
    rec.close()
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 24000)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert frames.shape[0] == pytest.approx(4800, abs=2)
    middle = frames[1000:4000]
    assert np.all(np.abs(middle[:, 0] - 1000) <= 2)
    assert np.all(middle[:, 1] == -2000)


def test_recorder_pads_a_stalled_side_and_stays_valid_mid_call(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    rec = StereoRecorder(path, 8000)
    rec.add_user(_tone(8000, (MAX_SKEW_MS + 100) / 1000, 500))  # agent side silent
    with wave.open(str(path)) as w:  # not closed yet: header already patched
        n = w.getnframes()
        frames = np.frombuffer(w.readframes(n), "<i2").reshape(-1, 2)
    assert n == round(8000 * (MAX_SKEW_MS + 100) / 1000)
    assert np.all(frames[:, 0] == 500)
    assert np.all(frames[:, 1] == 0)
    rec.close()


# -- redaction -----------------------------------------------------------------------
def test_redact_masks_key_and_its_url_escaped_form() -> None:
    clear_secrets()
    register_secret("k/ey?1 x")
    try:
        text = "wss://h/ws/k%2Fey%3F1%20x/agent and k/ey?1 x"
        assert "k/ey" not in redact(text)
        assert "k%2Fey" not in redact(text)
        assert redact(text).count("***") == 2
    finally:
        clear_secrets()


def test_redacting_filter_cleans_messages_args_and_tracebacks() -> None:
    clear_secrets()
    register_secret("s3cret-key")
    try:
        try:
            raise ValueError("bad s3cret-key")
        except ValueError:
            record = logging.LogRecord(
                "aivoco", logging.ERROR, __file__, 1, "with %s", ("s3cret-key",), None
            )
            import sys

            record.exc_info = sys.exc_info()
        assert RedactingFilter().filter(record)
        assert "s3cret" not in record.getMessage()
        assert record.exc_text is not None and "s3cret" not in record.exc_text
        assert "***" in record.exc_text
    finally:
        clear_secrets()
