"""Turn tracking for the response-latency figure, in audio time (pure; fed with frames).

The user's side is measured on the uplink's own clock: the samples sent so far. A frame
is voiced when it has audio (`has_audio`, docs/protocols.md#sts-audio-data); a user turn
ends after `user_hangover_s` of unvoiced samples following speech. Counting samples
instead of reading the wall clock makes the turns a property of the input alone: the
same file gives the same turns on every run, however the threads were scheduled.

Latency of a turn = the moment the first agent audio of an agent turn arrived, minus
the end of the user speech it answers (the end of the last voiced frame), both on the
uplink's timeline. Arrivals are network events, so they are placed on that timeline
from the last frame sent: its end position plus the wall-clock time since it was sent
(the only wall-clock part, bounded by the uplink's pacing: one frame in steady state).
An agent turn starts with agent audio after at least `agent_gap_s` without any (arrival
times); audio that starts while the user is still talking (overlap, echo) gives no
latency figure.
"""

from __future__ import annotations

from dataclasses import dataclass

# Pauses inside one sentence run to 0.3-0.4 s (the demo utterance has one of 0.32 s);
# a turn ends after a longer silence, as voice agents' end-of-turn detection does.
USER_HANGOVER_S = 0.5
AGENT_GAP_S = 0.5
OVERLAP_S = 0.1


@dataclass
class SpeechEnd:
    ended_at: float  # seconds of uplink audio at the end of the last voiced frame
    duration_s: float


class TurnTracker:
    def __init__(
        self, user_hangover_s: float = USER_HANGOVER_S, agent_gap_s: float = AGENT_GAP_S
    ) -> None:
        self.user_hangover_s = user_hangover_s
        self.agent_gap_s = agent_gap_s
        self._rate_hz = 0
        self._pos = 0  # uplink samples sent so far
        self._sent_at: float | None = None  # wall clock when the last frame was sent
        self._speech_start: int | None = None  # sample positions
        self._last_voiced_end: int | None = None
        self._awaiting_answer = False  # user spoke since the last agent turn began
        self._last_agent_audio: float | None = None

    @property
    def user_speaking(self) -> bool:
        return self._speech_start is not None

    def _seconds(self, samples: int) -> float:
        return samples / self._rate_hz if self._rate_hz else 0.0

    def on_user_frame(
        self, voiced: bool, frames: int, rate_hz: int, sent_at: float
    ) -> SpeechEnd | None:
        """Feed every frame sent upstream (its length in samples at `rate_hz`, and when
        it was sent); returns a SpeechEnd once a user turn is over."""
        self._rate_hz = rate_hz
        start, self._pos = self._pos, self._pos + frames
        self._sent_at = sent_at
        if voiced:
            if self._speech_start is None:
                self._speech_start = start
            self._last_voiced_end = self._pos
            self._awaiting_answer = True
            return None
        hangover = round(self.user_hangover_s * rate_hz)
        if (
            self._speech_start is not None
            and self._last_voiced_end is not None
            and self._pos - self._last_voiced_end >= hangover
        ):
            end = SpeechEnd(
                self._seconds(self._last_voiced_end),
                self._seconds(self._last_voiced_end - self._speech_start),
            )
            self._speech_start = None
            return end
        return None

    def uplink_time(self, at: float) -> float:
        """Wall-clock time `at` placed on the uplink's audio timeline (seconds)."""
        since = 0.0 if self._sent_at is None else max(0.0, at - self._sent_at)
        return self._seconds(self._pos) + since

    def on_agent_audio(self, arrived_at: float) -> float | None:
        """Feed every agent audio arrival (wall clock); returns the latency (ms) of a
        new answer."""
        last = self._last_agent_audio
        new_turn = last is None or arrived_at - last >= self.agent_gap_s
        self._last_agent_audio = arrived_at
        if not new_turn or not self._awaiting_answer or self._last_voiced_end is None:
            return None
        self._awaiting_answer = False
        gap_s = self.uplink_time(arrived_at) - self._seconds(self._last_voiced_end)
        if self._speech_start is not None and gap_s < OVERLAP_S:
            return None  # the user is still talking: overlap, not an answer
        return max(0.0, gap_s * 1000.0)
