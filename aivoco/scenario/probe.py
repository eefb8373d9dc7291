"""Where a scenario's timing comes from: the uplink's frames and the agent's arrivals.

`ProbeDriver` wraps the call's real driver. It notes the monotonic time each uplink
frame was handed over (`send_audio` returned: the frame is the transport's now) in the
`UplinkLog`, next to the time the script had scheduled it (start + k x frame), and it
taps the event queue the driver fills, so `AgentTracker` sees each agent event at the
moment the driver decoded it (its *arrival*), before the call's own event thread does.

Why arrival, not playback, for `reply_within`: arrival is what the service controls
(the first reply byte decoded), while playback adds our own jitter buffer's pre-fill
and the player's tick; a figure that a faster client could change is not the agent's.
The reply's *duration* is measured on a playout timeline built from the arrivals, the
way a speaker would play them: each chunk starts when it arrives or when the previous
one ends, whichever is later, so a burst of 5 s of audio is a 5 s reply, and a pause
between two sentences counts.
"""

from __future__ import annotations

import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from aivoco.audio.chunk import AudioChunk
from aivoco.wire import events as ev
from aivoco.wire.driver import Driver, NetStats, ProtocolName


class UplinkLog:
    """Due and hand-over times of every uplink frame (appended on the uplink thread)."""

    def __init__(self, frame_s: float) -> None:
        self.frame_s = frame_s
        self.due = array("d")
        self.handed = array("d")

    def handed_at(self, k: int) -> float | None:
        return self.handed[k] if 0 <= k < len(self.handed) else None

    def slips_ms(self) -> list[float]:
        """How late each frame went out compared to its schedule, in ms (>= 0)."""
        n = min(len(self.due), len(self.handed))
        return [max(0.0, (self.handed[k] - self.due[k]) * 1000) for k in range(n)]


@dataclass
class Heard:
    """What the agent did while one turn was current."""

    turn: int  # 0 = before the first turn
    since: float
    first_audio_at: float | None = None  # arrival of the turn's first agent audio
    playout_start: float | None = None
    playout_end: float | None = None
    audio_s: float = 0.0
    texts: list[str] = field(default_factory=list)
    functions: list[ev.FunctionCall] = field(default_factory=list)
    clears: int = 0

    @property
    def reply_s(self) -> float | None:
        if self.playout_start is None or self.playout_end is None:
            return None
        return self.playout_end - self.playout_start


class AgentTracker:
    """The agent's events, attributed to the turn that was current when they arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns = [Heard(0, time.monotonic())]
        self._playout_end = 0.0

    def begin(self, turn: int, at: float) -> None:
        with self._lock:
            self._turns.append(Heard(turn, at))

    def current(self) -> Heard:
        with self._lock:
            h = self._turns[-1]
            return Heard(h.turn, h.since, h.first_audio_at, h.playout_start, h.playout_end,
                         h.audio_s, list(h.texts), list(h.functions), h.clears)  # fmt: skip

    def on_event(self, at: float, event: ev.Event) -> None:
        with self._lock:
            heard = self._turns[-1]
            if isinstance(event, ev.AgentAudio):
                duration_s = event.chunk.duration_ms / 1000
                start = max(at, self._playout_end)
                self._playout_end = start + duration_s
                if heard.first_audio_at is None:
                    heard.first_audio_at, heard.playout_start = at, start
                heard.playout_end = self._playout_end
                heard.audio_s += duration_s
            elif isinstance(event, ev.AgentText):
                heard.texts.append(event.text)
            elif isinstance(event, ev.FunctionCall):
                heard.functions.append(event)
            elif isinstance(event, ev.PlaybackClear):
                # Barge-in: what was queued will not be played.
                self._playout_end = min(self._playout_end, at)
                if heard.playout_end is not None:
                    heard.playout_end = max(heard.playout_start or at, min(heard.playout_end, at))
                heard.clears += 1


class _TapQueue:
    """Shows each event to the tracker, then queues it for the call as usual."""

    def __init__(self, inner: ev.EventSink, tracker: AgentTracker) -> None:
        self._inner = inner
        self._tracker = tracker

    def put(self, event: ev.Event) -> None:
        self._tracker.on_event(time.monotonic(), event)
        self._inner.put(event)


class ProbeDriver:
    """The call's driver, with the uplink's hand-over times and the events tapped."""

    def __init__(self, inner: Driver, uplink: UplinkLog, tracker: AgentTracker) -> None:
        self.inner = inner
        self.uplink = uplink
        self.tracker = tracker

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    @endpoint.setter
    def endpoint(self, value: str) -> None:
        self.inner.endpoint = value

    @property
    def net(self) -> NetStats:
        return self.inner.net

    @property
    def protocol(self) -> ProtocolName:
        return self.inner.protocol

    @property
    def uplink_rate_hz(self) -> int:
        return self.inner.uplink_rate_hz

    @property
    def downlink_rate_hz(self) -> int:
        return self.inner.downlink_rate_hz

    @property
    def has_credits(self) -> bool:
        return self.inner.has_credits

    def open(self, events: ev.EventSink, timeout_s: float) -> None:
        self.inner.open(_TapQueue(events, self.tracker), timeout_s)

    def send_audio(self, chunk: AudioChunk) -> None:
        self.inner.send_audio(chunk)
        self.uplink.handed.append(time.monotonic())

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        self.inner.send_function_result(call_id, name, result)

    def answer_mark(self, name: str) -> None:
        self.inner.answer_mark(name)

    def hang_up(self) -> None:
        self.inner.hang_up()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Anything a newer driver offers (e.g. reconnect counters) reads through.
        return getattr(self.inner, name)
