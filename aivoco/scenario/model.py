"""A scenario file, checked: what to say, what to expect, and how long to listen.

These are the values `parse.py` builds from the YAML once every key was checked; the
rest of the package trusts them. Times are seconds (`_s`), as in the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from aivoco.wire.driver import ProtocolName

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_REPLY_QUIET_S = 1.0
DEFAULT_REPLY_TIMEOUT_S = 10.0
DEFAULT_TTS_VOICE = "en-us"


class TurnKind(Enum):
    SAY = "say"
    PLAY = "play"
    SILENCE = "silence"


@dataclass(frozen=True)
class FunctionExpect:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)  # a subset to match


@dataclass(frozen=True)
class Expect:
    reply_within_s: float | None = None
    reply_seconds: tuple[float, float] | None = None
    text_contains: tuple[str, ...] = ()
    text_matches: re.Pattern[str] | None = None
    function_called: FunctionExpect | None = None
    no_reply: bool = False

    @property
    def empty(self) -> bool:
        return self == Expect()


@dataclass(frozen=True)
class Turn:
    index: int  # 1-based, as in messages
    kind: TurnKind
    line: int  # where the turn starts in the file
    text: str | None = None  # say
    path: Path | None = None  # play (resolved against the scenario's folder)
    seconds: float | None = None  # silence
    expect: Expect = field(default_factory=Expect)
    wait_s: float | None = None  # listen exactly this long after our speech
    reply_quiet_s: float = DEFAULT_REPLY_QUIET_S
    reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S

    @property
    def label(self) -> str:
        if self.kind is TurnKind.SAY:
            return f"say {json.dumps(self.text, ensure_ascii=False)}"
        if self.kind is TurnKind.PLAY:
            return f"play {self.path.name if self.path else ''}"
        return f"silence {self.seconds:g} s"


@dataclass(frozen=True)
class EndChecks:
    credits_used_max: float | None = None
    protocol_errors_max: int | None = None
    underruns_max: int | None = None


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    protocol: ProtocolName
    turns: tuple[Turn, ...]
    voice: str | None = None
    system: str | None = None  # the text itself (a `@FILE` was read while parsing)
    functions: Path | None = None
    agent: str | None = None
    url: str | None = None
    # `profile:` of the config file, used when neither --profile nor $AIVOCO_PROFILE
    # names one (aivoco/cli/test_run.py resolves key, url and agent per scenario).
    profile: str | None = None
    line: int = 0  # where the scenario's mapping starts: problems about all of it
    # Set by `aivoco test` from --key, the environment or the profile; never from the file.
    key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    tts: str | None = None  # a command template; None = eSpeak NG
    tts_voice: str = DEFAULT_TTS_VOICE
    allow_reconnect: bool = False
    end: EndChecks = field(default_factory=EndChecks)

    @property
    def slug(self) -> str:
        """The name as a file-name part (recordings, transcripts)."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-.")
        return slug[:60] or "scenario"
