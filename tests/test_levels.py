"""Peak, RMS, dBFS and the has_audio decision on known signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.levels import (
    HAS_AUDIO_PEAK_THRESHOLD,
    SILENCE_DBFS,
    has_audio,
    peak,
    peak_dbfs,
    rms,
    rms_dbfs,
    to_dbfs,
)


def chunk(values: list[int] | np.ndarray, channels: int = 1) -> AudioChunk:
    arr = np.asarray(values, np.int16)
    return AudioChunk(arr.reshape(-1, channels), 16000, channels)


def test_full_scale_square_is_0_dbfs() -> None:
    sq = chunk([32767, -32768] * 400)
    assert peak(sq) == 1.0
    assert peak_dbfs(sq) == 0.0
    assert rms_dbfs(sq) == pytest.approx(0.0, abs=0.001)


def test_minus_32768_is_handled() -> None:
    # abs(-32768) overflows int16; a naive implementation reports a negative peak.
    c = chunk([0, -32768, 0])
    assert peak(c) == 1.0
    assert rms(c) == pytest.approx(math.sqrt(1 / 3))


def test_full_scale_sine_is_minus_3_01_dbfs() -> None:
    n = 16000
    x = np.rint(32767 * np.sin(2 * np.pi * 1000 * np.arange(n) / 16000))
    s = chunk(x.astype(np.int16))
    assert rms_dbfs(s) == pytest.approx(-3.0103, abs=0.01)
    assert peak_dbfs(s) == pytest.approx(0.0, abs=0.001)


def test_half_scale_levels() -> None:
    sq = chunk([16384, -16384] * 100)
    assert peak(sq) == 0.5
    assert rms(sq) == 0.5
    assert rms_dbfs(sq) == pytest.approx(-6.0206, abs=1e-4)


def test_levels_use_all_channels() -> None:
    st = chunk([0, 16384, 0, -16384], channels=2)
    assert peak(st) == 0.5
    assert rms(st) == pytest.approx(0.5 / math.sqrt(2))


def test_silence_has_a_finite_floor() -> None:
    silent = AudioChunk.silence(320, 16000)
    assert peak(silent) == 0.0 and rms(silent) == 0.0
    assert rms_dbfs(silent) == SILENCE_DBFS == -96.0
    assert peak_dbfs(silent) == SILENCE_DBFS
    empty = AudioChunk.silence(0, 16000)
    assert peak(empty) == 0.0 and rms(empty) == 0.0
    assert rms_dbfs(empty) == SILENCE_DBFS


def test_to_dbfs_floor_and_scale() -> None:
    assert to_dbfs(1.0) == 0.0
    assert to_dbfs(0.1) == pytest.approx(-20.0)
    assert to_dbfs(0.0) == SILENCE_DBFS
    assert to_dbfs(-1.0) == SILENCE_DBFS
    assert to_dbfs(1e-9) == SILENCE_DBFS  # -180 dB is floored, not reported
    # One LSB is about -90.3 dBFS: above the floor, so quiet signals stay visible.
    assert to_dbfs(1 / 32768) == pytest.approx(-90.309, abs=0.001)


def test_has_audio_threshold_boundary() -> None:
    assert HAS_AUDIO_PEAK_THRESHOLD == 0.01
    # 0.01 x 32768 = 327.68: 327 is below the threshold, 328 above it.
    assert not has_audio(chunk([0, 327, -327]))
    assert has_audio(chunk([0, 328, 0]))
    assert has_audio(chunk([0, -328, 0]))
    assert not has_audio(AudioChunk.silence(160, 8000))
    assert not has_audio(AudioChunk.silence(0, 8000))


def test_has_audio_is_strictly_greater_than_threshold() -> None:
    # A peak exactly at the threshold is not audio: 16384 / 32768 == 0.5 exactly.
    assert not has_audio(chunk([16384]), threshold=0.5)
    assert has_audio(chunk([16385]), threshold=0.5)
    # The browser playground's lower threshold admits quieter chunks.
    assert has_audio(chunk([40]), threshold=0.001)
    assert not has_audio(chunk([40]))


def test_mean_square_matches_the_float64_mean_it_replaced() -> None:
    from aivoco.audio.levels import mean_square

    rng = np.random.default_rng(7)
    for n in (1, 160, 320, 441, 960):
        x = (rng.standard_normal(n) * 0.3).astype(np.float32)
        want = float(np.mean(np.square(x, dtype=np.float64)))
        assert mean_square(x) == pytest.approx(want, rel=1e-5)
    assert mean_square(np.zeros(0, np.float32)) == 0.0
    blocks = rng.standard_normal((4, 80)).astype(np.float32)  # any shape: all samples
    assert mean_square(blocks) == pytest.approx(float(np.mean(blocks.astype(np.float64) ** 2)))


def test_downmix_averages_the_channels() -> None:
    from aivoco.audio.framing import downmix

    rng = np.random.default_rng(3)
    for channels in (1, 2, 3):
        x = rng.standard_normal((441, channels)).astype(np.float32)
        out = downmix(x)
        assert out.dtype == np.float32 and out.shape == (441,)
        np.testing.assert_allclose(out, x.mean(axis=1), rtol=1e-6, atol=1e-7)
