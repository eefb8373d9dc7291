"""What the session needs from its parts: a source, a player and a function runner.

Structural types, so microphone and file sources (and device and file players) plug in
without sharing a base class.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.playout import PlayerStats
from aivoco.audio.timed import TimedRing
from aivoco.errors import AivocoError
from aivoco.session.functions._common import FunctionOutcome
from aivoco.wire.functions import FunctionSpec


class Source(Protocol):
    finished: bool
    sample_rate_hz: int  # of the frames it yields

    @property
    def lost_frames(self) -> int:
        """Frames of the source's timeline never delivered (a stalled pacer, a capture
        overflow): the recording puts that much silence in their place."""

    def start(self) -> None: ...

    def __iter__(self) -> Iterator[AudioChunk]: ...

    def close(self) -> None: ...


class MarkToken(NamedTuple):
    """A playout mark: its name, and the connection that asked for it (a mark from a
    connection the call has since replaced is not answered on the new one)."""

    origin: int
    name: str


@runtime_checkable
class TimedSource(Source, Protocol):
    """A source whose frames are due at set times (a file, a script): the process's
    shared clock asks for them, instead of a thread per call waiting on each one."""

    def due(self, now: float) -> list[AudioChunk]: ...

    def next_due(self) -> float | None:
        """When the next frame is due (time.monotonic()); None before the first."""


class PlayerLike(Protocol):
    error: AivocoError | None
    clock_rate_hz: int
    reference: TimedRing  # what the clock wrote, with its time: the echo reference

    def start(self) -> None: ...
    def close(self) -> None: ...
    def play(self, chunk: AudioChunk) -> None: ...
    def clear(self) -> int: ...
    def add_marker(self, token: MarkToken) -> None: ...
    def pop_reached(self) -> list[MarkToken]: ...
    def cue_heard(self, key: int) -> None: ...
    def pop_heard(self) -> list[tuple[int, float | None]]: ...
    def take_played(self) -> AudioChunk: ...
    def buffered_ms(self) -> float: ...
    def stats(self) -> PlayerStats: ...
    def set_volume(self, volume: float) -> float: ...


class FunctionRunner(Protocol):
    @property
    def specs(self) -> tuple[FunctionSpec, ...]: ...

    def run(self, name: str, arguments: dict[str, Any], timeout_s: float) -> FunctionOutcome: ...
