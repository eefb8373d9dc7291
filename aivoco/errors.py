"""Exception types shared across aivoco.

Every error a user can cause or meet (bad input, missing PortAudio, refused credentials,
a dropped connection) is an `AivocoError` subclass with a message written for that user.
The mapping from these types to exit codes lives here too, in one place
(`exit_code_for`): the command line exits with it and the session puts it in the
`error` record of `--json` and the transcript, so both always agree.
"""

from __future__ import annotations

from enum import IntEnum


class AivocoError(Exception):
    """Base class: the message is shown to the user as-is, so it never holds secrets."""


class UsageError(AivocoError):
    """The command line or an option's value is wrong (detected before connecting)."""


class AudioFormatError(AivocoError, ValueError):
    """Audio data is malformed: odd byte count, bad base64, wrong dtype or shape."""


class AudioFileError(AivocoError):
    """An input audio file cannot be read, or an output file (recording, transcript,
    log) cannot be written."""


class PortAudioMissingError(AivocoError):
    """The PortAudio shared library is not installed, so no audio device can be used."""

    def __init__(self, detail: str = "") -> None:
        message = (
            "PortAudio is not installed, so microphones and speakers cannot be used. "
            "Install it with `sudo apt-get install libportaudio2` (Debian/Ubuntu), "
            "`sudo dnf install portaudio` (Fedora) or `brew install portaudio` (macOS); "
            "or use --input/--output files instead of devices."
        )
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class DeviceError(AivocoError):
    """An audio device is unknown, ambiguous, busy or failed while streaming."""


class AuthError(AivocoError):
    """The service refused the API key (or, for agent calls, the key/agent pair)."""


class CreditsError(AivocoError):
    """The account ran out of credits (before or during the call)."""


class ConnectionFailedError(AivocoError):
    """The service could not be reached, timed out, or dropped the connection."""


class ServiceError(AivocoError):
    """The service reported an error event that is not about credentials or credits."""


class ScenarioFailedError(AivocoError):
    """`aivoco test`: a scenario ran but failed its expectations (the calls worked)."""


class ProtocolError(AivocoError):
    """The peer sent something the protocol does not allow (malformed or unexpected).

    Drivers turn these into logged protocol-error events and keep the call going; only a
    peer that cannot be talked to at all (e.g. nothing valid ever arrives) ends a call.
    """


class ProtocolMisuseError(RuntimeError):
    """We used a protocol codec wrongly (a bug in aivoco, not in the peer's messages).

    Kept apart from `ProtocolError` so a bug of ours is never reported as the server's
    fault; it is deliberately not an `AivocoError`.
    """


class CallStateError(RuntimeError):
    """Code asked a call for something its phase does not allow (start it twice,
    subscribe after it started). A bug in the caller, so not an `AivocoError`; the
    lifecycle refuses such requests in one place (aivoco/session/lifecycle.py)."""


# -- exit codes (README: "Exit codes") ------------------------------------------------
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
    SCENARIO_FAILED = 10  # `aivoco test`: a scenario failed its expectations
    HANGUP_SIGNAL = 129  # SIGHUP: the call was hung up gracefully first (128 + 1)
    INTERRUPTED = 130  # second Ctrl-C: leave at once (128 + SIGINT)
    TERMINATED = 143  # SIGTERM: the call was hung up gracefully first (128 + 15)


_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
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
)

LABELS = {
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
    """The exit code `exc` leads to (an error that is not ours to expect: 1, a bug)."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return ExitCode.ERROR


def error_label(exc: BaseException) -> str:
    """The short name printed before an error's message ("connection failed")."""
    return LABELS.get(exit_code_for(exc), "error")
