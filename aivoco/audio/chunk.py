"""`AudioChunk`: audio never travels as bare bytes.

A chunk carries int16 samples shaped (frames, channels) together with its sample rate,
so every hop (device, resampler, codec, wire, file) can check what it is given.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aivoco.errors import AudioFormatError

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

# Scale used both ways: float = int16 / 32768 (as the reference clients do), and
# float -> int16 clips to [-32768, 32767] so +1.0 does not wrap around.
_PCM16_SCALE = 32768.0


def pcm16_to_float32(samples: npt.ArrayLike) -> Float32Array:
    """int16 samples -> float32 in [-1.0, 1.0)."""
    arr = np.asarray(samples)
    if arr.dtype != np.int16:
        raise AudioFormatError(f"expected int16 samples, got {arr.dtype}")
    out: Float32Array = arr.astype(np.float32) / np.float32(_PCM16_SCALE)
    return out


def float32_to_pcm16(samples: npt.ArrayLike, finite: bool = False) -> Int16Array:
    """float samples in [-1, 1] -> int16, rounded and clipped (never wraps).

    `finite`: the caller knows there is no NaN or infinity (audio that started as int16
    and was only resampled, mixed or scaled), which skips the costliest step: on the
    playback path that runs every 10-20 ms of every call."""
    arr = np.asarray(samples, dtype=np.float32)
    # NaN (a broken decoder or division) becomes silence rather than an arbitrary int.
    # Checked first: nan_to_num is eight array operations, isfinite().all() two (28 -> 12
    # us per 40 ms block, and this runs on every microphone frame).
    if not finite and not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0)
    # In place on one temporary, with the ufuncs themselves: np.clip's wrapper and a
    # temporary per step cost more than the arithmetic on a 10-20 ms block.
    scaled = arr * np.float32(_PCM16_SCALE)
    np.rint(scaled, out=scaled)
    np.minimum(scaled, 32767, out=scaled)
    np.maximum(scaled, -32768, out=scaled)
    out: Int16Array = scaled.astype(np.int16)
    return out


def pcm16_from_bytes(data: bytes | bytearray | memoryview) -> Int16Array:
    """Little-endian signed 16-bit PCM bytes -> int16 array (a copy, native order)."""
    raw = bytes(data)
    if len(raw) % 2:
        raise AudioFormatError(f"PCM16 data must have an even number of bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def pcm16_to_bytes(samples: npt.ArrayLike) -> bytes:
    """int16 array -> little-endian PCM16 bytes (s16le, as both wire protocols use)."""
    arr = np.asarray(samples)
    if arr.dtype != np.int16:
        raise AudioFormatError(f"expected int16 samples, got {arr.dtype}")
    return arr.astype("<i2", copy=False).tobytes()


def b64decode_strict(text: str | bytes) -> bytes:
    """Strict base64 decode: non-alphabet characters or bad padding raise AudioFormatError."""
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError as exc:
            raise AudioFormatError("base64 audio contains non-ASCII characters") from exc
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioFormatError(f"invalid base64 audio: {exc}") from exc


def pcm16_from_base64(text: str | bytes) -> Int16Array:
    """base64(PCM s16le) -> int16 array; bad base64 or an odd byte count raise."""
    return pcm16_from_bytes(b64decode_strict(text))


def pcm16_to_base64(samples: npt.ArrayLike) -> str:
    """int16 array -> base64(PCM s16le) text."""
    return base64.b64encode(pcm16_to_bytes(samples)).decode("ascii")


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Interleaved int16 audio: `samples` has shape (frames, channels)."""

    samples: Int16Array
    sample_rate_hz: int
    channels: int = 1
    # When its first sample left the microphone's converter (time.monotonic() seconds),
    # if known: echo control aligns it with what the speaker played (docs/echo.md).
    captured_at_s: float | None = None

    def __post_init__(self) -> None:
        arr = np.asarray(self.samples)
        if arr.dtype != np.int16:
            raise AudioFormatError(f"AudioChunk samples must be int16, got {arr.dtype}")
        if arr.ndim == 1:
            if self.channels != 1:
                raise AudioFormatError("1-D samples need channels=1")
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != self.channels:
            raise AudioFormatError(
                f"samples shape {arr.shape} does not match channels={self.channels}"
            )
        if self.sample_rate_hz <= 0 or self.channels <= 0:
            raise AudioFormatError("sample rate and channel count must be positive")
        object.__setattr__(self, "samples", arr)

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def silence(cls, frames: int, sample_rate_hz: int, channels: int = 1) -> AudioChunk:
        return cls(np.zeros((frames, channels), np.int16), sample_rate_hz, channels)

    @classmethod
    def silence_ms(cls, duration_ms: float, sample_rate_hz: int, channels: int = 1) -> AudioChunk:
        return cls.silence(round(duration_ms * sample_rate_hz / 1000), sample_rate_hz, channels)

    @classmethod
    def from_float32(
        cls, samples: npt.ArrayLike, sample_rate_hz: int, channels: int = 1
    ) -> AudioChunk:
        return cls(float32_to_pcm16(samples), sample_rate_hz, channels)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, sample_rate_hz: int, channels: int = 1
    ) -> AudioChunk:
        if channels <= 0:
            raise AudioFormatError(f"channel count must be positive, got {channels}")
        samples = pcm16_from_bytes(data)
        if samples.size % channels:
            raise AudioFormatError(f"{samples.size} samples do not split into {channels} channels")
        return cls(samples.reshape(-1, channels), sample_rate_hz, channels)

    @classmethod
    def from_base64(cls, text: str | bytes, sample_rate_hz: int, channels: int = 1) -> AudioChunk:
        return cls.from_bytes(b64decode_strict(text), sample_rate_hz, channels)

    @classmethod
    def concat(cls, chunks: list[AudioChunk]) -> AudioChunk:
        if not chunks:
            raise AudioFormatError("cannot concatenate zero chunks")
        rate, ch = chunks[0].sample_rate_hz, chunks[0].channels
        for c in chunks:
            if c.sample_rate_hz != rate or c.channels != ch:
                raise AudioFormatError("cannot concatenate chunks of different formats")
        return cls(np.concatenate([c.samples for c in chunks]), rate, ch)

    # -- views and conversions ------------------------------------------------------
    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_ms(self) -> float:
        return self.frames * 1000.0 / self.sample_rate_hz

    @property
    def peak(self) -> float:
        """Peak |sample| / 32768 over all channels, in [0, 1] (levels.peak). Computed once:
        the uplink's meter, turns and the sts codec's `max_amplitude` all read it. Cached
        by hand: Python 3.11's `functools.cached_property` takes a lock on every read."""
        cached: float | None = self.__dict__.get("_peak")
        if cached is None:
            # int32 first: abs(-32768) does not fit int16.
            s = self.samples
            cached = float(np.abs(s.astype(np.int32)).max()) / _PCM16_SCALE if s.size else 0.0
            object.__setattr__(self, "_peak", cached)
        return cached

    def mono(self) -> AudioChunk:
        """Downmix to one channel by averaging (rounded), a no-op for mono chunks."""
        if self.channels == 1:
            return self
        mixed = np.rint(self.samples.astype(np.float64).mean(axis=1))
        return AudioChunk(mixed.astype(np.int16), self.sample_rate_hz, 1)

    def mono_samples(self) -> Int16Array:
        """The single channel of a mono chunk as a 1-D array (raises for stereo)."""
        if self.channels != 1:
            raise AudioFormatError("mono_samples() needs a mono chunk; call mono() first")
        return self.samples[:, 0]

    def to_float32(self) -> Float32Array:
        return pcm16_to_float32(self.samples)

    def to_bytes(self) -> bytes:
        return pcm16_to_bytes(self.samples)

    def to_base64(self) -> str:
        return pcm16_to_base64(self.samples)

    def __len__(self) -> int:
        return self.frames

    def __repr__(self) -> str:
        return (
            f"AudioChunk(frames={self.frames}, sample_rate_hz={self.sample_rate_hz}, "
            f"channels={self.channels}, duration_ms={self.duration_ms:.1f})"
        )
