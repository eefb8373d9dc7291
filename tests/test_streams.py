"""The output latency ladder (pure: fed with counters) and the jitter buffer's cues (when
a reply's first sound is heard). The ladder on real devices: tests/test_device_audio.py.

A rate of 1000 Hz makes one frame one millisecond, so the numbers below read as ms.
"""

from __future__ import annotations

import numpy as np

from aivoco.audio.jitter import JitterBuffer
from aivoco.audio.streams import OUTPUT_STEPS, Ladder, OutputStep, Verdict

RATE = 1000
STEPS = (OutputStep(20, 10), OutputStep(40, 20), OutputStep(100, 10))


def ladder() -> Ladder:
    lad = Ladder(STEPS, settle_ms=250, step_deadline_s=1.5, open_deadline_s=4.0)
    lad.opened(0.0, 0.0, 0)
    return lad


# -- the ladder ------------------------------------------------------------------------
def test_a_clean_stream_is_accepted_at_the_lowest_step_after_settling() -> None:
    lad = ladder()
    assert lad.observe(0.1, 100.0, 0) is Verdict.WAIT
    assert lad.observe(0.25, 250.0, 0) is Verdict.ACCEPT
    assert lad.settled and lad.step == STEPS[0]


def test_an_early_burst_of_underflows_delays_acceptance_but_keeps_the_step() -> None:
    lad = ladder()
    assert lad.observe(0.3, 200.0, 3) is Verdict.WAIT  # the burst a new stream shows
    assert lad.observe(0.5, 400.0, 3) is Verdict.WAIT  # clean since 200 ms: not yet 250
    assert lad.observe(0.6, 450.0, 3) is Verdict.ACCEPT
    assert lad.step == STEPS[0]


def test_a_step_still_underflowing_at_its_deadline_is_left_for_the_next() -> None:
    lad = ladder()
    for k in range(15):
        assert lad.observe(0.1 * k, 100.0 * k, k + 1) is Verdict.WAIT
    assert lad.observe(1.5, 1500.0, 20) is Verdict.STEP_UP
    assert lad.step == STEPS[1] and not lad.settled
    assert lad.history == [(STEPS[0], "still underflowing 1.5 s after opening")]
    lad.opened(1.5, 1500.0, 20)
    assert lad.observe(1.8, 1800.0, 20) is Verdict.ACCEPT
    assert lad.step == STEPS[1]


def test_an_underflow_during_the_call_moves_one_step_up_and_the_top_is_kept() -> None:
    lad = ladder()
    lad.observe(0.3, 300.0, 0)
    assert lad.observe(5.0, 5000.0, 0) is Verdict.WAIT
    assert lad.observe(6.0, 6000.0, 1) is Verdict.STEP_UP
    assert lad.step == STEPS[1]
    lad.opened(6.0, 6000.0, 1)
    lad.observe(6.3, 6300.0, 1)
    assert lad.observe(7.0, 7000.0, 2) is Verdict.STEP_UP
    assert lad.at_top
    lad.opened(7.0, 7000.0, 2)
    lad.observe(7.3, 7300.0, 2)
    assert lad.observe(8.0, 8000.0, 3) is Verdict.WAIT  # nowhere higher to go
    assert lad.step == STEPS[-1]


def test_a_stream_whose_callbacks_barely_run_is_accepted_at_the_open_deadline() -> None:
    lad = ladder()
    assert lad.observe(3.9, 50.0, 0) is Verdict.WAIT
    assert lad.observe(4.0, 60.0, 0) is Verdict.ACCEPT
    assert lad.step == STEPS[0]


# -- back down ---------------------------------------------------------------------------
def live_at_second_step() -> Ladder:
    """Accepted at the first step, an underflow at 6 s, the second step settled."""
    lad = Ladder(STEPS, settle_ms=250, step_deadline_s=1.5, open_deadline_s=4.0, retry_after_s=20)
    lad.opened(0.0, 0.0, 0)
    assert lad.observe(0.3, 300.0, 0) is Verdict.ACCEPT
    assert lad.observe(6.0, 6000.0, 1) is Verdict.STEP_UP
    lad.opened(6.0, 6000.0, 1)
    assert lad.observe(6.3, 6300.0, 1) is Verdict.ACCEPT
    return lad


def test_a_step_left_for_an_underflow_during_the_call_is_tried_again_after_the_wait() -> None:
    lad = live_at_second_step()
    assert lad.retry_in_s(6.3) == 19.7
    assert lad.retry_due(25.9) is None
    assert lad.retry_due(26.0) == STEPS[0]
    trial = lad.trial(26.0, 0.0, 0)  # the second stream's own counters
    assert trial.step == STEPS[0]
    assert trial.observe(26.1, 100.0, 0) is Verdict.WAIT
    assert trial.observe(26.3, 260.0, 0) is Verdict.ACCEPT
    assert trial.observe(27.0, 900.0, 0) is Verdict.ACCEPT  # waiting for a quiet speaker
    lad.came_down(27.0, 1)
    assert lad.step == STEPS[0] and lad.settled
    assert lad.history[-1] == (STEPS[1], "no underflow for 20 s: back down")
    assert lad.observe(28.0, 28000.0, 1) is Verdict.WAIT  # judged on the counter given
    assert lad.retry_due(60.0) is None  # at the lowest step played: nothing below
    assert lad.retry_in_s(60.0) is None  # so the ladder's thread sleeps until an underflow


def test_a_trial_that_does_not_settle_or_underflows_before_taking_over_fails() -> None:
    lad = live_at_second_step()
    trial = lad.trial(26.0, 0.0, 0)
    for k in range(1, 40):  # underflowing every 100 ms
        assert trial.observe(26.0 + k * 0.1, k * 100.0, k) is Verdict.WAIT
    assert trial.observe(30.0, 4000.0, 40) is Verdict.STEP_UP  # the open deadline
    again = lad.trial(50.0, 0.0, 0)
    assert again.observe(50.3, 300.0, 0) is Verdict.ACCEPT
    assert again.observe(51.0, 1000.0, 1) is Verdict.STEP_UP  # not clean while it waited


def test_each_failed_trial_doubles_the_wait_and_trials_are_limited() -> None:
    lad = live_at_second_step()
    t = 26.0
    waits = []
    for _ in range(3):
        assert lad.retry_due(t) == STEPS[0]
        lad.trial(t, 0.0, 0)
        lad.trial_failed(t + 4.0)
        wait = lad.retry_in_s(t + 4.0)
        assert wait is not None
        waits.append(wait)
        t += 4.0 + wait
    assert waits == [40.0, 80.0, 160.0]
    assert lad.retry_due(t) == STEPS[0]
    lad.trial(t, 0.0, 0)
    lad.trial_failed(t + 4.0)
    assert lad.retry_due(t + 1000) is None and lad.retry_in_s(t) is None  # 4: no more
    assert lad.step == STEPS[1]


def test_coming_down_and_underflowing_again_soon_doubles_the_wait() -> None:
    lad = live_at_second_step()
    lad.trial(26.0, 0.0, 0)
    lad.came_down(27.0, 1)
    assert lad.observe(30.0, 30000.0, 2) is Verdict.STEP_UP  # 3 s after coming down
    assert lad.retry_in_s(30.0) == 40.0


def test_a_step_that_never_settled_is_not_tried_again() -> None:
    lad = ladder()
    for k in range(15):
        lad.observe(0.1 * k, 100.0 * k, k + 1)
    assert lad.observe(1.5, 1500.0, 20) is Verdict.STEP_UP  # the first step never settled
    lad.opened(1.5, 1500.0, 20)
    assert lad.observe(1.8, 1800.0, 20) is Verdict.ACCEPT
    assert lad.observe(5.0, 5000.0, 21) is Verdict.STEP_UP  # the second, during the call
    lad.opened(5.0, 5000.0, 21)
    assert lad.observe(5.3, 5300.0, 21) is Verdict.ACCEPT
    assert lad.retry_due(100.0) == STEPS[1]  # back to the second: it had played
    lad.trial(100.0, 0.0, 0)
    lad.came_down(101.0, 21)
    assert lad.retry_due(1000.0) is None  # never to the first
    assert lad.retry_in_s(1000.0) is None


def test_lowering_the_hold_keeps_what_the_network_added() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=40)
    jb.raise_prefill(60)  # a step up
    jb.lower_prefill(60, 40)  # and back down
    assert jb.stats().prefill_ms == 40
    jb.raise_prefill(60)
    jb.raise_prefill(90)  # more, for the network's jitter
    jb.lower_prefill(60, 40)
    assert jb.stats().prefill_ms == 70


def test_the_steps_rise_and_end_at_the_setting_every_earlier_release_used() -> None:
    latencies = [s.latency_ms for s in OUTPUT_STEPS]
    assert latencies == sorted(latencies)
    assert OutputStep(100, 10, hold_ms=60) in OUTPUT_STEPS


def test_raising_the_hold_never_lowers_it() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=40)
    jb.raise_prefill(60)
    assert jb.stats().prefill_ms == 60
    jb.raise_prefill(20)
    assert jb.stats().prefill_ms == 60


# -- cues: when the first sound of a reply is heard ----------------------------------------
def test_a_cue_resolves_with_the_time_its_frame_reaches_the_speaker() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=15)
    jb.write(np.zeros((7, 1), np.float32))  # an earlier reply's tail: silence-valued
    jb.cue(1)
    jb.write(np.ones((40, 1), np.float32))
    first: float | None = None
    for k in range(8):
        out = np.full((10, 1), np.nan, np.float32)
        at = 100.0 + k * 0.010  # each block's DAC time
        jb.fill(out, at)
        hits = np.flatnonzero(out[:, 0] == 1.0)
        if first is None and hits.size:
            first = at + hits[0] / RATE
    assert first is not None
    [(key, heard)] = jb.pop_cues()
    assert key == 1 and heard is not None
    assert abs(heard - first) < 1e-9
    assert jb.pop_cues() == []  # popped once


def test_a_cue_on_audio_cleared_before_it_played_resolves_as_never_heard() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10)
    jb.write(np.ones((100, 1), np.float32))
    jb.cue(7)
    jb.write(np.ones((50, 1), np.float32))
    jb.fill(np.zeros((10, 1), np.float32), 1.0)
    assert jb.pop_cues() == []
    jb.clear()
    assert jb.pop_cues() == [(7, None)]


def test_a_cue_on_audio_dropped_by_an_overflow_resolves_as_never_heard() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, capacity_ms=50)
    jb.cue(3)
    jb.write(np.ones((20, 1), np.float32))
    jb.write(np.ones((60, 1), np.float32))  # the cued frame is among the oldest dropped
    jb.fill(np.zeros((10, 1), np.float32), 1.0)
    assert jb.pop_cues() == [(3, None)]
