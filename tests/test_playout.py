"""Player: resampling into the jitter buffer, marks after the last sample, file clock."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest
from tones import dominant_freq, sine_chunk, steady

from aivoco.audio.playout import ClockPlayer, Player


def test_a_mark_is_reached_only_after_every_resampled_sample_played() -> None:
    player: Player[str] = Player(48000, prefill_ms=10)
    reply = sine_chunk(440, 24000, 0.5)  # 12000 frames -> 24000 at 48 kHz
    player.play(reply)
    player.add_marker("end")
    block = np.zeros((1, 1), np.float32)  # one frame at a time: exact positions
    reached: list[str] = []
    for _ in range(48000):
        player.jitter.fill(block)
        reached += player.pop_reached()
        if reached:
            break
    assert reached == ["end"]
    played = round(player.jitter.stats().played_ms * 48)
    # Without flushing the resampler first, the mark came ~2 ms (about 100 frames) early.
    assert played == pytest.approx(24000, abs=5)


def test_clock_player_writes_the_speaker_timeline(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    player: ClockPlayer[str] = ClockPlayer(24000, out, prefill_ms=20)
    player.start()
    time.sleep(0.2)  # silence first, as a speaker would play it
    player.play(sine_chunk(300, 24000, 0.3))
    time.sleep(0.6)
    player.close()
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24000
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert len(x) / 24000 == pytest.approx(0.8, abs=0.15)  # real time, silence included
    first_sound = int(np.argmax(np.abs(x) > 1000)) / 24000
    assert 0.15 < first_sound < 0.35
    assert dominant_freq(steady(x), 24000) == pytest.approx(300, abs=3)
