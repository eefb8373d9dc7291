"""What the session needs from its parts: a source, a player and a function runner.

Structural types, so microphone and file sources (and device and file players) plug in
without sharing a base class.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.playout import PlayerStats
from aivoco.errors import AivocoError
from aivoco.session.functions._common import FunctionOutcome
from aivoco.wire.functions import FunctionSpec


class Source(Protocol):
    finished: bool

    @property
    def lost_frames(self) -> int:
        """Frames of the source's timeline never delivered (a stalled pacer, a capture
        overflow): the recording puts that much silence in their place."""

    def start(self) -> None: ...

    def __iter__(self) -> Iterator[AudioChunk]: ...

    def close(self) -> None: ...


class PlayerLike(Protocol):
    error: AivocoError | None
    clock_rate_hz: int

    def start(self) -> None: ...
    def close(self) -> None: ...
    def play(self, chunk: AudioChunk) -> None: ...
    def clear(self) -> int: ...
    def add_marker(self, token: str) -> None: ...
    def pop_reached(self) -> list[str]: ...
    def take_played(self) -> AudioChunk: ...
    def stats(self) -> PlayerStats: ...


class FunctionRunner(Protocol):
    @property
    def specs(self) -> tuple[FunctionSpec, ...]: ...

    def run(self, name: str, arguments: dict[str, Any], timeout_s: float) -> FunctionOutcome: ...
