"""StreamResampler: chunking-independent output, exact lengths, tone fidelity, latency."""

from __future__ import annotations

import numpy as np
import pytest
from tones import as_float, dominant_freq, level_dbfs, sine, sine_chunk, sine_dbfs, steady

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.resample import BLOCK_MS, HalfRate, StreamResampler, resample_once
from aivoco.errors import AudioFormatError

DEVICE_RATES = (48000, 44100)
PROTOCOL_RATES = (8000, 16000, 24000)
PAIRS = [(d, p) for d in DEVICE_RATES for p in PROTOCOL_RATES] + [
    (p, d) for d in DEVICE_RATES for p in PROTOCOL_RATES
]
PAIR_IDS = [f"{a}-{b}" for a, b in PAIRS]

# Worst audio held back after a 20 ms chunk, measured for the pairs above with the
# default sinc_medium converter: 1.9-5.9 ms for most, 8.1 ms for 44100 -> 8000 (filter
# delay plus up to one BLOCK_MS block waiting to fill). The bound leaves ~2 ms margin;
# exceeding it means a converter or block-size change made conversations laggier.
MAX_HELD_BACK_MS = 10.0


def noisy_tone(rate_hz: int, seconds: float, seed: int = 0) -> AudioChunk:
    """A tone plus noise: every sample differs, so any misalignment shows."""
    rng = np.random.default_rng(seed)
    x = sine(700, rate_hz, seconds, 0.4) + rng.normal(0, 0.1, round(rate_hz * seconds))
    return AudioChunk.from_float32(np.clip(x, -1, 1), rate_hz)


def random_splits(n: int, rng: np.random.Generator) -> list[int]:
    """Chunk sizes summing to n: many single samples, odd sizes and whole 20 ms blocks."""
    sizes: list[int] = []
    choices = [1, 1, 1, 2, 3, 7, 13, 64, 159, 160, 441, 882, 960, 1999]
    while sum(sizes) < n:
        sizes.append(int(rng.choice(choices)))
    sizes[-1] -= sum(sizes) - n
    return [s for s in sizes if s > 0]


def run_chunked(rs: StreamResampler, chunk: AudioChunk, sizes: list[int]) -> AudioChunk:
    outs, pos = [], 0
    for size in sizes:
        part = AudioChunk(chunk.samples[pos : pos + size].copy(), chunk.sample_rate_hz)
        outs.append(rs.process(part))
        pos += size
    assert pos == chunk.frames
    outs.append(rs.flush())
    return AudioChunk.concat(outs)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_chunked_output_is_bit_identical_to_one_shot(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(in_rate + out_rate)
    # An odd length so round(n * ratio) is not a whole multiple of anything.
    x = noisy_tone(in_rate, 0.6)
    x = AudioChunk(x.samples[:-37].copy(), in_rate)
    once = resample_once(x, out_rate)
    for _ in range(3):
        sizes = random_splits(x.frames, rng)
        chunked = run_chunked(StreamResampler(in_rate, out_rate), x, sizes)
        assert chunked.sample_rate_hz == out_rate
        np.testing.assert_array_equal(chunked.samples, once.samples)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("n_in", [1, 5, 161, 4410, 24001])
def test_output_length_is_exactly_rounded_ratio(in_rate: int, out_rate: int, n_in: int) -> None:
    x = AudioChunk(np.full(n_in, 1000, np.int16), in_rate)
    expected = round(n_in * out_rate / in_rate)
    assert resample_once(x, out_rate).frames == expected
    rs = StreamResampler(in_rate, out_rate)
    total = rs.process(x).frames + rs.flush().frames
    assert total == expected
    # A second flush adds nothing: the tail was emitted once.
    assert rs.flush().frames == 0


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_1khz_tone_keeps_frequency_level_and_timing(in_rate: int, out_rate: int) -> None:
    amplitude = 0.5
    y = resample_once(sine_chunk(1000, in_rate, 1.0, amplitude), out_rate)
    assert y.frames == out_rate
    body = steady(y)
    assert dominant_freq(body, out_rate) == pytest.approx(1000, abs=0.5)
    assert level_dbfs(body) == pytest.approx(sine_dbfs(amplitude), abs=0.5)
    # No time shift either: the output matches the ideal tone sampled at the new rate
    # (a one-sample shift would differ by up to 0.5 x 2 sin(pi x 1000 / rate) >= 0.19).
    ideal = sine(1000, out_rate, 1.0, amplitude)
    middle = slice(out_rate // 10, out_rate - out_rate // 10)
    assert np.abs(as_float(y)[middle] - ideal[middle]).max() < 1e-3


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=PAIR_IDS)
def test_held_back_audio_stays_below_bound(in_rate: int, out_rate: int) -> None:
    """After every 20 ms chunk, (input fed - output emitted) in seconds stays small."""
    x = noisy_tone(in_rate, 2.0)
    rs = StreamResampler(in_rate, out_rate)
    step = in_rate * 20 // 1000
    fed = emitted = 0
    worst_ms = 0.0
    for pos in range(0, x.frames, step):
        part = AudioChunk(x.samples[pos : pos + step].copy(), in_rate)
        fed += part.frames
        emitted += rs.process(part).frames
        held_ms = (fed / in_rate - emitted / out_rate) * 1000
        assert held_ms >= -1000 / out_rate  # never ahead by more than rounding
        worst_ms = max(worst_ms, held_ms)
    assert worst_ms < MAX_HELD_BACK_MS
    # Some delay is inherent to a sinc filter; zero would mean the converter was bypassed.
    assert worst_ms > 0.5


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
def test_equal_rates_pass_through_untouched(rate: int) -> None:
    rs = StreamResampler(rate, rate)
    assert rs.passthrough
    x = noisy_tone(rate, 0.1)
    y = rs.process(x)
    assert y.sample_rate_hz == rate
    np.testing.assert_array_equal(y.samples, x.samples)
    assert rs.flush().frames == 0
    np.testing.assert_array_equal(resample_once(x, rate).samples, x.samples)


def test_converting_rates_is_not_passthrough() -> None:
    assert not StreamResampler(48000, 16000).passthrough


def test_reset_forgets_previous_audio() -> None:
    a = noisy_tone(48000, 0.3, seed=1)
    b = noisy_tone(48000, 0.3, seed=2)
    rs = StreamResampler(48000, 16000)
    rs.process(a)  # leaves filter state and a partial block behind
    rs.process(AudioChunk(a.samples[:17].copy(), 48000))
    rs.reset()
    after = AudioChunk.concat([rs.process(b), rs.flush()])
    np.testing.assert_array_equal(after.samples, resample_once(b, 16000).samples)


def test_without_reset_previous_audio_leaks_into_the_next() -> None:
    # The counterpart of the test above: it shows that state really is carried, so the
    # reset test is not passing vacuously.
    a = noisy_tone(48000, 0.3, seed=1)
    b = noisy_tone(48000, 0.3, seed=2)
    rs = StreamResampler(48000, 16000)
    rs.process(a)
    rs.flush()
    after = AudioChunk.concat([rs.process(b), rs.flush()])
    assert not np.array_equal(after.samples, resample_once(b, 16000).samples)


def test_wrong_input_format_is_rejected() -> None:
    rs = StreamResampler(48000, 16000)
    with pytest.raises(AudioFormatError, match="48000"):
        rs.process(AudioChunk.silence(10, 44100))
    with pytest.raises(AudioFormatError):
        rs.process(AudioChunk.silence(10, 48000, channels=2))


@pytest.mark.parametrize(("in_rate", "out_rate"), [(0, 16000), (16000, 0), (-1, 8000)])
def test_rates_must_be_positive(in_rate: int, out_rate: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(in_rate, out_rate)


def test_stereo_streams_keep_channels_apart() -> None:
    left = sine(1000, 48000, 0.5, 0.5)
    right = sine(3000, 48000, 0.5, 0.25)
    x = AudioChunk.from_float32(np.stack([left, right], axis=1), 48000, channels=2)
    y = resample_once(x, 16000)
    assert y.channels == 2 and y.frames == 8000
    lf = y.samples[:, 0]
    rt = y.samples[:, 1]
    assert dominant_freq(steady(lf), 16000) == pytest.approx(1000, abs=0.5)
    assert dominant_freq(steady(rt), 16000) == pytest.approx(3000, abs=0.5)
    assert level_dbfs(steady(rt)) == pytest.approx(sine_dbfs(0.25), abs=0.5)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(44100, 16000), (48000, 8000), (24000, 16000)])
def test_a_live_stream_converts_each_block_at_once(in_rate: int, out_rate: int) -> None:
    """`block_ms=None` (the microphone, the echo reference): a device block converts in
    one call, so a block shorter than the fixed 2.5 ms ones is not held back to wait for
    more; the alignment (output j = input j / ratio) and the held-back audio stay those
    of fixed blocks, and the tone comes through the same."""
    x = noisy_tone(in_rate, 1.0)
    whole = StreamResampler(in_rate, out_rate, block_ms=None)
    fixed = StreamResampler(in_rate, out_rate)
    block = in_rate * 10 // 1000  # the capture callback's 10 ms
    ys, zs = [], []
    for pos in range(0, x.frames, block):
        part = AudioChunk(x.samples[pos : pos + block].copy(), in_rate)
        ys.append(whole.process(part))
        zs.append(fixed.process(part))
    y, z = AudioChunk.concat(ys), AudioChunk.concat(zs)
    assert abs(y.frames - z.frames) <= round(out_rate * 0.0025) + 1
    n = min(y.frames, z.frames)
    diff = np.abs(as_float(y)[:n] - as_float(z)[:n])
    assert float(diff.max()) < 2e-3  # the same signal, the same alignment
    # After whole fixed blocks, a block shorter than one of them: out at once, not held.
    whole = StreamResampler(in_rate, out_rate, block_ms=None)
    fixed = StreamResampler(in_rate, out_rate)
    primer = AudioChunk(x.samples[: round(in_rate * BLOCK_MS / 1000) * 100].copy(), in_rate)
    whole.process(primer)
    fixed.process(primer)
    short = AudioChunk(x.samples[: in_rate // 1000].copy(), in_rate)  # 1 ms
    assert fixed.process(short).frames == 0
    assert whole.process(short).frames == pytest.approx(out_rate // 1000, abs=1)


# -- HalfRate: an agent call's way down to 8 kHz after echo control -------------------------
def _through_half_rate(x: np.ndarray, chunk: int) -> np.ndarray:
    down = HalfRate(16000)
    return np.concatenate([down.process(x[i : i + chunk]) for i in range(0, x.size, chunk)])


def _tone_db(freq_hz: float) -> float:
    """A tone through the decimator in 20 ms chunks, its level against the input's."""
    t = np.arange(16000) / 16000
    x = np.round(16000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)
    y = _through_half_rate(x, 320)[2000:].astype(np.float64)  # past the start-up
    gain = np.sqrt(np.mean(y**2)) / (16000 / np.sqrt(2))
    return float(20 * np.log10(max(gain, 1e-9)))


def test_half_rate_passes_the_telephone_band_and_stops_what_would_fold_into_it() -> None:
    assert abs(_tone_db(300)) < 0.1 and abs(_tone_db(1000)) < 0.1 and abs(_tone_db(3000)) < 0.3
    assert -2.0 < _tone_db(3400) < -1.0
    assert _tone_db(4200) < -15.0  # would fold to 3.8 kHz, above the telephone band
    for freq in (4600, 5600, 7000):  # would fold to 3.4, 2.4 and 1 kHz
        assert _tone_db(freq) < -50.0, freq


def test_half_rate_streams_like_one_chunk_whatever_the_chunking() -> None:
    x = (np.random.default_rng(3).standard_normal(4001) * 5000).astype(np.int16)
    whole = HalfRate(16000).process(x)
    for chunk in (1, 7, 160, 320, 333):
        assert np.array_equal(_through_half_rate(x, chunk), whole), chunk
    assert whole.size == 2001  # output k is input 2k


def test_half_rate_delays_by_half_its_length() -> None:
    down = HalfRate(16000)
    impulse = np.zeros(320, np.int16)
    impulse[100] = 20000
    y = down.process(impulse)
    assert down.delay_s == pytest.approx(15 / 16000)  # 0.94 ms: sinc_fastest holds 2.38
    # The peak lands at input sample 115 (100 + 15), output sample 57.5: 57 and 58 tie.
    assert int(np.argmax(y)) in (57, 58)
    assert y.dtype == np.int16


def test_half_rate_needs_an_even_rate() -> None:
    with pytest.raises(ValueError, match="even"):
        HalfRate(11025)
