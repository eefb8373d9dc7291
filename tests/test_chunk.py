"""AudioChunk validation and the PCM16 / float32 / base64 conversions."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from aivoco.audio.chunk import (
    AudioChunk,
    b64decode_strict,
    float32_to_pcm16,
    pcm16_from_base64,
    pcm16_from_bytes,
    pcm16_to_base64,
    pcm16_to_bytes,
    pcm16_to_float32,
)
from aivoco.errors import AivocoError, AudioFormatError

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


# -- AudioChunk shape and dtype --------------------------------------------------------
def test_1d_samples_become_one_column() -> None:
    c = AudioChunk(np.array([1, 2, 3], np.int16), 16000)
    assert c.samples.shape == (3, 1)
    assert c.frames == 3
    assert len(c) == 3
    assert c.duration_ms == pytest.approx(3 / 16)


def test_stereo_shape_is_kept() -> None:
    c = AudioChunk(np.zeros((5, 2), np.int16), 48000, channels=2)
    assert c.samples.shape == (5, 2)
    assert c.frames == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint16, np.uint8])
def test_non_int16_samples_are_rejected(dtype: type) -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        AudioChunk(np.zeros(4, dtype), 16000)


def test_big_endian_int16_is_not_silently_accepted() -> None:
    # The wire format is little-endian; a byte-swapped array must be converted first.
    with pytest.raises(AudioFormatError):
        AudioChunk(np.zeros(4, ">i2"), 16000)


@pytest.mark.parametrize(
    ("shape", "channels"),
    [((4,), 2), ((4, 2), 1), ((4, 1), 2), ((2, 2, 2), 2), ((4, 3), 2)],
)
def test_shape_must_match_channels(shape: tuple[int, ...], channels: int) -> None:
    with pytest.raises(AudioFormatError):
        AudioChunk(np.zeros(shape, np.int16), 16000, channels=channels)


@pytest.mark.parametrize("rate", [0, -8000])
def test_rate_must_be_positive(rate: int) -> None:
    with pytest.raises(AudioFormatError, match="positive"):
        AudioChunk(np.zeros(4, np.int16), rate)


def test_audio_format_error_is_a_value_error_and_an_aivoco_error() -> None:
    # Callers catch ValueError for bad arguments and AivocoError for user-facing reports.
    with pytest.raises(ValueError):
        AudioChunk(np.zeros(4, np.float32), 16000)
    assert issubclass(AudioFormatError, AivocoError)


def test_silence_constructors() -> None:
    s = AudioChunk.silence_ms(20, 16000)
    assert s.frames == 320 and s.sample_rate_hz == 16000
    assert not s.samples.any()
    assert AudioChunk.silence_ms(20, 44100).frames == 882
    st = AudioChunk.silence(10, 48000, channels=2)
    assert st.samples.shape == (10, 2)


def test_repr_names_the_format() -> None:
    r = repr(AudioChunk.silence_ms(20, 8000))
    assert "frames=160" in r and "8000" in r and "20.0" in r


# -- PCM16 <-> float32 -----------------------------------------------------------------
def test_pcm16_to_float32_scale() -> None:
    f = pcm16_to_float32(np.array([-32768, -16384, 0, 16384, 32767], np.int16))
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, [-1.0, -0.5, 0.0, 0.5, 32767 / 32768])


def test_pcm16_to_float32_rejects_other_dtypes() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        pcm16_to_float32(np.zeros(3, np.int32))


def test_float32_to_pcm16_clips_instead_of_wrapping() -> None:
    out = float32_to_pcm16(np.array([1.0, 1.5, 1e9, -1.0, -1.5, -1e9], np.float32))
    assert out.dtype == np.int16
    # +1.0 * 32768 = 32768 does not fit int16; it must clip to 32767, not wrap to -32768.
    np.testing.assert_array_equal(out, [32767, 32767, 32767, -32768, -32768, -32768])


def test_float32_to_pcm16_rounds_to_nearest() -> None:
    x = np.array([100.4, 100.6, -100.4, -100.6, 0.3, -0.3], np.float64) / 32768
    # Truncation would give 100, 100, -100, -100: the two .6 cases tell them apart.
    np.testing.assert_array_equal(float32_to_pcm16(x), [100, 101, -100, -101, 0, 0])


def test_float_roundtrip_is_lossless_for_every_int16() -> None:
    back = float32_to_pcm16(pcm16_to_float32(ALL_INT16))
    np.testing.assert_array_equal(back, ALL_INT16)


def test_chunk_float_roundtrip_keeps_shape() -> None:
    c = AudioChunk(np.array([[1, -1], [32767, -32768]], np.int16), 48000, channels=2)
    back = AudioChunk.from_float32(c.to_float32(), 48000, channels=2)
    np.testing.assert_array_equal(back.samples, c.samples)


# -- PCM16 <-> bytes <-> base64 --------------------------------------------------------
def test_bytes_are_little_endian() -> None:
    samples = np.array([1, -2, 0x1234], np.int16)
    assert pcm16_to_bytes(samples) == b"\x01\x00\xfe\xff\x34\x12"
    np.testing.assert_array_equal(pcm16_from_bytes(b"\x01\x00\xfe\xff\x34\x12"), samples)


def test_bytes_roundtrip_every_int16() -> None:
    np.testing.assert_array_equal(pcm16_from_bytes(pcm16_to_bytes(ALL_INT16)), ALL_INT16)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_from_bytes_accepts_buffer_types(kind: type) -> None:
    out = pcm16_from_bytes(kind(b"\x01\x00\x02\x00"))
    np.testing.assert_array_equal(out, [1, 2])


def test_from_bytes_returns_a_writable_copy() -> None:
    raw = bytearray(b"\x01\x00")
    out = pcm16_from_bytes(raw)
    raw[0] = 9
    assert out[0] == 1
    out[0] = 5  # np.frombuffer on bytes would be read-only


@pytest.mark.parametrize("n", [1, 3, 321])
def test_odd_byte_count_raises(n: int) -> None:
    with pytest.raises(AudioFormatError, match=rf"even number of bytes, got {n}"):
        pcm16_from_bytes(b"\x00" * n)


def test_pcm16_to_bytes_rejects_float() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        pcm16_to_bytes(np.zeros(2, np.float32))


def test_base64_roundtrip() -> None:
    samples = np.array([0, 1, -1, 32767, -32768], np.int16)
    text = pcm16_to_base64(samples)
    assert text == base64.b64encode(pcm16_to_bytes(samples)).decode()
    np.testing.assert_array_equal(pcm16_from_base64(text), samples)
    np.testing.assert_array_equal(pcm16_from_base64(text.encode()), samples)


def test_empty_base64_is_an_empty_chunk() -> None:
    assert AudioChunk.from_base64("", 16000).frames == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("AAE*", "invalid base64"),  # '*' is outside the alphabet
        ("AA E", "invalid base64"),  # whitespace is not silently skipped
        ("AAEA\n", "invalid base64"),
        ("AAE", "invalid base64"),  # missing padding
        ("AA=A", "invalid base64"),  # padding in the middle
        ("A===", "invalid base64"),
        (b"\xff\xfe\x00\x01", "invalid base64"),  # non-ASCII bytes
        ("AAé=", "non-ASCII"),  # non-ASCII text
    ],
)
def test_bad_base64_raises_a_clear_error(text: str | bytes, fragment: str) -> None:
    with pytest.raises(AudioFormatError, match=fragment):
        b64decode_strict(text)
    with pytest.raises(AudioFormatError, match=fragment):
        AudioChunk.from_base64(text, 16000)


def test_base64_of_odd_byte_count_raises() -> None:
    text = base64.b64encode(b"\x01\x02\x03").decode()
    with pytest.raises(AudioFormatError, match="even number of bytes, got 3"):
        pcm16_from_base64(text)


def test_chunk_bytes_and_base64_roundtrip() -> None:
    c = AudioChunk(np.array([5, -5, 1000], np.int16), 24000)
    assert AudioChunk.from_bytes(c.to_bytes(), 24000).samples.tolist() == [[5], [-5], [1000]]
    assert AudioChunk.from_base64(c.to_base64(), 24000).samples.tolist() == [[5], [-5], [1000]]


def test_from_bytes_with_channels_interleaves() -> None:
    raw = np.array([1, 2, 3, 4, 5, 6], np.int16).tobytes()
    c = AudioChunk.from_bytes(raw, 48000, channels=2)
    assert c.samples.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert c.frames == 3
    assert c.to_bytes() == raw


def test_from_bytes_rejects_partial_frames() -> None:
    raw = np.array([1, 2, 3], np.int16).tobytes()
    with pytest.raises(AudioFormatError, match="3 samples do not split into 2 channels"):
        AudioChunk.from_bytes(raw, 48000, channels=2)


# -- mono downmix and concat -----------------------------------------------------------
def test_mono_averages_and_rounds() -> None:
    c = AudioChunk(
        np.array([[1, 2], [100, -100], [32767, 32767], [-32768, -32768], [3, 6]], np.int16),
        48000,
        channels=2,
    )
    m = c.mono()
    assert m.channels == 1 and m.sample_rate_hz == 48000
    # 1.5 -> 2 and 4.5 -> 4 (round half to even); extremes stay in range.
    assert m.mono_samples().tolist() == [2, 0, 32767, -32768, 4]


def test_mono_of_mono_is_itself() -> None:
    c = AudioChunk(np.array([1, 2], np.int16), 16000)
    assert c.mono() is c
    assert c.mono_samples().tolist() == [1, 2]


def test_mono_samples_refuses_stereo() -> None:
    c = AudioChunk(np.zeros((2, 2), np.int16), 16000, channels=2)
    with pytest.raises(AudioFormatError, match="mono"):
        c.mono_samples()


def test_concat_joins_in_order() -> None:
    a = AudioChunk(np.array([1, 2], np.int16), 8000)
    b = AudioChunk(np.array([3], np.int16), 8000)
    c = AudioChunk.concat([a, b, a])
    assert c.mono_samples().tolist() == [1, 2, 3, 1, 2]
    assert c.sample_rate_hz == 8000


def test_concat_errors() -> None:
    a = AudioChunk(np.array([1, 2], np.int16), 8000)
    with pytest.raises(AudioFormatError, match="zero chunks"):
        AudioChunk.concat([])
    with pytest.raises(AudioFormatError, match="different formats"):
        AudioChunk.concat([a, AudioChunk(np.array([1], np.int16), 16000)])
    with pytest.raises(AudioFormatError, match="different formats"):
        AudioChunk.concat([a, AudioChunk(np.zeros((1, 2), np.int16), 8000, channels=2)])


def test_zero_channels_and_nan_are_handled() -> None:
    with pytest.raises(AudioFormatError, match="channel count must be positive"):
        AudioChunk.from_bytes(b"\x00\x00", 16000, channels=0)
    out = float32_to_pcm16(np.array([np.nan, np.inf, -np.inf, 0.5], np.float32))
    assert out.tolist() == [0, 32767, -32768, 16384]
