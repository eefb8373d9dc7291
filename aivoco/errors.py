"""Exception types shared across aivoco.

Every error a user can cause or meet (bad input, missing PortAudio, refused credentials,
a dropped connection) is an `AivocoError` subclass with a message written for that user.
The mapping from these types to exit codes lives in one place: `aivoco.cli.errors`.
"""

from __future__ import annotations


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
