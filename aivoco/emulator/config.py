"""`EmulatorConfig`: every knob of the local stand-in, in one frozen dataclass.

The CLI (`aivoco emulate`) maps its options one to one onto these fields; tests build
the dataclass directly (port 0, latency 0). Values are checked once, here, so the
server code can trust them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aivoco.errors import UsageError

DEFAULT_PORT = 11002  # the STS docs' local server port (docs/protocols.md#sts-endpoint)

# Socket.IO servers refuse messages above maxHttpBufferSize: 1 MB by default in the JS
# server and in python-engineio (docs/protocols.md#pitfall-max-buffer). We keep the same
# limit so a client that works against the emulator does not trip the real service.
MAX_MESSAGE_BYTES = 1_000_000


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 = pick a free port (see Emulator.port after start())
    # Keys accepted by both services; empty = any non-empty key.
    accept_keys: tuple[str, ...] = ()
    # Agent ids the call service answers with HTTP 404 (all others exist).
    reject_agents: tuple[str, ...] = ()

    # -- billing (sts): balance per key, charged per minute of session time ---------------
    credits: float = 100.0
    cost_per_minute: float = 1.0
    # Admin units pay for functions: 0.05 per definition + 0.5 per 1000 definition
    # tokens at session start, 0.05 per call (docs/protocols.md#sts-functions).
    admin_units: float = 100.0

    # -- agent behaviour -------------------------------------------------------------------
    latency_ms: float = 300.0  # think time between the end of an utterance and the reply
    function_timeout_s: float = 10.0
    # Energy VAD over 10 ms frames (see aivoco.emulator.vad for the reasoning).
    vad_threshold_dbfs: float = -40.0
    vad_hangover_ms: float = 600.0
    vad_min_speech_ms: float = 100.0
    max_utterance_s: float = 30.0
    # STS replies go out as audio_response events of this many ms of 24 kHz audio.
    sts_reply_chunk_ms: int = 100

    # -- fault injection -------------------------------------------------------------------
    drop_after_s: float | None = None  # abort each connection this long after it opened
    garbage_every: int | None = None  # every Nth outgoing message is malformed (N >= 2)

    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Grace for in-flight HTTP handlers when stopping (sessions are closed before this).
    shutdown_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0..65535, got {self.port}")
        if any(not k for k in self.accept_keys):
            problems.append("an accepted key cannot be empty")
        for name in ("credits", "cost_per_minute", "admin_units", "latency_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be a finite number >= 0, got {value}")
        if not self.function_timeout_s > 0:
            problems.append("function timeout must be > 0 seconds")
        if self.drop_after_s is not None and not self.drop_after_s > 0:
            problems.append("--drop-after must be > 0 seconds")
        if self.garbage_every is not None and self.garbage_every < 2:
            # N=1 would turn every message into garbage, including the ones a session
            # cannot do without (see aivoco.emulator.faults): nothing left to test.
            problems.append("--garbage-every must be at least 2")
        if not 10 <= self.sts_reply_chunk_ms <= 1000:
            problems.append("sts reply chunk must be 10..1000 ms")
        if self.vad_min_speech_ms < 10 or self.vad_hangover_ms < 10:
            problems.append("VAD durations must be at least 10 ms")
        if problems:
            raise UsageError("; ".join(problems))

    def key_accepted(self, key: str) -> bool:
        if not key:
            return False
        return not self.accept_keys or key in self.accept_keys
