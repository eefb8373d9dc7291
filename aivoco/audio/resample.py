"""Streaming sample-rate conversion between device rates and protocol rates.

Choice, by measurement (bench/bench_resampler.py, 20 ms chunks, worst audio held back
for the device <-> protocol pairs): soxr holds back 37-175 ms at HQ and up to 60 ms at
LQ, because it filters in large blocks; libsamplerate's `sinc_medium` holds back
2-6 ms at 97 dB SNR and 90 % bandwidth, for about 1 % of one core. For a conversation
the latency matters more, so we use libsamplerate (the `samplerate` package).

Two wrinkles of libsamplerate are handled here:
* Its read position is a float that accumulates differently depending on how the input
  is split, so the same signal chunked two ways could differ in the last bits (we saw
  max differences of 4e-6 after ~1 s). We always feed it fixed blocks of BLOCK_MS, so
  its call sequence, and hence its output, is independent of how callers chunk input:
  chunked output is bit-identical to one-shot output. Cost: up to BLOCK_MS extra delay,
  and one call into the converter per block. Live device streams (the microphone, the
  speaker's echo reference) arrive in the device's own fixed blocks, so their chunking
  is already fixed: they convert each block in one call (`block_ms=None`). At 44.1 kHz
  that is 100 calls a second instead of 400, with the same hold-back (2.9 ms for
  sinc_medium 44.1 -> 16 kHz, whether fed 2.5 or 10 ms blocks: measured).
* The binding's `end_of_input` flush drops the filter tail; `flush()` instead feeds
  zeros and trims to exactly round(total_in * ratio) frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aivoco.audio.chunk import AudioChunk, Float32Array, Int16Array, float32_to_pcm16
from aivoco.errors import AudioFormatError

BLOCK_MS = 2.5
DEFAULT_CONVERTER = "sinc_medium"
# Live device streams (the microphone, the speaker's echo reference): sinc_fastest holds
# back 1.2 ms at 44.1 -> 16 kHz and 2.4 ms at 44.1 -> 8 kHz (sinc_medium 2.9 and 5.6) for
# less than half the CPU, at the same 97 dB SNR and 80 % bandwidth (6.4 kHz of the
# 8 kHz Nyquist at 16 kHz: all of speech). Those milliseconds are the uplink's, every
# frame (docs/devices.md#capture); files keep sinc_medium, where only quality counts.
LIVE_CONVERTER = "sinc_fastest"


class StreamResampler:
    """Stateful converter: feed chunks at `in_rate_hz`, get chunks at `out_rate_hz`.

    Not thread-safe; one owner thread feeds it. Passthrough (no filtering, no delay)
    when the rates are equal.
    """

    def __init__(
        self,
        in_rate_hz: int,
        out_rate_hz: int,
        channels: int = 1,
        converter: str = DEFAULT_CONVERTER,
        *,
        block_ms: float | None = BLOCK_MS,
    ) -> None:
        """`block_ms=None`: convert whatever each call brings at once (a live stream whose
        blocks the device fixes), not in fixed blocks; output then depends on chunking."""
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError("sample rates must be positive")
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self.channels = channels
        self.converter = converter
        self.ratio = out_rate_hz / in_rate_hz
        self._block = max(1, round(in_rate_hz * (block_ms or BLOCK_MS) / 1000))
        self._whole = block_ms is None  # each call's input in one converter call
        self._pending = np.zeros((0, channels), np.float32)
        self._in_frames = 0
        self._out_frames = 0
        self._impl: Any = None
        if in_rate_hz != out_rate_hz:
            import samplerate

            self._impl = samplerate.Resampler(converter, channels=channels)

    @property
    def passthrough(self) -> bool:
        return self._impl is None

    def _run(self, block: Float32Array) -> Float32Array:
        out = self._impl.process(block, self.ratio, end_of_input=False)
        return np.asarray(out, dtype=np.float32).reshape(-1, self.channels)

    def process_float(self, samples: Float32Array) -> Float32Array:
        """float32 frames (frames, channels) in -> whatever output is ready."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1, self.channels)
        self._in_frames += x.shape[0]
        if self._impl is None:
            self._out_frames += x.shape[0]
            return x
        if self._whole:
            out = self._run(x) if x.shape[0] else np.zeros((0, self.channels), np.float32)
            self._out_frames += out.shape[0]
            return out
        buf = np.concatenate([self._pending, x]) if self._pending.shape[0] else x
        n_blocks = buf.shape[0] // self._block
        outs = [self._run(buf[i * self._block : (i + 1) * self._block]) for i in range(n_blocks)]
        self._pending = buf[n_blocks * self._block :].copy()
        out = np.concatenate(outs) if outs else np.zeros((0, self.channels), np.float32)
        self._out_frames += out.shape[0]
        return out

    def process(self, chunk: AudioChunk) -> AudioChunk:
        if chunk.sample_rate_hz != self.in_rate_hz or chunk.channels != self.channels:
            raise AudioFormatError(
                f"resampler expects {self.in_rate_hz} Hz x{self.channels}, "
                f"got {chunk.sample_rate_hz} Hz x{chunk.channels}"
            )
        if self._impl is None:
            self._in_frames += chunk.frames
            self._out_frames += chunk.frames
            return AudioChunk(chunk.samples, self.out_rate_hz, self.channels)
        out = self.process_float(chunk.to_float32())
        return AudioChunk(float32_to_pcm16(out), self.out_rate_hz, self.channels)

    def flush(self) -> AudioChunk:
        """Emit the held-back tail so total output = round(total input x ratio)."""
        target = round(self._in_frames * self.ratio)
        missing = target - self._out_frames
        if self._impl is None or missing <= 0:
            return AudioChunk.silence(0, self.out_rate_hz, self.channels)
        outs: list[Float32Array] = []
        got = 0
        zeros = np.zeros((self._block, self.channels), np.float32)
        buf = np.concatenate([self._pending, zeros[: self._block - self._pending.shape[0]]])
        self._pending = np.zeros((0, self.channels), np.float32)
        # Bounded: the filter delay is a few ms, far below 1 s of zero blocks.
        for _ in range(int(1000 / BLOCK_MS)):
            y = self._run(buf)
            outs.append(y)
            got += y.shape[0]
            if got >= missing:
                break
            buf = zeros
        out = np.concatenate(outs)[:missing]
        self._out_frames += out.shape[0]
        return AudioChunk(float32_to_pcm16(out), self.out_rate_hz, self.channels)

    def reset(self) -> None:
        """Forget all state (e.g. after a barge-in flush); next output starts fresh."""
        self._pending = np.zeros((0, self.channels), np.float32)
        self._in_frames = self._out_frames = 0
        if self._impl is not None:
            self._impl.reset()


def live_resampler(in_rate_hz: int, out_rate_hz: int) -> StreamResampler:
    """For a live device stream (the microphone, the echo reference): the device's
    blocks fix the chunking, so each converts in one call, with LIVE_CONVERTER."""
    return StreamResampler(in_rate_hz, out_rate_hz, converter=LIVE_CONVERTER, block_ms=None)


class ToRate:
    """Mono audio at whatever rate it arrives -> `out_rate_hz`, one stream per input
    rate (a peer may change rates mid-call). Equal rates pass through untouched."""

    def __init__(self, out_rate_hz: int) -> None:
        self.out_rate_hz = out_rate_hz
        self._streams: dict[int, StreamResampler] = {}

    def process(self, chunk: AudioChunk) -> AudioChunk:
        mono = chunk.mono()
        rs = self._streams.get(mono.sample_rate_hz)
        if rs is None:
            rs = self._streams[mono.sample_rate_hz] = StreamResampler(
                mono.sample_rate_hz, self.out_rate_hz
            )
        return rs.process(mono)

    def flush(self) -> AudioChunk:
        """Every stream's held-back tail, then a fresh start (the next audio is new)."""
        tails = [rs.flush() for rs in self._streams.values()]
        self.reset()
        tails = [t for t in tails if t.frames]
        return AudioChunk.concat(tails) if tails else AudioChunk.silence(0, self.out_rate_hz)

    def reset(self) -> None:
        for rs in self._streams.values():
            rs.reset()


def resample_once(chunk: AudioChunk, out_rate_hz: int) -> AudioChunk:
    """Convert a whole chunk in one go (file decoding, tests), including the tail."""
    rs = StreamResampler(chunk.sample_rate_hz, out_rate_hz, chunk.channels)
    head = rs.process(chunk)
    tail = rs.flush()
    if tail.frames == 0:
        return head
    return AudioChunk.concat([head, tail])


# -- 2:1 after echo control ---------------------------------------------------------------
# An agent call's canceller runs at 16 kHz, WebRTC AEC3's own rate: given 8 kHz, the
# module converts to 16 kHz and back inside and returns a tone's onset 11.1 ms after it
# went in, against 8.1 ms at 16 kHz (bench/probe_uplink_budget.py). The way down to
# 8 kHz after it is this short linear-phase low-pass: 31 taps, 15 samples (0.94 ms) of
# delay, where libsamplerate's sinc_fastest holds back 2.38 ms for 16 -> 8 kHz
# (docs/devices.md#budget). Response (tests/test_resample.py): flat to 3 kHz, -1.6 dB at
# 3.4 kHz, -20 dB at 4.2 kHz, 55 dB down from 4.6 kHz: about the telephone channel's own
# mask (ITU-T G.712), which is all an 8 kHz mu-law call carries.
HALF_RATE_TAPS = 31
HALF_RATE_CUTOFF = 3750 / 16000  # of the input rate
HALF_RATE_KAISER_BETA = 4.5


def half_rate_taps() -> Float32Array:
    """The low-pass before dropping every other sample: a Kaiser-windowed sinc, unity
    gain at 0 Hz."""
    n = np.arange(HALF_RATE_TAPS) - (HALF_RATE_TAPS - 1) / 2
    fc = HALF_RATE_CUTOFF
    h = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(HALF_RATE_TAPS, HALF_RATE_KAISER_BETA)
    out: Float32Array = (h / h.sum()).astype(np.float32)
    return out


class HalfRate:
    """Streaming 2:1 decimation of int16 mono chunks through `half_rate_taps()`.

    Stateful: it keeps the last taps-1 input samples, so chunks of any length give the
    same output as one long chunk, each output sample `delay_s` late. Output sample k is
    input sample 2k filtered, so an odd-length chunk leaves its phase to the next."""

    def __init__(self, in_rate_hz: int) -> None:
        if in_rate_hz % 2:
            raise ValueError("2:1 decimation needs an even input rate")
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = in_rate_hz // 2
        self._h = half_rate_taps()
        self._hist = np.zeros(self._h.size - 1, np.float32)
        self._consumed = 0  # input samples taken so far: the phase of the next one
        self.delay_s = (self._h.size - 1) / 2 / in_rate_hz

    def process(self, samples: Int16Array) -> Int16Array:
        x = samples.astype(np.float32)
        buf = np.concatenate([self._hist, x])
        filtered = np.convolve(buf, self._h, mode="valid")  # one value per input sample
        y = filtered[self._consumed % 2 :: 2]
        self._consumed += x.size
        self._hist = buf[buf.size - self._hist.size :]
        # int16 in, int16 out: finite, so the NaN check is skipped.
        return float32_to_pcm16(y / 32768.0, finite=True)
