"""Everything a call can be told, declared once.

Each field of `CallOptions` carries its command-line declaration (`OptionInfo`) in its
metadata: the CLI builds the options of `sts`, `call` and `demo` from these fields
(aivoco/cli/options.py), code builds `CallOptions` directly, and both go through the
same checks here. The metadata is plain data, so this module imports no CLI library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aivoco.errors import UsageError
from aivoco.wire.driver import ProtocolName

STS_DEFAULT_URL = "wss://sts.aivoco.on.cloud.vispark.in"
CALL_DEFAULT_URL = "wss://call.aivoco.on.cloud.vispark.in/ws"
_URLS: dict[ProtocolName, tuple[str, str, tuple[str, ...]]] = {
    ProtocolName.STS: ("AIVOCO_STS_URL", STS_DEFAULT_URL, ("http", "https", "ws", "wss")),
    ProtocolName.CALL: ("AIVOCO_CALL_URL", CALL_DEFAULT_URL, ("ws", "wss")),
}

AUDIO = "Audio"
ECHO = "Speakers, headphones and echo"
FILES = "Files and headless use"
STS_ONLY = frozenset({"sts"})
CALLS = frozenset({"sts", "call"})


class EchoMode(str, Enum):
    """`--echo`: how the agent's own voice is kept out of the microphone (docs/echo.md)."""

    AUTO = "auto"  # off when a file stands in for the mic or speaker, else aec, else gate
    AEC = "aec"  # WebRTC acoustic echo cancellation (the aivoco[aec] extra)
    GATE = "gate"  # silence upstream while the agent is audible, unless clearly louder
    OFF = "off"  # full duplex, for headphones


class NoiseSuppression(str, Enum):
    """`--noise-suppression`: WebRTC's levels, about 6, 12, 18 and 21 dB of reduction."""

    OFF = "off"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    VERY_HIGH = "very-high"

    @property
    def level(self) -> int | None:
        """WebRTC's ns_level (0-3), None when off."""
        order = list(NoiseSuppression)
        return None if self is NoiseSuppression.OFF else order.index(self) - 1


@dataclass(frozen=True)
class OptionInfo:
    """How an option appears on the command line; `variants` override per command."""

    flag: str
    help: str
    metavar: str | None = None
    panel: str | None = None
    commands: frozenset[str] = CALLS
    envvar: str | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False
    show_default: bool = True
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_command(self, command: str) -> OptionInfo:
        changes = self.variants.get(command, {})
        return OptionInfo(**{**self.__dict__, **changes, "variants": {}})


def _opt(default: Any, flag: str, help: str, **info: Any) -> Any:
    return field(default=default, metadata={"cli": OptionInfo(flag, help, **info)})


@dataclass
class CallOptions:
    protocol: ProtocolName = ProtocolName.STS
    agent: str | None = _opt(
        None, "--agent", "The agent to call.", metavar="ID", commands=frozenset({"call"}),
        required=True, show_default=False,
    )  # fmt: skip
    voice: str = _opt(
        "female", "--voice", "Voice, passed through as voice_choice. Seen: female, male, "
        "Girl, Boy, alloy.", metavar="NAME", commands=STS_ONLY,
    )  # fmt: skip
    system: str | None = _opt(
        None, "--system", "System message, or @FILE.", metavar="TEXT|@FILE", commands=STS_ONLY
    )
    functions: Path | None = _opt(
        None, "--functions", "Custom functions: a .py file (public functions) or a .json list.",
        metavar="FILE", commands=STS_ONLY,
    )  # fmt: skip
    function_timeout_s: float = _opt(
        10.0, "--function-timeout", "Per function call.", metavar="SECONDS", min=0.1,
        commands=STS_ONLY,
    )  # fmt: skip
    key: str | None = _opt(
        None, "--key", "API key (never printed or logged).", metavar="KEY",
        envvar="AIVOCO_API_KEY", show_default=False,
    )  # fmt: skip
    url: str | None = _opt(
        None, "--url", "", variants={
            "sts": {"metavar": "URL", "envvar": "AIVOCO_STS_URL",
                    "help": f"Service URL (http/https/ws/wss). Default: {STS_DEFAULT_URL}"},
            "call": {"metavar": "BASE", "envvar": "AIVOCO_CALL_URL",
                     "help": "Base URL (ws/wss); the call goes to BASE/KEY/AGENT. "
                     f"Default: {CALL_DEFAULT_URL}"},
        },
    )  # fmt: skip
    input_device: str | None = _opt(
        None, "--input-device", "Microphone: index or name substring (see `aivoco devices`).",
        metavar="ID|NAME", panel=AUDIO,
    )  # fmt: skip
    output_device: str | None = _opt(
        None, "--output-device", "Speaker: index or name substring (see `aivoco devices`).",
        metavar="ID|NAME", panel=AUDIO, commands=CALLS | {"demo"},
    )  # fmt: skip
    input_file: Path | None = _opt(
        None, "--input", "Audio file instead of the microphone (any format libsndfile reads), "
        "sent in real time, then silence until the agent is quiet.", metavar="FILE", panel=FILES,
    )  # fmt: skip
    output_file: Path | None = _opt(
        None, "--output", "Write the agent's audio to this WAV instead of the speaker "
        "(real-time timeline, as a speaker would play it).", metavar="FILE", panel=FILES,
        commands=CALLS | {"demo"}, variants={"demo": {"help": "Write the reply here instead "
        "of the speaker. Without a speaker it goes to a file in the temporary directory."}},
    )  # fmt: skip
    record_file: Path | None = _opt(
        None, "--record", "Stereo WAV of the call: you on the left, the agent on the right, "
        "time-aligned.", metavar="FILE", panel=FILES, commands=CALLS | {"demo"},
    )  # fmt: skip
    transcript_file: Path | None = _opt(
        None, "--transcript", "Append the call's events to this file as JSON Lines, as they "
        "happen.", metavar="FILE", panel=FILES, commands=CALLS | {"demo"},
    )  # fmt: skip
    report_file: Path | None = _opt(
        None, "--report", "When the call ends, however it ends, draw it as one HTML page: "
        "levels, turns, latency, functions (needs the report extra, matplotlib).", metavar="FILE",
        panel=FILES, commands=CALLS | {"demo"},
    )  # fmt: skip
    idle_timeout_s: float = _opt(
        3.0, "--idle-timeout", "With --input: hang up once the input ended and the agent was "
        "quiet this long.", metavar="SECONDS", panel=FILES, min=0.1,
    )  # fmt: skip
    max_duration_s: float | None = _opt(
        None, "--max-duration", "Hang up after this many seconds.", metavar="SECONDS",
        panel=FILES, min=0.1,
    )  # fmt: skip
    chunk_ms: int = _opt(
        20, "--chunk-ms", "Uplink frame length. Lower is lower latency; 20 ms is what "
        "telephony uses.", metavar="MS", panel=AUDIO, min=10, max=200,
    )  # fmt: skip
    low_cpu: bool = _opt(
        False, "--low-cpu", "Buffer like Aivoco's Node client: the microphone in whole "
        "chunks, a 100 ms speaker in this process. Much less CPU with devices, for more "
        "latency (about 115 ms more before a reply is heard); --chunk-ms 128 is the Node "
        "client's chunk.",
        panel=AUDIO, envvar="AIVOCO_LOW_CPU",
    )  # fmt: skip
    # -- echo, barge-in, microphone (docs/echo.md) -------------------------------------
    echo: EchoMode = _opt(
        EchoMode.AUTO, "--echo", "Echo control: aec (echo cancellation), gate (mute the mic "
        "while the agent is audible unless you are clearly louder), off (headphones), auto "
        "(off with files, else aec when installed, else gate).", metavar="MODE", panel=ECHO,
        envvar="AIVOCO_ECHO",
    )  # fmt: skip
    noise_suppression: NoiseSuppression = _opt(
        NoiseSuppression.OFF, "--noise-suppression", "WebRTC noise suppression on the "
        "microphone: off, low, moderate, high or very-high (needs the aec extra).",
        metavar="LEVEL", panel=ECHO, envvar="AIVOCO_NOISE_SUPPRESSION",
    )  # fmt: skip
    high_pass: bool = _opt(
        False, "--high-pass/--no-high-pass", "WebRTC high-pass filter on the microphone "
        "(always on with --echo aec; needs the aec extra).", panel=ECHO,
        envvar="AIVOCO_HIGH_PASS",
    )  # fmt: skip
    barge_in: bool = _opt(
        True, "--barge-in/--no-barge-in", "When you talk over the agent, stop its playback "
        "at once and drop the rest of that reply (the sts protocol has no clear message).",
        panel=ECHO, commands=STS_ONLY, envvar="AIVOCO_BARGE_IN",
    )  # fmt: skip
    push_to_talk: bool = _opt(
        False, "--push-to-talk", "Start with the microphone closed; space toggles it (live "
        "view only).", panel=ECHO,
    )  # fmt: skip
    connect_timeout_s: float = _opt(
        10.0, "--connect-timeout", "Give up if the call is not live after this long, all "
        "transports and the session's start included; the reference uses 10 s.",
        metavar="SECONDS", min=0.1,
    )  # fmt: skip
    reconnect: int = _opt(
        3, "--reconnect", "When the connection drops mid-call, try this many times to start "
        "a new session (waiting 0.5 s, doubling to 8 s). Not after a refused key, exhausted "
        "credits or a session the server ended.", metavar="N", min=0, max=100,
    )  # fmt: skip
    no_reconnect: bool = _opt(
        False, "--no-reconnect", "Never reconnect: a drop ends the call (exit code 5).",
    )  # fmt: skip
    ca_file: Path | None = _opt(
        None, "--ca-file", "Trust the certificate authorities in this PEM file instead of the "
        "system's (for a server with a private CA). Certificates are always verified.",
        metavar="FILE",
    )  # fmt: skip
    # Not on the command line:
    hangup_timeout_s: float = 2.0  # how long to wait for the server's final word
    reconnect_delay_s: float = 0.5  # the first wait before reconnecting (doubles to 8 s)
    speaker_fallback_file: Path | None = None  # the demo: no speaker -> this WAV
    label: str | None = None  # shown in the view; default "voice X" / "agent X"
    # --report without --record: the recording the report reads its levels from, in a
    # temporary directory removed afterwards, so the summary does not name it.
    scratch_record_file: Path | None = None

    # -- derived ---------------------------------------------------------------------
    @property
    def reconnect_tries(self) -> int:
        """How many times a dropped call may try to come back (0: never)."""
        return 0 if self.no_reconnect else max(0, self.reconnect)

    @property
    def display_label(self) -> str:
        if self.label:
            return self.label
        if self.protocol is ProtocolName.CALL:
            return f"agent {self.agent}"
        return f"voice {self.voice}"

    def resolved_url(self) -> str:
        """--url, else the protocol's environment variable, else its default."""
        env_var, default, schemes = _URLS[self.protocol]
        chosen = self.url or os.environ.get(env_var) or default
        parts = urlsplit(chosen)
        if parts.scheme not in schemes or not parts.netloc:
            expected = " or ".join(s + "://" for s in schemes)
            raise UsageError(f"invalid URL {chosen!r}: expected {expected}HOST")
        return chosen.rstrip("/")

    def check(self, extra_outputs: Mapping[str, Path | None] | None = None) -> None:
        """Usage errors found before anything opens; `extra_outputs` are files the
        caller writes besides the call's own (the CLI's --log-file)."""
        if self.key is None or not self.key.strip():
            raise UsageError("no API key: pass --key KEY or set AIVOCO_API_KEY")
        if self.protocol is ProtocolName.CALL and not (self.agent or "").strip():
            raise UsageError("--agent is required: the id of the agent to call")
        if self.input_file is not None and self.input_device is not None:
            raise UsageError("--input and --input-device cannot be used together")
        if self.output_file is not None and self.output_device is not None:
            raise UsageError("--output and --output-device cannot be used together")
        outputs = {
            "--output": self.output_file,
            "--record": self.record_file,
            "--transcript": self.transcript_file,
            "--report": self.report_file,
            **(extra_outputs or {}),
        }
        given = [(flag, path) for flag, path in outputs.items() if path is not None]
        if self.input_file is not None and any(_same_file(self.input_file, p) for _, p in given):
            raise UsageError("an output file would overwrite the --input file")
        for i, (flag, path) in enumerate(given):
            for other, other_path in given[i + 1 :]:
                if _same_file(path, other_path) and not _is_device(path):
                    raise UsageError(
                        f"{flag} and {other} name the same file ({path}): each needs its own"
                    )
        if self.report_file is not None:
            _check_report_extra()


def _check_report_extra() -> None:
    """--report draws with matplotlib: say what to install now, not after the call."""
    from aivoco.report.figures import INSTALL_HINT, ReportDependencyError, require_matplotlib

    try:
        require_matplotlib()
    except ReportDependencyError as exc:
        raise UsageError(f"--report draws with matplotlib; install it: {INSTALL_HINT}") from exc


def cli_fields(command: str) -> list[tuple[str, Any, OptionInfo]]:
    """(field name, default, declaration) of every option `command` takes, in order."""
    out = []
    for f in fields(CallOptions):
        info = f.metadata.get("cli")
        if isinstance(info, OptionInfo) and command in info.commands:
            out.append((f.name, f.default, info.for_command(command)))
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _is_device(path: Path) -> bool:
    """/dev/null and the like: several outputs may share one, nothing is corrupted."""
    try:
        return path.exists() and not path.resolve().is_file() and not path.is_dir()
    except OSError:
        return False
