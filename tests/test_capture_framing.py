"""CaptureFramer: device blocks -> uplink frames, with their times and no wait for a
block more than the frame needs (docs/devices.md#capture)."""

from __future__ import annotations

import numpy as np
import pytest

from aivoco.audio.framing import CaptureFramer

T0 = 500.0
CASES = [(44100, 16000), (44100, 8000), (48000, 16000), (48000, 8000), (16000, 16000)]


def blocks(rate_hz: int, seconds: float, x: np.ndarray | None = None) -> list[np.ndarray]:
    n = rate_hz // 100  # the capture callback's 10 ms
    if x is None:
        rng = np.random.default_rng(0)
        x = (rng.standard_normal(round(rate_hz * seconds)) * 0.1).astype(np.float32)
    return [x[i : i + n].reshape(-1, 1) for i in range(0, x.shape[0] - n + 1, n)]


@pytest.mark.parametrize(("device_hz", "rate_hz"), CASES)
def test_a_frame_leaves_with_the_block_that_holds_its_last_sample(
    device_hz: int, rate_hz: int
) -> None:
    """20 ms frames from 10 ms blocks: one frame after every second block, none after the
    others. Cut from the converter's first output, its hold-back (a few ms) made every
    frame wait for the next block: 10 ms more uplink latency."""
    framer = CaptureFramer(device_hz, rate_hz, rate_hz // 50)
    counts = [len(framer.frames(b, T0 + k * 0.01)) for k, b in enumerate(blocks(device_hz, 2.0))]
    assert counts[1::2] == [1] * (len(counts) // 2)
    assert counts[0::2] == [0] * ((len(counts) + 1) // 2)


@pytest.mark.parametrize(("device_hz", "rate_hz"), CASES)
def test_frames_carry_the_time_of_their_first_sample(device_hz: int, rate_hz: int) -> None:
    """A click at T0 + 0.5 s is found in the frames where their times say it is."""
    x = np.zeros(device_hz, np.float32)
    x[device_hz // 2] = 1.0
    framer = CaptureFramer(device_hz, rate_hz, rate_hz // 50)
    frames = []
    for k, b in enumerate(blocks(device_hz, 1.0, x)):
        frames += framer.frames(b, T0 + k * 0.01)
    assert all(f.captured_at_s is not None for f in frames)
    loudest = max(frames, key=lambda f: int(np.abs(f.mono_samples()).max()))
    at = loudest.captured_at_s
    assert at is not None
    heard = at + int(np.argmax(np.abs(loudest.mono_samples()))) / rate_hz
    assert heard == pytest.approx(T0 + 0.5, abs=1.5 / rate_hz)
    starts = [f.captured_at_s for f in frames]
    assert np.allclose(np.diff(np.asarray(starts, dtype=float)), 0.02)


@pytest.mark.parametrize(
    ("device_hz", "rate_hz", "before_end_ms"),
    [(44100, 16000, 2.0), (48000, 16000, 2.0), (44100, 8000, 3.0), (48000, 8000, 3.0)],
)
def test_a_sound_near_the_frame_end_leaves_with_that_frame(
    device_hz: int, rate_hz: int, before_end_ms: float
) -> None:
    """What the converter holds back is the uplink's, every frame: a click this close to
    the end of a frame's last block leaves with it (the live converter holds back 1.2 ms
    at 16 kHz, 2.4 at 8 kHz; the file converter's 2.9 and 5.6 would send it a frame
    later, bench/probe_uplink_budget.py)."""
    x = np.zeros(device_hz, np.float32)
    end = device_hz * 40 // 100  # the end of block 40: a frame ends there
    x[end - round(before_end_ms * device_hz / 1000)] = 1.0
    framer = CaptureFramer(device_hz, rate_hz, rate_hz // 50)
    for k, b in enumerate(blocks(device_hz, 1.0, x)[:40]):
        out = framer.frames(b, T0 + k * 0.01)
    assert len(out) == 1
    assert int(np.abs(out[0].mono_samples()).max()) > 3000
