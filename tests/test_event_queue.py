"""EventQueue: bounded, never blocking the thread that puts, never losing a call's end.

The drivers put from threads every call in the process shares (the shared clock's
event loop, for sts and agent calls alike): one call's stalled event thread
must not hold them up (docs/performance.md#reader).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError
from aivoco.wire import events as ev


def _audio() -> ev.AgentAudio:
    return ev.AgentAudio(AudioChunk(np.zeros(160, np.int16), 8000))


def _drain(q: ev.EventQueue) -> list[ev.Event]:
    out = []
    while (item := q.get(timeout=0)) is not None:
        out.append(item.event)
    return out


def test_a_full_queue_never_blocks_the_putting_thread() -> None:
    q = ev.EventQueue(limit=64)
    for _ in range(64):
        q.put(ev.Notice("filler"))
    started = time.monotonic()
    for _ in range(10):
        q.put(ev.AgentText("late"))  # a control event, the queue full
    assert time.monotonic() - started < 0.2  # it used to wait 1 s each
    assert q.dropped == 10


def test_audio_leaves_room_for_control_events() -> None:
    q = ev.EventQueue(limit=300)
    for _ in range(300):
        q.put(_audio())
    assert q.dropped == 300 - (300 - ev.CONTROL_RESERVE)
    q.put(ev.AgentText("still heard"))
    q.put(ev.PlaybackClear())
    events = _drain(q)
    assert isinstance(events[-2], ev.AgentText) and isinstance(events[-1], ev.PlaybackClear)


def test_the_calls_last_word_is_kept_when_the_queue_is_full() -> None:
    q = ev.EventQueue(limit=8)
    for i in range(8):
        q.put(ev.Notice(f"n{i}"))
    q.put(ev.Disconnected("peer gone", AivocoError("peer gone")))
    q.put(ev.Ended("a second end is not kept"))  # a call ends once
    assert q.dropped == 0
    events = _drain(q)
    assert [type(e) for e in events] == [ev.Notice] * 8 + [ev.Disconnected]


def test_a_waiting_consumer_gets_the_last_word() -> None:
    q = ev.EventQueue(limit=4)
    got: list[ev.Event] = []

    def consume() -> None:
        while True:
            item = q.get(timeout=None)
            if item is None:
                continue
            got.append(item.event)
            if isinstance(item.event, ev.Disconnected):
                return

    for i in range(4):
        q.put(ev.Notice(f"n{i}"))
    q.put(ev.Disconnected("peer gone", AivocoError("peer gone")))
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(got[-1], ev.Disconnected) and len(got) == 5
