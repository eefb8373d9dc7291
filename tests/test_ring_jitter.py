"""SampleRing and JitterBuffer, driven by a virtual clock (explicit fill() calls).

A rate of 1000 Hz makes one frame one millisecond, so the numbers below read as ms.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from aivoco.audio.chunk import Float32Array
from aivoco.audio.jitter import JitterBuffer
from aivoco.audio.ring import SampleRing

RATE = 1000  # 1 frame = 1 ms


def ramp(start: int, n: int, channels: int = 1) -> Float32Array:
    """Distinct values start, start+1, ... so every frame can be traced."""
    x = np.arange(start, start + n, dtype=np.float32)
    return np.repeat(x[:, None], channels, axis=1)


def tick(jb: JitterBuffer[str], ms: int) -> Float32Array:
    out = np.full((ms, 1), np.nan, np.float32)  # NaN: any frame fill() skips shows up
    jb.fill(out)
    return out[:, 0]


def run(jb: JitterBuffer[str], ms: int, step: int = 10) -> Float32Array:
    return np.concatenate([tick(jb, step) for _ in range(ms // step)])


# -- SampleRing ------------------------------------------------------------------------
def test_ring_fifo_order_across_wraparound() -> None:
    ring = SampleRing(10)
    got: list[float] = []
    nxt = 0
    # Writes of 3 and reads of 4 walk the start index around the buffer many times.
    for _ in range(20):
        ring.write(ramp(nxt, 3))
        nxt += 3
        got.extend(ring.read(4)[:, 0].tolist())
    got.extend(ring.read()[:, 0].tolist())
    assert got == list(range(nxt))
    assert ring.dropped_frames == 0
    assert ring.available == 0


def test_ring_write_spanning_the_end() -> None:
    ring = SampleRing(8)
    ring.write(ramp(0, 6))
    assert ring.read(5)[:, 0].tolist() == [0, 1, 2, 3, 4]
    ring.write(ramp(6, 7))  # 1 left + 7 new = 8: the write wraps past index 7
    assert ring.available == 8
    assert ring.read()[:, 0].tolist() == list(range(5, 13))


def test_ring_overflow_drops_oldest_and_counts() -> None:
    ring = SampleRing(5)
    assert ring.write(ramp(0, 4)) == 0
    assert ring.write(ramp(4, 3)) == 2  # 7 frames into 5 slots: 0 and 1 go
    assert ring.dropped_frames == 2
    assert ring.read()[:, 0].tolist() == [2, 3, 4, 5, 6]


def test_ring_write_larger_than_capacity_keeps_newest() -> None:
    ring = SampleRing(4)
    ring.write(ramp(0, 2))
    assert ring.write(ramp(100, 10)) == 2 + 6
    assert ring.dropped_frames == 8
    assert ring.read()[:, 0].tolist() == [106, 107, 108, 109]


def test_ring_read_into_partial() -> None:
    ring = SampleRing(8, channels=2)
    ring.write(ramp(0, 3, channels=2))
    out = np.full((5, 2), -1.0, np.float32)
    assert ring.read_into(out) == 3
    assert out[:3, 0].tolist() == [0, 1, 2] and out[:3, 1].tolist() == [0, 1, 2]
    assert out[3:].tolist() == [[-1, -1], [-1, -1]]  # the rest is left for the caller
    assert ring.read_into(out) == 0


def test_ring_read_into_across_wrap() -> None:
    ring = SampleRing(4)
    ring.write(ramp(0, 3))
    ring.read(3)
    ring.write(ramp(3, 4))  # occupies slots 3, 0, 1, 2
    out = np.zeros((4, 1), np.float32)
    assert ring.read_into(out) == 4
    assert out[:, 0].tolist() == [3, 4, 5, 6]


def test_ring_clear_and_validation() -> None:
    ring = SampleRing(4)
    ring.write(ramp(0, 3))
    assert ring.clear() == 3
    assert ring.available == 0
    assert ring.read().shape == (0, 1)
    with pytest.raises(ValueError):
        SampleRing(0)


def test_ring_concurrent_writer_and_reader_lose_nothing() -> None:
    ring = SampleRing(64)
    total = 5000
    got: list[Float32Array] = []

    def writer() -> None:
        for start in range(0, total, 7):
            while ring.available > 64 - 7:  # stay under capacity: no drops expected
                time.sleep(0)  # yield the GIL to the reader
            ring.write(ramp(start, min(7, total - start)))

    t = threading.Thread(target=writer)
    t.start()
    n = 0
    while n < total:
        part = ring.read(5)
        if part.shape[0] == 0:
            time.sleep(0)
        got.append(part)
        n += part.shape[0]
    t.join(timeout=10)
    assert np.concatenate(got)[:, 0].tolist() == list(range(total))
    assert ring.dropped_frames == 0


# -- JitterBuffer: pre-fill ------------------------------------------------------------
def test_first_chunk_waits_the_hold_from_its_arrival() -> None:
    # A 50 ms chunk is not enough to start: a peer pacing such chunks in real time
    # delivers the next one just as it runs out. It plays once it has waited the hold.
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=60)
    jb.write(ramp(1, 50))
    jb.write(ramp(51, 10))  # 60 ms buffered, but not more than a chunk plus the hold
    assert not run(jb, 50).any() and not jb.stats().playing
    assert tick(jb, 10).tolist() == list(range(1, 11))  # 60 ms after it arrived
    assert jb.stats().playing and jb.stats().hold_ms == 50  # it played from that block


def test_a_peer_ahead_of_real_time_needs_no_hold() -> None:
    # More than a chunk plus the hold buffered: the surplus covers any lateness.
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=60)
    jb.write(ramp(1, 50))
    jb.write(ramp(51, 60))  # 110 ms: a 60 ms chunk + 60 ms hold is not reached yet
    assert not tick(jb, 10).any()
    jb.write(ramp(111, 20))
    assert tick(jb, 10).tolist() == list(range(1, 11))


def test_hold_learns_the_lateness_of_a_real_time_peer() -> None:
    # 100 ms chunks paced in real time, one of them 70 ms late: the buffer runs dry
    # once (60 ms hold), and from then on holds enough for that lateness + one block.
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=60, max_prefill_ms=300)
    for k in range(6):
        if k != 3:
            jb.write(ramp(1, 100))
        run(jb, 100 if k != 2 else 170)
        if k == 2:
            jb.write(ramp(1, 100))  # chunk 3, 70 ms late
    assert jb.stats().underruns == 1
    assert jb.stats().prefill_ms >= 70 + 10


def test_short_tail_starts_after_waiting_prefill() -> None:
    # 20 ms that will never grow to 60 ms: it plays once it has waited 60 ms of clock.
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=60)
    tick(jb, 10)  # time passing with nothing buffered does not count
    jb.write(ramp(1, 20))
    waited = run(jb, 50)
    assert not waited.any()
    assert tick(jb, 10).tolist() == list(range(1, 11))


def test_a_real_time_peer_sending_100ms_chunks_never_runs_dry() -> None:
    """The emulator's pattern: 100 ms chunks, chunk k leaving at k x 100 ms, arriving up
    to 20 ms late. A 60 ms buffered threshold was met by the first chunk alone, so each
    late chunk was a gap (1-3 per call); held 60 ms from its arrival, none is."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=60)
        arrivals = [k * 100 + int(rng.choice([0, 10, 20])) for k in range(30)]
        arrivals[0] = 0
        chunk = 0
        for t in range(0, 3400, 10):
            while chunk < len(arrivals) and arrivals[chunk] <= t:
                jb.write(ramp(chunk * 100, 100))
                chunk += 1
            tick(jb, 10)
        s = jb.stats()
        assert s.underruns == 0 and s.played_ms == 3000
        assert s.hold_ms <= 60  # the latency it costs


def test_prefill_applies_again_after_running_dry() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=30, prefill_step_ms=0)
    jb.write(ramp(1, 30))
    run(jb, 60)  # waits 30, plays 30
    assert not jb.stats().playing
    jb.write(ramp(100, 20))
    assert not tick(jb, 10).any()  # a new spurt waits the hold again
    jb.write(ramp(120, 10))
    assert not tick(jb, 10).any()
    assert tick(jb, 10).tolist() == list(range(100, 110))


# -- JitterBuffer: underrun vs drain ---------------------------------------------------
def test_gap_shorter_than_stall_gap_is_an_underrun() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, stall_gap_ms=250)
    jb.write(ramp(1, 20))
    run(jb, 20)
    out = tick(jb, 10)  # runs dry inside this block
    assert not out.any()
    run(jb, 100)
    jb.write(ramp(1, 20))
    s = jb.stats()
    assert s.underruns == 1
    assert s.drains == 1  # every dry-out is a drain; the resumption makes it an underrun


def test_each_underrun_raises_the_prefill_up_to_its_cap() -> None:
    jb: JitterBuffer[str] = JitterBuffer(
        RATE, prefill_ms=20, prefill_step_ms=20, max_prefill_ms=50, stall_gap_ms=250
    )
    assert jb.stats().prefill_ms == 20
    for expected in (40, 50, 50):  # capped at 50
        run(jb, 400)  # a long gap first: the end of a turn, not a stall
        jb.write(ramp(1, 60))
        run(jb, 120)  # waits the pre-fill, plays out and runs dry
        jb.write(ramp(1, 1))  # resumes within the stall gap: an underrun
        assert jb.stats().prefill_ms == expected
        run(jb, 100)  # the 1 ms tail plays after waiting the pre-fill time
    assert jb.stats().underruns == 3
    # A long gap (end of a turn) is not a stall and leaves the pre-fill alone.
    run(jb, 400)
    jb.write(ramp(1, 60))
    assert jb.stats().prefill_ms == 50


def test_gap_longer_than_stall_gap_is_only_a_drain() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, stall_gap_ms=250)
    jb.write(ramp(1, 20))
    run(jb, 30)
    run(jb, 300)
    jb.write(ramp(1, 20))
    s = jb.stats()
    assert s.underruns == 0
    assert s.drains == 1


def test_stall_gap_is_measured_from_the_frame_that_ran_dry() -> None:
    # Dry after 5 ms of a 10 ms block: 245 ms later is still inside the 250 ms gap...
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=5, stall_gap_ms=250)
    jb.write(ramp(1, 5))
    tick(jb, 10)
    run(jb, 240)
    jb.write(ramp(1, 5))
    assert jb.stats().underruns == 1
    # ...and 255 ms is outside it.
    jb2: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=5, stall_gap_ms=250)
    jb2.write(ramp(1, 5))
    tick(jb2, 10)
    run(jb2, 250)
    jb2.write(ramp(1, 5))
    assert jb2.stats().underruns == 0


def test_played_ms_counts_only_audio() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10)
    jb.write(ramp(1, 25))
    run(jb, 100)
    s = jb.stats()
    assert s.played_ms == 25
    assert s.buffered_ms == 0


# -- JitterBuffer: overflow ------------------------------------------------------------
def test_overflow_drops_oldest_and_counts() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, capacity_ms=100)
    jb.write(ramp(0, 80))
    jb.write(ramp(80, 50))  # 130 into 100: frames 0..29 are dropped
    s = jb.stats()
    assert s.dropped_ms == 30
    assert s.buffered_ms == 100
    out = run(jb, 100)
    assert out.tolist() == list(range(30, 130))


# -- JitterBuffer: clear (barge-in) ----------------------------------------------------
def test_clear_fades_then_silence() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, fade_ms=8)
    jb.write(np.ones((500, 1), np.float32))
    assert tick(jb, 10).tolist() == [1.0] * 10
    discarded = jb.clear()
    assert discarded == 490 - 8
    out = run(jb, 30)
    fade = out[:8]
    # A ramp from full level towards zero, strictly decreasing, then true silence.
    assert fade[0] == 1.0
    assert np.all(np.diff(fade) < 0)
    assert fade[-1] < 0.2
    assert not out[8:].any()
    s = jb.stats()
    assert s.clears == 1 and s.cleared_ms == 482
    assert s.buffered_ms == 0


def test_clear_before_playing_discards_without_fade() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=100)
    jb.write(ramp(1, 50))
    assert jb.clear() == 50
    assert not run(jb, 200).any()


def test_audio_after_clear_plays_normally() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, fade_ms=4)
    jb.write(ramp(1, 100))
    tick(jb, 10)
    jb.clear()
    jb.write(ramp(1000, 20))
    out = run(jb, 40)
    assert out[4:24].tolist() == list(range(1000, 1020))


def test_clear_resets_the_prefill_wait() -> None:
    # Audio that waited 40 of 60 ms and was then cleared must not shorten the pre-fill of
    # the next audio: that would start the next turn with too little buffered.
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=60)
    jb.write(ramp(1, 10))
    run(jb, 40)
    jb.clear()
    jb.write(ramp(100, 10))
    assert not run(jb, 50).any()
    assert tick(jb, 10).tolist() == list(range(100, 110))


def test_running_dry_after_clear_is_not_an_underrun() -> None:
    # Barge-in empties the buffer on purpose; the next turn's audio arriving soon after
    # is not a network stall.
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, fade_ms=4, stall_gap_ms=250)
    jb.write(ramp(1, 100))
    tick(jb, 10)
    jb.clear()
    run(jb, 50)
    jb.write(ramp(1, 30))
    run(jb, 50)
    assert jb.stats().underruns == 0


def test_stall_in_the_turn_after_a_clear_is_still_an_underrun() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, fade_ms=4, stall_gap_ms=250)
    jb.write(ramp(1, 100))
    tick(jb, 10)
    jb.clear()
    jb.write(ramp(1, 30))  # the next turn starts before the fade has played out
    run(jb, 60)  # plays the fade and the 30 ms, then runs dry: a stall this time
    jb.write(ramp(1, 30))
    assert jb.stats().underruns == 1


# -- JitterBuffer: markers -------------------------------------------------------------
def test_marker_reached_only_after_preceding_audio_played() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10)
    jb.write(ramp(1, 25))
    jb.add_marker("a")
    jb.write(ramp(26, 10))
    jb.add_marker("b")
    tick(jb, 10)
    tick(jb, 10)
    assert jb.pop_reached() == []
    tick(jb, 5)  # frame 25 played: "a" is due
    assert jb.pop_reached() == ["a"]
    assert jb.pop_reached() == []  # popped once
    tick(jb, 9)
    assert jb.pop_reached() == []
    tick(jb, 1)
    assert jb.pop_reached() == ["b"]


def test_marker_on_empty_buffer_is_reached_at_once() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE)
    jb.add_marker("now")
    assert jb.pop_reached() == ["now"]
    jb.write(ramp(1, 100))
    run(jb, 200)
    jb.add_marker("after")
    assert jb.pop_reached() == ["after"]


def test_markers_reached_through_overflow_drop() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10, capacity_ms=50)
    jb.write(ramp(0, 20))
    jb.add_marker("old")
    jb.write(ramp(20, 20))
    jb.add_marker("kept")
    assert jb.pop_reached() == []
    jb.write(ramp(40, 25))  # drops frames 0..14: "old" still has 5 frames ahead of it
    assert jb.pop_reached() == []
    jb.write(ramp(65, 5))  # drops 15..19: everything before "old" is gone
    assert jb.pop_reached() == ["old"]
    run(jb, 20)  # plays 20..39
    assert jb.pop_reached() == ["kept"]


def test_clear_releases_all_markers_in_order() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=10)
    jb.write(ramp(1, 100))
    jb.add_marker("m1")
    jb.write(ramp(101, 100))
    jb.add_marker("m2")
    tick(jb, 10)
    assert jb.pop_reached() == []
    jb.clear()
    assert jb.pop_reached() == ["m1", "m2"]
    jb.write(ramp(1, 30))
    jb.add_marker("m3")  # markers after the clear wait for their own audio
    assert jb.pop_reached() == []
    run(jb, 60)
    assert jb.pop_reached() == ["m3"]


# -- JitterBuffer: monitor tap ---------------------------------------------------------
def test_monitor_receives_exactly_what_fill_output() -> None:
    monitor = SampleRing(10_000)
    jb: JitterBuffer[str] = JitterBuffer(RATE, prefill_ms=20, fade_ms=4, monitor=monitor)
    outs: list[Float32Array] = [tick(jb, 10)]  # silence before any audio
    jb.write(ramp(1, 50))
    outs += [tick(jb, 7) for _ in range(5)]  # pre-fill, play
    jb.clear()  # fade
    outs += [tick(jb, 13) for _ in range(3)]
    jb.write(ramp(500, 35))
    outs += [tick(jb, 10) for _ in range(8)]  # pre-fill, play, run dry
    played = np.concatenate(outs)
    tapped = monitor.read()[:, 0]
    np.testing.assert_array_equal(tapped, played)
    assert np.isin(np.arange(500, 535), tapped).all()


def test_stereo_buffer() -> None:
    jb: JitterBuffer[str] = JitterBuffer(RATE, channels=2, prefill_ms=10)
    jb.write(ramp(1, 20, channels=2))
    out = np.zeros((10, 2), np.float32)
    jb.fill(out)
    assert out[:, 0].tolist() == out[:, 1].tolist() == list(range(1, 11))
