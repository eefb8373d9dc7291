"""Local barge-in for sts: the user talks over the agent, playback stops (docs/echo.md).

The sts protocol has no clear message (docs/protocols.md#sts), so when echo control
says the user is talking over the agent, we cut the agent ourselves: flush what is
queued (with the jitter buffer's fade) and drop the rest of that reply until the agent
pauses. The call protocol has the server's `clear` instead.
"""

from __future__ import annotations

import threading
from collections import deque

from aivoco.session.interfaces import PlayerLike
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.session.turns import AGENT_GAP_S

# Local barge-in (docs/echo.md#barge-in): within the last ONSET_WINDOW_MS, at least
# ONSET_SPEECH_MS of frames of speech over the agent, spanning at least ONSET_SPAN_MS
# from the first to the end of the last (the emulator's VAD confirms an onset by a
# 100 ms span; the gate lets speech through in pieces).
ONSET_SPEECH_MS = 60.0
ONSET_SPAN_MS = 100.0
ONSET_WINDOW_MS = 300.0


def speech_onset(recent: deque[tuple[bool, float]]) -> bool:
    """`recent`: (speech over the agent, frame ms) for the last frames, oldest first."""
    speech = sum(ms for spoke, ms in recent if spoke)
    if speech < ONSET_SPEECH_MS:
        return False
    pos, first, last = 0.0, None, 0.0
    for spoke, ms in recent:
        if spoke:
            first = pos if first is None else first
            last = pos + ms
        pos += ms
    return first is not None and last - first >= ONSET_SPAN_MS


class LocalBargeIn:
    """Barge-in on our side, for sts (docs/echo.md#barge-in).

    The uplink reports frames of user speech over the agent (`feed`); once they make an
    onset (`speech_onset`), playback is flushed (the jitter buffer's fade)
    and the downlink drops agent audio (`admit`) until the agent pauses for
    `pause_s` (AGENT_GAP_S: what starts a new agent turn)."""

    def __init__(
        self, player: PlayerLike, state: CallState, bus: RecordBus, pause_s: float = AGENT_GAP_S
    ) -> None:
        self.player = player
        self.state = state
        self.bus = bus
        self.pause_s = pause_s
        self.count = 0
        self.triggered_at: list[float] = []  # when each barge-in cut playback
        self.dropped_chunks = 0
        self._lock = threading.Lock()
        self._dropping = False
        self._last_audio = 0.0
        self._recent: deque[tuple[bool, float]] = deque()
        self._window_ms = 0.0  # the frames' ms in _recent

    def feed(self, over_agent: bool, frame_ms: float, now: float) -> bool:
        """One uplink frame; True when it triggered a barge-in."""
        self._recent.append((over_agent, frame_ms))
        self._window_ms += frame_ms  # a running sum: this runs for every uplink frame
        while self._window_ms - self._recent[0][1] >= ONSET_WINDOW_MS:
            self._window_ms -= self._recent.popleft()[1]
        if not speech_onset(self._recent) or self.player.stats().jitter.buffered_ms <= 0:
            return False  # not yet speech, or nothing of the agent's left to cut
        with self._lock:
            if self._dropping:
                return False
            self._dropping = True
            self._last_audio = now
            self.count += 1
            self.triggered_at.append(now)
        self._recent.clear()
        self._window_ms = 0.0
        cleared = self.player.clear()
        cleared_ms = round(cleared * 1000 / self.player.clock_rate_hz, 1)
        self.state.add_entry("info", "barge-in: you spoke over the agent; playback stopped")
        self.bus.emit("barge_in", cleared_ms=cleared_ms)
        return True

    def admit(self, at: float) -> bool:
        """Agent audio arriving at `at`: False while the interrupted reply goes on."""
        with self._lock:
            if not self._dropping:
                return True
            if at - self._last_audio >= self.pause_s:
                self._dropping = False
                return True
            self._last_audio = at
            self.dropped_chunks += 1
            return False
