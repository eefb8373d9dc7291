"""Turn tracking for the response-latency figure (pure; fed with timestamps).

Latency of a turn = arrival of the first agent audio of an agent turn minus the end of
the user speech it answers. "End of user speech" is the moment the last voiced frame
(`has_audio`, docs/protocols.md#sts-audio-data) was sent. An agent turn starts with agent audio
after at least `agent_gap_s` without any; audio that starts while the user is still
talking (overlap, echo) gives no latency figure.
"""

from __future__ import annotations

from dataclasses import dataclass

USER_HANGOVER_S = 0.3  # silence after speech before we call the user's turn over
AGENT_GAP_S = 0.5


@dataclass
class SpeechEnd:
    ended_at: float
    duration_s: float


class TurnTracker:
    def __init__(
        self, user_hangover_s: float = USER_HANGOVER_S, agent_gap_s: float = AGENT_GAP_S
    ) -> None:
        self.user_hangover_s = user_hangover_s
        self.agent_gap_s = agent_gap_s
        self._speech_start: float | None = None
        self._last_voiced_end: float | None = None
        self._awaiting_answer = False  # user spoke since the last agent turn began
        self._last_agent_audio: float | None = None

    @property
    def user_speaking(self) -> bool:
        return self._speech_start is not None

    def on_user_frame(self, voiced: bool, sent_at: float, frame_s: float) -> SpeechEnd | None:
        """Feed every frame sent upstream; returns a SpeechEnd once a turn is over."""
        if voiced:
            if self._speech_start is None:
                self._speech_start = sent_at
            self._last_voiced_end = sent_at + frame_s
            self._awaiting_answer = True
            return None
        if (
            self._speech_start is not None
            and self._last_voiced_end is not None
            and sent_at - self._last_voiced_end >= self.user_hangover_s
        ):
            end = SpeechEnd(self._last_voiced_end, self._last_voiced_end - self._speech_start)
            self._speech_start = None
            return end
        return None

    def on_agent_audio(self, arrived_at: float) -> float | None:
        """Feed every agent audio arrival; returns the latency (ms) of a new answer."""
        last = self._last_agent_audio
        new_turn = last is None or arrived_at - last >= self.agent_gap_s
        self._last_agent_audio = arrived_at
        if not new_turn or not self._awaiting_answer or self._last_voiced_end is None:
            return None
        self._awaiting_answer = False
        if self._speech_start is not None and arrived_at - self._last_voiced_end < 0.1:
            return None  # the user is still talking: overlap, not an answer
        return max(0.0, (arrived_at - self._last_voiced_end) * 1000.0)
