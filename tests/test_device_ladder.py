"""The output latency ladder on a real device (PortAudio -> ALSA pulse plugin -> private
PulseAudio): an underflow during the call, caused for real by starving the callback.

The output callback is Python. What underflows a low-latency stream is a thread of our
own process holding the GIL (docs/devices.md#latency), so that is how the test makes
one: it holds the GIL for longer than the device buffer lasts. The pure ladder is in
tests/test_streams.py.
"""

from __future__ import annotations

import sys
import time

import pytest
from pulse import PulseServer
from test_device_audio import play_tone, until_reached

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.engine import DevicePlayer
from aivoco.audio.streams import OUTPUT_STEPS, OutputStep

pytestmark = pytest.mark.device

DEADLINE_S = 20.0
STARVE_S = 0.4  # longer than the largest buffer short of the top step (200 ms)
RETRY_S = 1.0  # clean play before a step is tried again (20 s in a call)
BUSY_S = 3.0  # agent audio after the step up: longer than the wait and the trial together


def hold_the_gil(seconds: float) -> None:
    """Keep the interpreter for `seconds`: no other Python thread (the output callback
    included) runs meanwhile."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds * 4)
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize(
    "steps", [OUTPUT_STEPS, OUTPUT_STEPS[1:]], ids=["the steps in use", "from 100 ms"]
)
def test_an_underflow_during_the_call_steps_up_and_the_figure_follows(
    pulse: PulseServer, steps: tuple[OutputStep, ...]
) -> None:
    # From 100 ms the next step has 20 ms blocks: settling takes fewer callbacks than
    # the figure's window, which then mixed in the old stream's (129 ms read at 200),
    # and a new 200 ms stream measures 130-140 ms until it has filled.
    player: DevicePlayer[str] = DevicePlayer("pulse", rate_hz=24000, steps=steps)
    try:
        assert player.wait_settled(DEADLINE_S), "the output latency ladder did not settle"
        player.start()
        # On a busy machine the ladder may have left the first step while settling.
        first = player.output_step
        assert first != steps[-1], "settled at the top step: nothing to step up to"
        measured_first = player.output_latency_ms
        assert measured_first is not None
        hold_the_gil(STARVE_S)
        deadline = time.monotonic() + DEADLINE_S
        while player.output_step == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert player.device_underflows >= 1
        step = player.output_step
        assert step.latency_ms > first.latency_ms, player.ladder.history
        assert step == steps[steps.index(first) + 1]
        assert player.ladder.history[-1] == (first, "underflow during the call")
        assert player.wait_settled(DEADLINE_S)
        # The figure shown (stats, as the view and the summary read it) is the new
        # stream's, measured, and follows it as it fills.
        measured = player.stats().output_latency_ms
        while not (measured and measured >= step.latency_ms * 0.8) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
            measured = player.stats().output_latency_ms
        assert measured is not None and measured > measured_first
        assert measured >= step.latency_ms * 0.8
        # A step up raises the jitter hold to the step's.
        assert player.stats().jitter.prefill_ms >= step.hold_ms
    finally:
        player.close()


def test_a_step_left_for_an_underflow_comes_back_when_the_speaker_is_quiet(
    pulse: PulseServer,
) -> None:
    """Make before break (docs/devices.md#step-down): after `retry_after_s` without an
    underflow the step below is tried on a second stream; while agent audio plays the
    stream in use keeps it, and once the speaker is quiet the new one takes over."""
    steps = OUTPUT_STEPS[1:]  # 100 then 200 ms: settles at 100 on any machine this runs on
    player: DevicePlayer[str] = DevicePlayer(
        "pulse", rate_hz=24000, steps=steps, retry_after_s=RETRY_S
    )
    try:
        assert player.wait_settled(DEADLINE_S), "the output latency ladder did not settle"
        player.start()
        assert player.output_step == steps[0], player.ladder.history
        hold_the_gil(STARVE_S)
        deadline = time.monotonic() + DEADLINE_S
        while player.output_step == steps[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert player.output_step == steps[1], player.ladder.history
        # Agent audio for longer than the wait and a trial's settling: no take-over.
        taps: list[AudioChunk] = []
        play_tone(player, BUSY_S, mark="busy")
        assert until_reached(player, taps, time.monotonic() + DEADLINE_S) == ["busy"]
        assert player.output_step == steps[1], player.ladder.history
        while player.output_step == steps[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert player.output_step == steps[0], player.ladder.history
        assert player.ladder.history[-1] == (steps[1], f"no underflow for {RETRY_S:g} s: back down")
        assert player.stats().jitter.prefill_ms == steps[0].hold_ms
        # The new stream plays, and the figure shown is its own.
        play_tone(player, 0.3, mark="after")
        assert until_reached(player, taps, time.monotonic() + DEADLINE_S) == ["after"]
        measured = player.stats().output_latency_ms
        assert measured is not None and measured < steps[1].latency_ms * 0.8
    finally:
        player.close()
