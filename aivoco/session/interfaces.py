"""What the session needs from its parts: a source, a player and a function runner.

Structural types, so microphone and file sources (and device and file players) plug in
without sharing a base class.
"""

from __future__ import annotations

from typing import Any, Protocol

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AivocoError


class Source(Protocol):
    finished: bool

    def start(self) -> None: ...

    def __iter__(self) -> Any: ...

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
    def stats(self) -> Any: ...


class FunctionRunner(Protocol):
    def run(self, name: str, arguments: dict[str, Any], timeout_s: float) -> Any: ...
