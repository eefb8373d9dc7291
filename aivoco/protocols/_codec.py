"""The one codec shape both protocols share (as pipecat's serializers share one base).

A codec is pure: it builds the messages a driver puts on the wire (`Outgoing`) and
decodes what the peer sent into the shared events of `aivoco.wire.events`. It owns no
socket and no thread; per-connection state (call numbering) lives in the instance.

Errors: malformed input from the peer raises `ProtocolError` (drivers count it and
carry on); misuse by us (audio at the wrong rate, a mark on a protocol without marks)
raises `ProtocolMisuseError`. Turning the server's refusals and errors into our error
types happens in each codec module, in one function (`error_for`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import ProtocolMisuseError
from aivoco.wire.driver import ProtocolName
from aivoco.wire.events import Event

RawT = TypeVar("RawT")


@dataclass(frozen=True)
class Outgoing:
    """One message for the driver to send.

    `kind` names it for logs and checks ("start", "audio", "stop", ...); `data` is what
    the transport takes (sts: `(event, payload or None)`; call: the JSON text frame).
    """

    kind: str
    data: Any
    audio_ms: float = 0.0


class Codec(ABC, Generic[RawT]):
    protocol: ClassVar[ProtocolName]
    uplink_rate_hz: ClassVar[int]
    downlink_rate_hz: ClassVar[int]
    has_credits: ClassVar[bool]
    closed: bool  # True once `closing()` was built: nothing more may be

    @abstractmethod
    def opening(self) -> list[Outgoing]:
        """The messages that start the session, in order."""

    @abstractmethod
    def audio(self, chunk: AudioChunk) -> Outgoing:
        """One uplink chunk at `uplink_rate_hz`, mono."""

    @abstractmethod
    def closing(self) -> Outgoing:
        """The goodbye: after it, nothing else may be built."""

    def function_result(self, call_id: str, name: str, result: Any) -> Outgoing:
        raise ProtocolMisuseError(f"the {self.protocol.value} protocol has no function calls")

    def mark(self, name: str) -> Outgoing:
        raise ProtocolMisuseError(f"the {self.protocol.value} protocol has no playout marks")

    @abstractmethod
    def decode(self, raw: RawT) -> Event:
        """A received message -> an event; `ProtocolError` if it is malformed."""

    @abstractmethod
    def describe_outgoing(self, out: Outgoing) -> str:
        """A bounded one-line summary for the log (audio as sizes, no key)."""

    @abstractmethod
    def describe_incoming(self, raw: RawT) -> str: ...
