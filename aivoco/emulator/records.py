"""What the emulator saw and did, per session, for tests and the demo to assert on.

Records are plain dataclasses written only by the emulator's event-loop thread. Other
threads may read them at any time (CPython keeps single attribute reads and list
appends atomic); to wait for something to happen use `Emulator.wait_until()`.
Times are `time.monotonic()` seconds, comparable with a test's own clock.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def key_fingerprint(key: str) -> str:
    """How a key appears in logs and records: its length and a short hash, never itself."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"len={len(key)} sha256:{digest}"


@dataclass
class Utterance:
    """One user utterance found by the VAD (times are positions in the uplink audio)."""

    index: int
    start_s: float  # audio time of the first voiced frame since the stream began
    duration_s: float  # first voiced frame to last voiced frame
    peak_dbfs: float
    rms_dbfs: float  # over the voiced frames only
    detected_at: float  # monotonic time the end was detected (after the hangover)


@dataclass
class Reply:
    """One echo reply: the text and the audio frames sent back."""

    index: int
    utterance: int
    text: str
    audio_s: float  # duration of the whole reply audio
    frames_total: int
    frames_sent: int = 0
    started_at: float = 0.0
    finished_at: float | None = None
    interrupted: bool = False  # barge-in stopped it


@dataclass
class FunctionCallRecord:
    """One function_called round trip (sts)."""

    name: str
    call_id: str
    arguments: dict[str, Any]
    called_at: float
    outcome: str = "pending"  # ok | timeout | name_mismatch | session_ended
    result: Any = None  # the client's `result`, exactly as received
    answered_at: float | None = None


@dataclass
class MarkRecord:
    """A mark sent after a reply (call), and when the client echoed it back."""

    name: str
    sent_at: float
    answered_at: float | None = None


@dataclass
class SessionRecord:
    """Fields common to both protocols: one record per connection."""

    id: str  # "sts#1", "call#2": the tag used in log lines
    protocol: str
    connected_at: float = field(default_factory=time.monotonic)
    closed_at: float | None = None
    key: str | None = None  # key_fingerprint(), never the key
    auth_ok: bool | None = None
    utterances: list[Utterance] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    barge_ins: int = 0
    messages_received: int = 0
    messages_sent: int = 0  # including garbage
    garbage_sent: int = 0
    garbage_kinds: Counter[str] = field(default_factory=Counter)
    deviations: list[str] = field(default_factory=list)  # the first few, verbatim
    deviation_counts: Counter[str] = field(default_factory=Counter)  # every one, by kind
    dropped: bool = False  # aborted by --drop-after
    close_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def deviation_total(self) -> int:
        return sum(self.deviation_counts.values())


@dataclass
class StsSessionRecord(SessionRecord):
    protocol: str = "sts"
    transport: str = ""  # websocket | polling | polling->websocket
    voice_choice: str | None = None
    system_message: str | None = None
    functions: list[dict[str, Any]] = field(default_factory=list)
    calls_started: int = 0  # start_call accepted (a connection may hold several calls)
    audio_chunks: int = 0  # valid audio_data chunks fed to the agent
    audio_bytes: int = 0
    invalid_audio: int = 0  # rejected with error{type: invalid_audio}
    audio_before_start: int = 0  # ignored: sent while no call was active
    function_calls: list[FunctionCallRecord] = field(default_factory=list)
    credits_used: float = 0.0  # over all calls on this connection
    remaining_credits: float | None = None
    admin_units_used: float = 0.0
    end_reason: str | None = None  # session_ended.reason of the last call
    events_received: Counter[str] = field(default_factory=Counter)
    events_sent: Counter[str] = field(default_factory=Counter)


@dataclass
class CallSessionRecord(SessionRecord):
    protocol: str = "call"
    agent_id: str = ""
    handshake_seen: bool = False  # the empty text message
    start: dict[str, Any] | None = None
    stream_sid: str | None = None
    call_sid: str | None = None
    media_received: int = 0
    media_bytes: int = 0
    media_sent: int = 0
    marks: list[MarkRecord] = field(default_factory=list)
    clears_sent: int = 0
    stop_received: bool = False
    events_received: Counter[str] = field(default_factory=Counter)

    @property
    def marks_answered(self) -> list[MarkRecord]:
        return [m for m in self.marks if m.answered_at is not None]
