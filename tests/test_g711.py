"""G.711 mu-law: bit-exact with CPython's audioop, pinned by table fingerprints."""

from __future__ import annotations

import hashlib
import importlib
import warnings
from types import ModuleType

import numpy as np
import pytest

from aivoco.audio.g711 import decode_table, encode_table, ulaw_decode, ulaw_encode
from aivoco.errors import AudioFormatError

# SHA-256 of the full tables, computed from CPython 3.11's audioop. They let the codec be
# checked where audioop is gone (3.13 without the audioop-lts backport).
ENCODE_SHA256 = "617fa4850d68d3906597e949f7625fb2fc46db479e29707f33159b3d131721cb"
DECODE_SHA256 = "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827"

# Index i is the int16 whose bit pattern read as uint16 is i: 0..32767, then -32768..-1.
ALL_INT16 = np.arange(65536, dtype=np.uint16).view(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def _audioop() -> ModuleType | None:
    # audioop warns that it is deprecated (3.11, 3.12); pytest turns warnings into errors,
    # so the import is done with that one warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            return None


audioop = _audioop()
needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop is not importable")


def test_encode_table_fingerprint() -> None:
    codes = ulaw_encode(ALL_INT16)
    assert codes.dtype == np.uint8 and codes.shape == (65536,)
    assert hashlib.sha256(codes.tobytes()).hexdigest() == ENCODE_SHA256


def test_decode_table_fingerprint() -> None:
    pcm = ulaw_decode(ALL_CODES)
    assert pcm.dtype == np.int16 and pcm.shape == (256,)
    assert hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest() == DECODE_SHA256


def test_table_accessors_return_copies_of_the_live_tables() -> None:
    enc, dec = encode_table(), decode_table()
    np.testing.assert_array_equal(enc, ulaw_encode(ALL_INT16))
    np.testing.assert_array_equal(dec, ulaw_decode(ALL_CODES))
    enc[:] = 0
    dec[:] = 0
    assert ulaw_encode(np.array([1000], np.int16))[0] != 0
    assert ulaw_decode(bytes([0]))[0] != 0


@needs_audioop
def test_encode_matches_audioop_for_every_int16() -> None:
    assert audioop is not None
    expected = audioop.lin2ulaw(ALL_INT16.astype("<i2").tobytes(), 2)
    assert ulaw_encode(ALL_INT16).tobytes() == expected


@needs_audioop
def test_decode_matches_audioop_for_every_code() -> None:
    assert audioop is not None
    expected = audioop.ulaw2lin(bytes(range(256)), 2)
    assert ulaw_decode(bytes(range(256))).astype("<i2").tobytes() == expected


def test_decode_range_and_known_points() -> None:
    pcm = ulaw_decode(ALL_CODES).astype(np.int32)
    assert pcm.min() == -32124 and pcm.max() == 32124
    # 0x00 is the most negative step, 0x80 the most positive; 0xFF and 0x7F are zero.
    assert pcm[0x00] == -32124 and pcm[0x80] == 32124
    assert pcm[0xFF] == 0 and pcm[0x7F] == 0


def test_roundtrip_error_is_within_half_a_step() -> None:
    x = ALL_INT16.astype(np.int32)
    y = ulaw_decode(ulaw_encode(ALL_INT16)).astype(np.int32)
    # Each segment's step is 1/16 of its range and decoding lands mid-step, so the error
    # is about |x|/32, plus a few units in the bottom (near-linear) segment.
    assert np.all(np.abs(y - x) <= np.abs(x) / 32 + 8)
    # Decoding and re-encoding a code gives the same code (the codes are fixed points),
    # except the negative zero 0x7F which encodes back as positive zero 0xFF.
    again = ulaw_encode(ulaw_decode(ALL_CODES))
    differs = np.flatnonzero(again != ALL_CODES)
    assert differs.tolist() == [0x7F]


def test_encode_is_monotonic() -> None:
    # Larger samples never get a code that decodes to a smaller value.
    ordered = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    decoded = ulaw_decode(ulaw_encode(ordered)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)


@pytest.mark.parametrize("shape", [(0,), (7,), (160,), (3, 4), (2, 3, 5)])
def test_encode_preserves_shape(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, size=shape).astype(np.int16)
    codes = ulaw_encode(pcm)
    assert codes.shape == shape and codes.dtype == np.uint8
    np.testing.assert_array_equal(codes.ravel(), ulaw_encode(pcm.ravel()))


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint16, np.int8])
def test_encode_rejects_other_dtypes(dtype: type) -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        ulaw_encode(np.zeros(4, dtype))


@pytest.mark.parametrize("dtype", [np.int16, np.int8, np.float32, np.int64])
def test_decode_rejects_other_dtypes(dtype: type) -> None:
    with pytest.raises(AudioFormatError, match="uint8"):
        ulaw_decode(np.zeros(4, dtype))


def test_decode_rejects_a_list_of_ints() -> None:
    # np.asarray([..]) is int64, not uint8: accepting it would hide a caller's mistake.
    with pytest.raises(AudioFormatError):
        ulaw_decode([0, 1, 2])


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decode_accepts_buffer_types(kind: type) -> None:
    raw = bytes([0x00, 0x80, 0xFF, 0x7F, 0x10])
    out = ulaw_decode(kind(raw))
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, ulaw_decode(np.frombuffer(raw, np.uint8)))


def test_decode_of_160_bytes_is_20ms_at_8khz() -> None:
    assert ulaw_decode(bytes(160)).shape == (160,)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 159, 160, 4095, 4096, 4097, 10_001])
def test_decode_paths_agree_at_every_length(n: int) -> None:
    """Short inputs use the 256-entry table, long ones the pair table (odd tails too)."""
    rng = np.random.default_rng(n)
    codes = rng.integers(0, 256, n, dtype=np.uint8)
    expected = decode_table()[codes.astype(np.intp)]
    assert np.array_equal(ulaw_decode(codes), expected)
    assert np.array_equal(ulaw_decode(codes.tobytes()), expected)
    shaped = rng.integers(0, 256, (n, 2), dtype=np.uint8)
    assert ulaw_decode(shaped).shape == (n, 2)
    assert np.array_equal(ulaw_decode(shaped), decode_table()[shaped.astype(np.intp)])
