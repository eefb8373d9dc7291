"""The contract between the session and a protocol driver (both protocols, one shape).

A driver owns one connection and its threads; its codec stays pure. The session only
ever talks to this `Driver` protocol, so both protocols (and the scripted fake driver
of the tests) plug into the same call lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: `--help` builds its options from here without numpy
    from aivoco.audio.chunk import AudioChunk
    from aivoco.wire.events import EventSink


class ProtocolName(str, Enum):
    """The two wire protocols (docs/protocols.md#sts, #call)."""

    STS = "sts"
    CALL = "call"


@dataclass
class NetStats:
    """Wire counters, updated by the driver's threads (plain int adds).

    Readers take `dataclasses.replace(net)` as a snapshot: a torn read can only be a
    few messages stale, which a display or a summary taken after close() never shows.
    """

    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    audio_ms_sent: float = 0.0
    audio_ms_received: float = 0.0
    transport: str = ""
    uplink_dropped: int = 0  # frames not sent because the link was backed up


class Driver(Protocol):
    """What the session needs from a protocol driver."""

    endpoint: str  # display form: host (and agent), never the key

    @property
    def net(self) -> NetStats: ...

    @property
    def protocol(self) -> ProtocolName: ...
    @property
    def uplink_rate_hz(self) -> int: ...
    @property
    def downlink_rate_hz(self) -> int: ...
    @property
    def has_credits(self) -> bool: ...

    def open(self, events: EventSink, timeout_s: float) -> None:
        """Connect and send the opening messages; `Ready` follows as an event.

        Raises AuthError or ConnectionFailedError when the transport itself cannot be
        opened within `timeout_s`. Everything after that arrives as events.
        """

    def send_audio(self, chunk: AudioChunk) -> None: ...

    def send_function_result(self, call_id: str, name: str, result: Any) -> None:
        """Send a function's result; a failure already has the failure_result() shape."""

    def answer_mark(self, name: str) -> None: ...

    def hang_up(self) -> None:
        """Send the protocol's goodbye; the server's answer arrives as Ended/Disconnected."""

    def close(self) -> None:
        """Release the connection at once (idempotent)."""
