"""The one place that maps exceptions to exit codes and friendly messages.

Commands raise `AivocoError` subclasses; `guarded()` prints the message (secrets
redacted) and exits with the code below. Anything else is a bug: a short message that
asks for a report, the traceback only with AIVOCO_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from enum import IntEnum
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from aivoco.errors import (
    AivocoError,
    AudioFileError,
    AudioFormatError,
    AuthError,
    ConnectionFailedError,
    CreditsError,
    DeviceError,
    PortAudioMissingError,
    ProtocolError,
    ScenarioFailedError,
    ServiceError,
    UsageError,
)
from aivoco.redact import redact

R = TypeVar("R")


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unexpected: a bug in aivoco
    USAGE = 2  # same code click/Typer use for bad options
    AUTH = 3
    CREDITS = 4
    CONNECTION = 5
    PROTOCOL = 6
    AUDIO_DEVICE = 7
    AUDIO_FILE = 8
    SERVICE = 9
    SCENARIO_FAILED = 10  # `aivoco test`: an expectation failed
    INTERRUPTED = 130  # second Ctrl-C: leave at once (128 + SIGINT)


_CODES: list[tuple[type[BaseException], ExitCode]] = [
    (UsageError, ExitCode.USAGE),
    (AuthError, ExitCode.AUTH),
    (CreditsError, ExitCode.CREDITS),
    (ConnectionFailedError, ExitCode.CONNECTION),
    (ProtocolError, ExitCode.PROTOCOL),
    (PortAudioMissingError, ExitCode.AUDIO_DEVICE),
    (DeviceError, ExitCode.AUDIO_DEVICE),
    (AudioFileError, ExitCode.AUDIO_FILE),
    (AudioFormatError, ExitCode.AUDIO_FILE),
    (ServiceError, ExitCode.SERVICE),
    (ScenarioFailedError, ExitCode.SCENARIO_FAILED),
]

_LABELS = {
    ExitCode.USAGE: "usage error",
    ExitCode.AUTH: "authentication failed",
    ExitCode.CREDITS: "out of credits",
    ExitCode.CONNECTION: "connection failed",
    ExitCode.PROTOCOL: "protocol error",
    ExitCode.AUDIO_DEVICE: "audio device error",
    ExitCode.AUDIO_FILE: "file error",
    ExitCode.SERVICE: "service error",
    ExitCode.SCENARIO_FAILED: "scenario failed",
}


def exit_code_for(exc: BaseException) -> ExitCode:
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return ExitCode.ERROR


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def report(exc: BaseException) -> ExitCode:
    """Print a friendly, redacted message for `exc` on stderr; return its exit code."""
    code = exit_code_for(exc)
    console = _stderr()
    if isinstance(exc, AivocoError):
        label = _LABELS.get(code, "error")
        console.print(f"[bold red]aivoco: {label}:[/] {escape(redact(str(exc)))}", soft_wrap=True)
    elif code is ExitCode.INTERRUPTED:
        console.print("[yellow]aivoco: interrupted[/]")
    else:
        console.print(
            f"[bold red]aivoco: internal error:[/] {escape(redact(f'{type(exc).__name__}: {exc}'))}"
            "\nThis is a bug in aivoco; please report it (set AIVOCO_DEBUG=1 for a traceback)."
        )
        if os.environ.get("AIVOCO_DEBUG"):
            console.print(escape(redact("".join(traceback.format_exception(exc)))))
    return code


def guarded(fn: Callable[[], R]) -> R:
    """Run a command body; map any failure to its message and exit code."""
    try:
        return fn()
    except (typer.Exit, typer.Abort):
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        code = report(exc)
        sys.stderr.flush()
        raise typer.Exit(int(code)) from None
