"""G.711 mu-law, bit-exact with CPython's `audioop.lin2ulaw` / `audioop.ulaw2lin`.

`audioop` is gone in Python 3.13, so the algorithm is reproduced here (CPython's
`st_14linear2ulaw` / `st_ulaw2linear16`, the Sun reference code) and evaluated once for
every possible input: encoding becomes one table gather over all 65,536 int16 values and
decoding one gather over 256 codes. The tests check both tables against `audioop` where
it exists and against stored SHA-256 fingerprints everywhere.

The agent-call protocol (docs/protocols.md#call-format) carries mu-law at 8 kHz; decoding
yields -32124..+32124 as the notes state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aivoco.errors import AudioFormatError

_BIAS = 0x84  # 132: the add-in bias for 16-bit samples
_CLIP = 8159  # largest 14-bit magnitude before the bias is added
# Upper bound of each of the 8 segments, in the 14-bit biased domain.
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _build_encode_table() -> npt.NDArray[np.uint8]:
    # Index i is the int16 sample whose bit pattern, read as uint16, equals i.
    pcm16 = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    pcm14 = pcm16 >> 2  # audioop: (sample << 16) >> 18, an arithmetic shift
    negative = pcm14 < 0
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(negative, -pcm14, pcm14), _CLIP) + (_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, magnitude, side="left")  # first seg_uend >= magnitude
    in_range = seg < 8
    safe_seg = np.minimum(seg, 7)
    uval = (safe_seg << 4) | ((magnitude >> (safe_seg + 1)) & 0xF)
    code = np.where(in_range, uval ^ mask, 0x7F ^ mask)
    return code.astype(np.uint8)


def _build_decode_table() -> npt.NDArray[np.int16]:
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def _build_pair_table(single: npt.NDArray[np.int16]) -> npt.NDArray[np.uint32]:
    """Decode two codes per lookup: index = two codes read as one little-endian uint16,
    value = their two int16 samples packed as one little-endian uint32. Half as many
    gathers brings decoding level with audioop's C loop (bench/bench_codec.py)."""
    idx = np.arange(65536, dtype=np.uint32)
    first = single[idx & 0xFF].view(np.uint16).astype(np.uint32)
    second = single[idx >> 8].view(np.uint16).astype(np.uint32)
    pair: npt.NDArray[np.uint32] = (first | (second << 16)).astype("<u4")
    return pair


_ENCODE_TABLE = _build_encode_table()
_DECODE_TABLE = _build_decode_table()
_DECODE_PAIRS = _build_pair_table(_DECODE_TABLE)
_PAIR_THRESHOLD = 4096  # codes; below it the pair path's setup costs more than it saves


def ulaw_encode(pcm: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """int16 PCM samples (any shape) -> mu-law codes (uint8, same shape)."""
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise AudioFormatError(f"ulaw_encode needs int16 samples, got {arr.dtype}")
    # A view as uint16 maps each sample to its table index without arithmetic. take()
    # beats fancy indexing ~2x; mode="wrap" skips a bounds check no uint16 can fail.
    codes: npt.NDArray[np.uint8] = np.take(_ENCODE_TABLE, arr.view(np.uint16), mode="wrap")
    return codes


def ulaw_decode(codes: bytes | bytearray | memoryview | npt.ArrayLike) -> npt.NDArray[np.int16]:
    """mu-law codes (bytes or a uint8 array) -> int16 PCM samples."""
    if isinstance(codes, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(codes, dtype=np.uint8)
    else:
        arr = np.asarray(codes)
        if arr.dtype != np.uint8:
            raise AudioFormatError(f"ulaw_decode needs uint8 codes or bytes, got {arr.dtype}")
    if arr.size < _PAIR_THRESHOLD:  # a call frame: fewer steps beat fewer gathers
        small: npt.NDArray[np.int16] = _DECODE_TABLE[arr]
        return small
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = np.empty(flat.size, np.int16)
    even = flat.size - flat.size % 2
    if even:
        pairs = out[:even].view("<u4")
        np.take(_DECODE_PAIRS, flat[:even].view("<u2"), out=pairs, mode="wrap")
        if pairs.dtype.byteorder == ">":  # pragma: no cover - big-endian hosts only
            out[:even] = out[:even].byteswap()
    if even != flat.size:
        out[-1] = _DECODE_TABLE[flat[-1]]
    pcm: npt.NDArray[np.int16] = out.reshape(arr.shape)
    return pcm


def encode_table() -> npt.NDArray[np.uint8]:
    """A copy of the 65,536-entry encode table (index = int16 sample viewed as uint16)."""
    table: npt.NDArray[np.uint8] = _ENCODE_TABLE.copy()
    return table


def decode_table() -> npt.NDArray[np.int16]:
    """A copy of the 256-entry decode table."""
    table: npt.NDArray[np.int16] = _DECODE_TABLE.copy()
    return table
